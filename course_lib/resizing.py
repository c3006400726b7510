"""How the FID references resize images for Inception: pytorch-fid, torch-fidelity and clean-fid.

Book equation (resize): every resize here is a linear map applied along each axis,

    out[i] = sum_j k((j + 1/2 - c_i) / s) x[j]  /  sum_j k((j + 1/2 - c_i) / s),            (resize)

with output pixel i centred at c_i in input pixel units, a kernel k, and a stretch s. The references
differ in all three:

- ``"pytorch-fid"``: ``F.interpolate(mode="bilinear", align_corners=False)`` on floats in [0, 1]:
  c_i = (i + 1/2) n_in / n_out, triangle kernel, s = 1 (no antialiasing); input to Inception 2x - 1.
- ``"torch-fidelity"``: TensorFlow 1's ``resize_bilinear`` on 8-bit images: c_i = i n_in / n_out + 1/2
  (no half-pixel offset, so the image moves towards the top-left), triangle kernel, s = 1; input
  (x - 128) / 128 with x in [0, 255].
- ``"clean-fid"``: PIL's bicubic (a = -0.5) on 8-bit images, in float, clipped to [0, 255]:
  c_i = (i + 1/2) n_in / n_out, s = max(n_in / n_out, 1), i.e. the kernel widens when downsampling
  (antialiasing, Parmar et al. 2022); input (x - 128) / 128.

Sums run over the input pixels that exist (weights renormalised near the border), which is how all
three treat the edges. ``resampling_matrix`` builds the (n_out, n_in) matrix of (resize); the tests
prove ``resize_images`` equal to pytorch-fid's ``F.interpolate``, torch-fidelity's
``interpolate_bilinear_2d_like_tensorflow1x`` and clean-fid's ``make_resizer("PIL", False, "bicubic")``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.runtime import float64_cpu
from course_lib.validation import check_choice, check_images, check_positive_int

RESIZE_STYLES = ("pytorch-fid", "torch-fidelity", "clean-fid")


def check_style(style: str) -> None:
    """Raise ValueError unless ``style`` is one of ``RESIZE_STYLES``.

    Example:
        >>> check_style("clean-fid")
    """
    check_choice(style, "style", RESIZE_STYLES)


def _triangle(t: torch.Tensor) -> torch.Tensor:
    return (1 - t.abs()).clamp_min(0)


def _cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    # Keys' cubic convolution kernel with PIL's a = -0.5 (PyTorch's bicubic uses a = -0.75).
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t < 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def resampling_matrix(n_in: int, n_out: int, style: str = "pytorch-fid") -> torch.Tensor:
    """The (n_out, n_in) matrix W of book equation (resize): one axis of a resize is ``W @ x``.

    Args:
        n_in: input length along the axis (pixels), >= 1.
        n_out: output length, >= 1.
        style: ``"pytorch-fid"``, ``"torch-fidelity"`` or ``"clean-fid"`` (see the module docstring).

    Returns:
        float64 tensor (n_out, n_in); every row sums to 1 (the kernel weights of one output pixel).

    Raises:
        ValueError: for an unknown ``style`` or a length below 1.

    Example:
        >>> resampling_matrix(2, 4, "pytorch-fid")  # bilinear doubling: edge rows copy the edge pixel
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500],
                [0.2500, 0.7500],
                [0.0000, 1.0000]], dtype=torch.float64)
    """
    check_style(style)
    check_positive_int(n_in, "n_in")
    check_positive_int(n_out, "n_out")
    scale = n_in / n_out
    i = torch.arange(n_out, dtype=torch.float64)[:, None]
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    if style == "torch-fidelity":
        # TensorFlow 1 samples at i * scale (float32 arithmetic), without the half-pixel offset.
        src = (i.float() * torch.tensor(scale, dtype=torch.float32)).double()
        weights = _triangle(j - src)
    elif style == "pytorch-fid":
        weights = _triangle(j + 0.5 - (i + 0.5) * scale)
    else:
        stretch = max(scale, 1.0)
        weights = _cubic((j + 0.5 - (i + 0.5) * scale) / stretch)
    return weights / weights.sum(dim=1, keepdim=True)


def resize_images(images: torch.Tensor, size: int, style: str = "pytorch-fid") -> torch.Tensor:
    """Resize images to (size, size) as one of the FID references does, book equation (resize).

    ``"pytorch-fid"`` interpolates the floats directly; ``"torch-fidelity"`` and ``"clean-fid"`` first
    quantise to 8 bits (round(255 x) / 255, as saving a PNG does), since both read uint8 images;
    ``"clean-fid"`` clips the bicubic overshoot to [0, 1] as PIL's float resize followed by clean-fid's
    clip does.

    Args:
        images: (N, C, H, W) float in [0, 1].
        size: output height and width, >= 1.
        style: one of ``RESIZE_STYLES``.

    Returns:
        (N, C, size, size) float32 in [0, 1] (on the device of ``images``).

    Raises:
        ValueError: for a bad shape, NaN/inf, values outside [0, 1], a bad ``size`` or ``style``.

    Example:
        >>> x = torch.tensor([[[[0.0, 1.0]]]])  # one row, two pixels
        >>> resize_images(x.expand(1, 1, 2, 2), 4, "pytorch-fid")[0, 0, 0]
        tensor([0.0000, 0.2500, 0.7500, 1.0000])
    """
    check_images(images, "images")
    check_style(style)
    check_positive_int(size, "size")
    x = images.float()
    if style == "pytorch-fid":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = torch.round(x * 255)
    rows = resampling_matrix(x.shape[2], size, style).to(x.device, torch.float32)
    cols = resampling_matrix(x.shape[3], size, style).to(x.device, torch.float32)
    out = rows @ x @ cols.T
    if style == "clean-fid":
        out = out.clamp(0, 255)
    return out / 255


def inception_input(images: torch.Tensor, style: str = "pytorch-fid", size: int = 299) -> torch.Tensor:
    """What the reference ``style`` feeds its Inception: grey to RGB, resize, then scale to about [-1, 1].

    pytorch-fid computes 2 x - 1 on [0, 1]; torch-fidelity and clean-fid compute (v - 128) / 128 on
    v in [0, 255], so their white is 127/128, not 1.

    Args:
        images: (N, 1 or 3, H, W) float in [0, 1].
        style: one of ``RESIZE_STYLES``.
        size: the network's input size (299 for InceptionV3).

    Returns:
        (N, 3, size, size) float32.

    Raises:
        ValueError: for a bad shape, NaN/inf, values outside [0, 1] or an unknown ``style``.

    Example:
        >>> white = torch.ones(1, 1, 4, 4)
        >>> [round(float(inception_input(white, s, 8).max()), 4) for s in RESIZE_STYLES]
        [1.0, 0.9922, 0.9922]
    """
    resized = resize_images(images, size, style)  # checks images and style
    if resized.shape[1] == 1:
        resized = resized.expand(-1, 3, -1, -1)
    if style == "pytorch-fid":
        return 2 * resized - 1
    return (resized * 255 - 128) / 128


def centroid(images: torch.Tensor) -> torch.Tensor:
    """Brightness-weighted centre (row, column) of each image, in units of its own pixel size.

    A resize that keeps the content in place maps the centroid c of an H-pixel axis to
    c * size / H; TensorFlow 1's resize (``"torch-fidelity"``) moves it towards the top-left.

    Args:
        images: (N, C, H, W) float in [0, 1], no all-black image.

    Returns:
        (N, 2) float64 CPU tensor: row and column of the centroid, pixel centres at 0.5, 1.5, ...

    Raises:
        ValueError: for a bad shape, values outside [0, 1] or an all-black image.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[0, 0, 1, 3] = 1
        >>> centroid(x)
        tensor([[1.5000, 3.5000]], dtype=torch.float64)
    """
    check_images(images, "images")
    mass = float64_cpu(images).sum(dim=1)  # float64 only on the CPU (MPS has none)
    total = mass.sum(dim=(1, 2))
    if (total == 0).any():
        raise ValueError("images contains an all-black image, which has no centroid")
    rows = torch.arange(mass.shape[1], dtype=torch.float64, device=mass.device) + 0.5
    cols = torch.arange(mass.shape[2], dtype=torch.float64, device=mass.device) + 0.5
    row = (mass.sum(dim=2) * rows).sum(dim=1) / total
    col = (mass.sum(dim=1) * cols).sum(dim=1) / total
    return torch.stack([row, col], dim=1)


def zone_plate(size: int = 512) -> torch.Tensor:
    """A zone plate, 0.5 + 0.5 cos(pi r^2 / (2 R)) with R the half-diagonal: local frequency r / (2 R) cycles per pixel.

    Its local frequency grows linearly from 0 at the centre to 0.5 cycles per pixel (the Nyquist
    limit) at the corners, so a resize that aliases draws false rings (Moire) where the frequency
    exceeds the new Nyquist limit, and a correct downsampling leaves flat grey 0.5 there.

    Args:
        size: height and width in pixels, >= 2.

    Returns:
        (1, 1, size, size) float32 in [0, 1].

    Raises:
        ValueError: for a size below 2.

    Example:
        >>> zone_plate(8).shape
        torch.Size([1, 1, 8, 8])
    """
    check_positive_int(size, "size", minimum=2)
    r = _radius(size)
    half_diagonal = size / math.sqrt(2)
    return (0.5 + 0.5 * torch.cos(math.pi * r**2 / (2 * half_diagonal))).float()[None, None]


def _radius(size: int) -> torch.Tensor:
    """Distance of each pixel centre from the image centre, (size, size) float64."""
    coords = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    return (coords[:, None] ** 2 + coords[None, :] ** 2).sqrt()


def zone_plate_frequency(size: int) -> torch.Tensor:
    """Local frequency (cycles per pixel) of ``zone_plate(size)`` at each pixel, (size, size) float64.

    Example:
        >>> float(zone_plate_frequency(8).max()) <= 0.5
        True
    """
    return _radius(size) / (2 * size / math.sqrt(2))


__all__ = ["RESIZE_STYLES", "check_style", "resampling_matrix", "resize_images", "inception_input", "centroid",
           "zone_plate", "zone_plate_frequency"]
