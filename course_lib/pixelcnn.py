"""PixelCNN pieces (van den Oord et al. 2016): the masked convolution, and the autoregressive prior
over a VQ-VAE's grid of codes.

Two chapters use them: the VQ-VAE's prior (``book/vqvae.md``, equation (vq-prior)
p(k_1, ..., k_L) = prod_i p(k_i | k_<i), trained by maximum likelihood) and the autoregressive
decoder of ``course_lib.vae.PixelCNNVAE`` (``book/vae_failure_modes.md``, (vae-autoregressive)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.validation import check_choice, check_positive, check_positive_int


def check_code_indices(indices: torch.Tensor, num_codes: int, name: str = "indices") -> None:
    """Raise ValueError unless ``indices`` is a non-empty integer tensor with values in [0, num_codes).

    Example:
        >>> check_code_indices(torch.tensor([0, 3]), 4)
        >>> check_code_indices(torch.tensor([0, 4]), 4)
        Traceback (most recent call last):
        ...
        ValueError: indices must be in [0, 4), got values in [0, 4]
    """
    check_positive_int(num_codes, "num_codes")
    if not isinstance(indices, torch.Tensor) or indices.dtype.is_floating_point or indices.is_complex() \
            or indices.dtype == torch.bool or indices.numel() == 0:
        raise ValueError(f"{name} must be a non-empty integer tensor")
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= num_codes:
        raise ValueError(f"{name} must be in [0, {num_codes}), got values in [{low}, {high}]")


class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees positions before the centre in raster order (van den Oord et al. 2016).

    The kernel of ``rows`` x ``cols`` (``cols`` odd) covers the ``rows - 1`` rows above the output
    position and its own row, centred on it (the rows below would be masked anyway, so they are
    not computed). On its own row, mask ``"A"`` hides the centre and everything to its right
    (first layer: output i must not see input i); mask ``"B"`` lets the centre through (later
    layers: feature i already depends only on inputs before i).

    Args:
        in_channels, out_channels: as ``nn.Conv2d``.
        kernel_size: ``(rows, cols)``, rows >= 1, cols odd.
        mask_type: ``"A"`` or ``"B"``.

    Raises:
        ValueError: for another ``mask_type`` or a bad ``kernel_size``.

    Example:
        >>> MaskedConv2d(1, 1, (2, 3), "A").mask
        tensor([[1., 1., 1.],
                [1., 0., 0.]])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], mask_type: str):
        check_choice(mask_type, "mask_type", ("A", "B"))
        rows, cols = kernel_size
        if isinstance(rows, bool) or not isinstance(rows, int) or not isinstance(cols, int) \
                or rows < 1 or cols < 1 or cols % 2 != 1:
            raise ValueError(f"kernel_size must be (rows >= 1, odd cols), got {kernel_size!r}")
        super().__init__(in_channels, out_channels, (rows, cols))
        mask = torch.ones(rows, cols)
        mask[-1, cols // 2 + (mask_type == "B"):] = 0
        self.register_buffer("mask", mask)
        self.causal_padding = (cols // 2, cols // 2, rows - 1, 0)  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self.causal_padding), self.weight * self.mask, self.bias)


class CodePrior(nn.Module):
    """Book equation (vq-prior): a PixelCNN-style autoregressive model of a grid of code indices.

    The first masked convolution (mask A) spans H rows and 2W-1 columns, so the output at every
    position sees *all* earlier positions of the H x W grid (no blind spot); residual blocks of
    2x3 mask-B convolutions and 1x1 convolutions follow; a 1x1 convolution gives K logits.

    Args:
        num_codes: K. grid: (H, W). embed_dim: size of each code's embedding.
        channels: hidden width. blocks: number of residual blocks.

    Raises:
        ValueError: if a size is not a positive int (``blocks`` may be 0).

    Example:
        >>> prior = CodePrior(num_codes=8, grid=(3, 3), channels=16, blocks=1)
        >>> codes = torch.randint(8, (2, 3, 3))
        >>> prior(codes).shape, prior_nll(prior, codes).shape
        (torch.Size([2, 8, 3, 3]), torch.Size([2]))
    """

    def __init__(self, num_codes: int = 64, grid: tuple[int, int] = (7, 7), embed_dim: int = 8,
                 channels: int = 48, blocks: int = 2):
        super().__init__()
        for name, value in (("num_codes", num_codes), ("embed_dim", embed_dim), ("channels", channels)):
            check_positive_int(value, name)
        check_positive_int(blocks, "blocks", minimum=0)
        if len(grid) != 2:
            raise ValueError(f"grid must be (H, W), got {grid!r}")
        for name, value in zip(("grid[0]", "grid[1]"), grid, strict=True):
            check_positive_int(value, name)
        self.num_codes, self.grid = num_codes, tuple(grid)
        self.embed = nn.Embedding(num_codes, embed_dim)
        self.first = MaskedConv2d(embed_dim, channels, (self.grid[0], 2 * self.grid[1] - 1), "A")
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), MaskedConv2d(channels, channels, (2, 3), "B"), nn.ReLU(),
                          nn.Conv2d(channels, channels, 1))
            for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, num_codes, 1))

    def logits_from_embedding(self, h: torch.Tensor) -> torch.Tensor:
        """(N, embed_dim, H, W) embedded codes -> (N, K, H, W) logits of p(k_i | k_<i)."""
        h = self.first(h)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, H, W) code indices -> (N, K, H, W) logits; position i depends only on codes before i."""
        if not isinstance(codes, torch.Tensor) or codes.ndim != 3 or tuple(codes.shape[1:]) != self.grid:
            got = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"codes must have shape (N, {self.grid[0]}, {self.grid[1]}), got {got}")
        check_code_indices(codes, self.num_codes, "codes")
        return self.logits_from_embedding(self.embed(codes).permute(0, 3, 1, 2))

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n grids of codes (n, H, W), one position at a time in raster order, on the model's device.

        ``generator`` (a CPU ``torch.Generator``) makes the draw reproducible whatever the device.
        """
        check_positive_int(n, "n")
        check_positive(temperature, "temperature")
        device = self.embed.weight.device
        codes = torch.zeros(n, *self.grid, dtype=torch.long, device=device)
        for i in range(self.grid[0]):
            for j in range(self.grid[1]):
                probs = F.softmax(self(codes)[:, :, i, j].float() / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
        return codes


def prior_nll(prior: CodePrior, codes: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood -log p(codes) in nats, one value per grid: shape (N,).

    Divide by H*W*ln 2 for bits per code; a uniform prior gives log2 K bits per code.

    Example:
        >>> prior = CodePrior(num_codes=4, grid=(2, 2), channels=8, blocks=0)
        >>> _ = prior.out[1].weight.data.zero_(), prior.out[1].bias.data.zero_()  # uniform p: 4 ln 4
        >>> prior_nll(prior, torch.zeros(1, 2, 2, dtype=torch.long)).detach()
        tensor([5.5452])
    """
    logits = prior(codes)
    return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(1)


def prior_loss(prior: CodePrior, codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Objective for ``course_lib.training.train`` on grids of codes (N, H, W): mean NLL in nats per
    grid as ``"loss"``, and ``"bits_per_code"``."""
    nll = prior_nll(prior, codes).mean()
    return {"loss": nll, "bits_per_code": nll / (math.prod(prior.grid) * math.log(2))}
