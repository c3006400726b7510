"""Plot helpers shared by the chapters: image grids, training curves, 2-D latent scatters.

Every helper draws on a matplotlib ``Axes`` (made if not given) and returns it, with a
title, axis labels and a legend where the plot has several series.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


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
