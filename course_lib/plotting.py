"""Plot helpers shared by the chapters: image grids, training curves, 2-D latent scatters,
2-D samples and log-densities.

Every helper draws on a matplotlib ``Axes`` (made if not given) and returns it, with a
title, axis labels and a legend where the plot has several series. Plotting lives here only:
the numbers a plot shows (e.g. a log-density on a grid, ``course_lib.toy_data.log_density_grid``)
are computed elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.toy_data import log_density_grid
from course_lib.validation import check_points


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images with values in [0, 1] into one (rows*H, nrow*W[, C]) array.

    Raises:
        ValueError: if ``images`` is not 4-D with 1 or 3 channels, or has values outside [0, 1].
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    images = images.detach().float().cpu()
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"images must have values in [0, 1], got [{images.min():.3g}, {images.max():.3g}]")
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i, image in enumerate(images):
        r, col = divmod(i, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = image
    grid = grid.permute(1, 2, 0).numpy()
    return grid[..., 0] if c == 1 else grid


def show_images(images: torch.Tensor, nrow: int = 8, title: str = "", ax=None, row_labels=None):
    """Show a grid of images (N, C, H, W) in [0, 1]; ``row_labels`` names each row on the y axis."""
    ax = ax or plt.figure(figsize=(nrow * 0.9, max(1, -(-len(images) // nrow)) * 0.9 + 0.4)).gca()
    grid = image_grid(images, nrow)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    if row_labels is not None:
        h = images.shape[2] + 1
        ax.set_yticks([1 + h * (i + 0.5) for i in range(len(row_labels))], row_labels)
    else:
        ax.set_yticks([])
    return ax


def plot_history(history: dict, keys=None, title: str = "Training curves", ylabel: str = "loss", ax=None, logy=False,
                 label: str = ""):
    """Plot per-epoch curves from ``course_lib.training.train``'s history.

    Args:
        history: ``{"train_loss": [...], "val_loss": [...], ...}``.
        keys: which series to draw (default: every ``*_loss`` series).
        label: appended to each series' legend entry, to tell several runs apart on one ``ax``.

    Raises:
        ValueError: if no series is selected or a key is missing from ``history``.
    """
    keys = keys or [k for k in history if k.endswith("loss")]
    missing = [k for k in keys if k not in history]
    if not keys or missing:
        raise ValueError(f"keys must name series of history {sorted(history)}, got {keys or 'none'}")
    ax = ax or plt.figure(figsize=(6, 3.5)).gca()
    for key in keys:
        values = history[key]
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=f"{key.replace('_', ' ')}{label}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_latent_scatter(codes: torch.Tensor, labels: torch.Tensor, class_names=None, title: str = "Latent space",
                        ax=None, s: float = 2.0, alpha: float = 0.6):
    """Scatter 2-D codes (N, 2), one colour per class, with a legend of class names."""
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"codes must have shape (N, 2), got {tuple(codes.shape)}")
    if labels.shape != (len(codes),):
        raise ValueError(f"labels must have shape ({len(codes)},), got {tuple(labels.shape)}")
    ax = ax or plt.figure(figsize=(6.5, 5.5)).gca()
    codes, labels = codes.detach().cpu().numpy(), labels.cpu().numpy()
    cmap = plt.get_cmap("tab10")
    for k in np.unique(labels):
        mask = labels == k
        name = class_names[k] if class_names is not None else str(k)
        ax.scatter(codes[mask, 0], codes[mask, 1], s=s, alpha=alpha, color=cmap(k % 10), label=name)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    ax.legend(markerscale=4, fontsize=8, loc="best")
    return ax



def plot_samples(
    samples: torch.Tensor, *, label: str, title: str | None = None, ax=None, color=None, s: float = 2.0,
    alpha: float = 0.5, xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
):
    """Scatter 2-D points (N, 2) with a legend entry ``label``; call again on ``ax`` to overlay.

    ``title`` is set when given; otherwise an overlay keeps the title of ``ax`` (a new plot is
    titled "samples").

    Raises:
        ValueError: if ``samples`` is not an (N, 2) tensor.

    Example:
        >>> ax = plot_samples(torch.randn(50, 2), label="z ~ N(0, I)", title="noise")
        >>> ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()]
        ('noise', ['z ~ N(0, I)'])
        >>> plt.close("all")
    """
    check_points(samples, "samples", dim=2)
    ax = ax or plt.figure(figsize=(4.5, 4.5)).gca()
    points = samples.detach().float().cpu().numpy()
    ax.scatter(points[:, 0], points[:, 1], s=s, alpha=alpha, color=color, label=label)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title is not None or not ax.get_title():
        ax.set_title("samples" if title is None else title)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.legend(markerscale=4, loc="upper right", fontsize=8)
    return ax


def plot_log_density(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-3.0, 3.0),
    ylim: tuple[float, float] = (-3.0, 3.0),
    *,
    title: str = "log-density",
    ax=None,
    resolution: int = 200,
    vmin: float | None = -10.0,
    device: str | torch.device | None = None,
):
    """Draw a 2-D log-density log p(x) as an image with a colour bar (values below ``vmin`` are clipped).

    Args:
        log_prob: maps points (N, 2) to log-densities (N,), as for ``course_lib.toy_data.log_density_grid``.
        xlim, ylim: the box drawn.
        title: the plot's title.
        ax: the ``Axes`` to draw on (a new figure if None).
        resolution: grid cells per side, an int >= 2.
        vmin: the lowest log-density shown in colour (``None``: the grid's minimum).
        device: where ``log_prob`` runs, a str or torch.device; ``None`` keeps the CPU.

    Raises:
        ValueError: as ``log_density_grid``, for a bad ``resolution``, limit or ``device``.

    Example:
        >>> from course_lib.toy_data import standard_normal_log_prob
        >>> ax = plot_log_density(standard_normal_log_prob, resolution=20, title="N(0, I)")
        >>> ax.get_title(), ax.get_xlabel(), ax.get_ylabel()
        ('N(0, I)', '$x_1$', '$x_2$')
        >>> plt.close("all")
    """
    ax = ax or plt.figure(figsize=(5, 4.5)).gca()
    xs, ys, log_p = log_density_grid(log_prob, xlim, ylim, resolution, device)
    image = ax.imshow(log_p, origin="lower", extent=(*xlim, *ylim), cmap="viridis", vmin=vmin,
                      vmax=float(log_p.max()), aspect="equal", interpolation="bilinear")
    ax.figure.colorbar(image, ax=ax, label="log p(x) (nats)", shrink=0.85)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    return ax

class Table:
    """A results table: Markdown where a notebook or the book renders it, aligned text elsewhere.

    Args:
        rows: a list of rows, each a sequence of values (one per column) or a dict keyed by column.
        columns: the column headers (default: the first row's keys, when rows are dicts).
        formats: ``{column: format spec}``, e.g. ``{"PSNR (dB)": ".2f", "share": ".1%"}``, so that each
            number is rounded to what it means; other values are shown with ``str``.
        title: a bold line above the table.
        note: a line below the table (units, how to read it).

    Raises:
        ValueError: if a row's length differs from the number of columns, a dict row lacks a column,
            or ``formats`` names an unknown column.

    Example:
        >>> table = Table([("a", 0.12345), ("b", 1.5)], ["model", "loss"], formats={"loss": ".2f"})
        >>> print(table)
        model | loss
        ----- | ----
        a     | 0.12
        b     | 1.50
        >>> print(table._repr_markdown_())
        | model | loss |
        | :-- | --: |
        | a | 0.12 |
        | b | 1.50 |
    """

    def __init__(self, rows, columns=None, formats=None, title: str | None = None, note: str | None = None):
        rows = list(rows)
        if columns is None:
            if not rows or not isinstance(rows[0], dict):
                raise ValueError("columns must be given unless rows are dicts")
            columns = list(rows[0])
        self.columns = [str(c) for c in columns]
        formats = dict(formats or {})
        unknown = sorted(set(formats) - set(self.columns))
        if unknown:
            raise ValueError(f"formats names columns {unknown} that are not in columns {self.columns}")
        self.title, self.note = title, note
        self.cells: list[list[str]] = []
        self.numeric = [True] * len(self.columns)
        for i, row in enumerate(rows):
            if isinstance(row, dict):
                missing = [c for c in columns if c not in row]
                if missing:
                    raise ValueError(f"row {i} has no value for columns {missing}")
                row = [row[c] for c in columns]
            row = list(row)
            if len(row) != len(self.columns):
                raise ValueError(f"row {i} has {len(row)} values, expected {len(self.columns)} (one per column)")
            self.cells.append([_format_cell(v, formats.get(c)) for c, v in zip(self.columns, row, strict=True)])
            for j, v in enumerate(row):  # an empty cell (None) leaves a column of numbers right-aligned
                self.numeric[j] &= v is None or (isinstance(v, (int, float, np.number, torch.Tensor))
                                                 and not isinstance(v, bool))

    def _repr_markdown_(self) -> str:
        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        lines = [f"**{self.title}**", ""] if self.title else []
        lines += [line(self.columns), "| " + " | ".join("--:" if n else ":--" for n in self.numeric) + " |"]
        lines += [line(row) for row in self.cells]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def __repr__(self) -> str:
        widths = [max(len(c) for c in column) for column in zip(self.columns, *self.cells, strict=True)]

        def line(cells):
            return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        lines = [self.title] if self.title else []
        lines += [line(self.columns), " | ".join("-" * w for w in widths)]
        lines += [line(row) for row in self.cells]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _format_cell(value, spec: str | None) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if spec is None or isinstance(value, str) or value is None:
        return "" if value is None else str(value)
    return format(value, spec)


def show_table(rows, columns=None, formats=None, title: str | None = None, note: str | None = None) -> None:
    """Display a :class:`Table` of results: rendered in Jupyter, Colab, VS Code and the book, as text
    in a terminal. Arguments as for :class:`Table`."""
    table = Table(rows, columns, formats, title, note)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        print(table)
        return
    if get_ipython() is None:
        print(table)
    else:
        display(table)
