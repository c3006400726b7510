"""LPIPS, the learned perceptual image patch similarity of Zhang et al. (2018), from scratch.

Book equation (lpips): for images x, y in [-1, 1], deep features of L layers of an ImageNet
network are normalised along channels, their squared differences weighted per channel by
learned non-negative weights w_l, averaged over space and summed over layers:

    d(x, y) = sum_l 1 / (H_l W_l) sum_{h, w} || w_l (.) (f̂_l(x)_{hw} - f̂_l(y)_{hw}) ||_2^2

This module reproduces the ``lpips`` package (version 0.1): the same input scaling, the same
layers of torchvision's AlexNet, VGG-16 or SqueezeNet 1.1, and the linear weights that the
``lpips`` package ships (``lpips/weights/v0.1/<net>.pth``).

The ImageNet backbone weights are looked up where torchvision and ``lpips`` look: the torch hub
cache (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``) under
torchvision's file names. They can also be given as a file, or downloaded when online (by
``course_lib.downloads``, which verifies the SHA-256 prefix torchvision publishes). When
they are missing, ``BackboneWeightsNotFoundError`` says which file is expected where; random
weights are never substituted unless you ask for them with ``pretrained=False`` (tests only).

The distance is a measurement: it runs in float32 (the module's dtype) even inside a mixed-precision
autocast region (``course_lib.runtime.full_precision``), so it gives the same numbers everywhere.
For speed, x and y go through the backbone as one batch of 2N images in the channels-last layout, and
only the current layer's features are kept (``benchmarks/ssim_lpips.md`` times it against ``lpips``).
"""

from __future__ import annotations

import importlib.resources
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_lib import downloads
from course_lib.runtime import full_precision
from course_lib.validation import (
    ROUND_OFF,
    check_choice,
    check_finite_pair,
    check_range,
    check_same_shape,
    check_tensor,
)

# The lpips package's ScalingLayer: ImageNet's mean and std, expressed for inputs in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # lpips.normalize_tensor adds it to the channel norm


@dataclass(frozen=True)
class Backbone:
    builder: str  # torchvision.models function
    weights: str  # torchvision weights enum entry (its url is the pinned one in course_lib.downloads)
    file_name: str  # torchvision's file name in the hub cache, a key of course_lib.downloads.PINNED
    cuts: tuple[int, ...]  # the features[:cut] boundaries whose outputs are compared
    channels: tuple[int, ...]
    min_size: int  # smallest H, W for which every compared layer has at least one position


BACKBONES = {
    "alex": Backbone("alexnet", "AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth",
                     (2, 5, 8, 10, 12), (64, 192, 384, 256, 256), 31),
    "vgg": Backbone("vgg16", "VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth",
                    (4, 9, 16, 23, 30), (64, 128, 256, 512, 512), 16),
    "squeeze": Backbone("squeezenet1_1", "SqueezeNet1_1_Weights.IMAGENET1K_V1", "squeezenet1_1-b8a52dc0.pth",
                        (2, 5, 8, 10, 11, 12, 13), (64, 128, 256, 384, 384, 512, 512), 17),
}


class BackboneWeightsNotFoundError(FileNotFoundError):
    """The ImageNet weights of LPIPS's backbone are not on this machine and could not be downloaded."""


def backbone_path(net: str = "alex") -> Path:
    """Where the backbone's ImageNet weights are expected: ``torch.hub.get_dir()/checkpoints/<file>``.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.

    Returns:
        The path (which may not exist); it follows ``$TORCH_HOME`` and ``torch.hub.set_dir``.

    Raises:
        ValueError: for an unknown ``net``.

    Example:
        >>> backbone_path("alex").name
        'alexnet-owt-7be5be79.pth'
    """
    _check_net(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONES[net].file_name


def backbone_available(net: str = "alex") -> bool:
    """True when ``backbone_path(net)`` exists, i.e. ``LPIPS(net)`` will work offline."""
    return backbone_path(net).is_file()


def linear_weights_path(net: str = "alex") -> Path:
    """The file of learned linear weights that the installed ``lpips`` package ships (version 0.1).

    Raises:
        ValueError: for an unknown ``net``.
        ModuleNotFoundError: if the ``lpips`` package is not installed (``pip install lpips``).
    """
    _check_net(net)
    try:
        root = importlib.resources.files("lpips")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the linear weights of LPIPS come from the lpips package: pip install lpips, "
            "or pass linear_weights=<path to v0.1/<net>.pth>") from err
    return Path(str(root / "weights" / "v0.1" / f"{net}.pth"))


class LPIPS(nn.Module):
    """LPIPS distance, book equation (lpips); equal to ``lpips.LPIPS(net=net)`` given the same backbone.

    Args:
        net: ``"alex"`` (default, as in ``lpips``), ``"vgg"`` (VGG-16) or ``"squeeze"`` (SqueezeNet 1.1).
        backbone_weights: a torchvision state-dict file for the backbone; default: look in the torch
            hub cache (``backbone_path(net)``), then download if ``download``.
        download: allow downloading the backbone from torchvision's URL when it is not cached, with
            ``course_lib.downloads.ensure`` (SHA-256 prefix verified, no partial file left in the cache;
            ``$COURSE_WEIGHTS_MIRROR`` selects a mirror).
        linear_weights: the lpips linear-layer file; default: the one the ``lpips`` package ships.
        pretrained: ``True`` (default): the backbone's ImageNet weights, as above. ``False``: FOR TESTS
            AND TIMING ONLY, a randomly initialised backbone (the distance is then meaningless; the
            ``lpips`` package calls this ``pnet_rand=True``); no file is read for it. Never done unless
            asked. The learned linear weights are loaded either way.
        normalize: the default input convention of ``forward``: ``False`` (as the ``lpips`` package
            and torchmetrics) for inputs in [-1, 1]; ``True`` for images in [0, 1], which are mapped
            to [-1, 1] by 2 x - 1 first. ``forward(x, y, normalize=...)`` overrides it per call.

    Shapes:
        ``forward(x, y)``: x, y of shape (N, 3, H, W), values in [-1, 1] (in [0, 1] with
        ``normalize=True``), H, W >= a minimum size (31 for alex, 16 for vgg, 17 for squeeze);
        returns (N,) non-negative distances (0 iff the features agree), on the module's device, in
        its dtype (float32 unless converted), differentiable (usable as a loss).

    Raises:
        ValueError: for an unknown ``net``; in ``forward``, for inputs of the wrong shape, NaN/inf,
            or values outside [-1, 1] (outside [0, 1] with ``normalize=True``) beyond float round-off.
        BackboneWeightsNotFoundError: if the backbone weights are absent and cannot be downloaded, or
            the download is refused (wrong hash, truncated); the message names the expected file.

    Warns:
        UserWarning: in ``forward`` with ``normalize=False``, when both inputs lie entirely in [0, 1]:
            they are probably [0, 1] images, for which ``normalize=True`` is right.

    Example:
        >>> metric = LPIPS("squeeze", pretrained=False)  # random backbone: for this example only
        >>> x = torch.rand(2, 3, 32, 32) * 2 - 1
        >>> d = metric(x, x.flip(-1)); d.shape, bool((d > 0).all()), float(metric(x, x).abs().max())
        (torch.Size([2]), True, 0.0)
        >>> images = (x + 1) / 2  # the same pictures in [0, 1]
        >>> bool(torch.allclose(metric(images, images.flip(-1), normalize=True), d))
        True
    """

    def __init__(self, net: str = "alex", backbone_weights: str | os.PathLike | None = None,
                 download: bool = True, linear_weights: str | os.PathLike | None = None,
                 pretrained: bool = True, normalize: bool = False):
        super().__init__()
        _check_net(net)
        _check_normalize(normalize)
        spec = BACKBONES[net]
        self.net = net
        self.normalize = normalize
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        if not isinstance(pretrained, bool):
            raise ValueError(f"pretrained must be True or False, got {pretrained!r}")
        features = _build_features(spec, net, backbone_weights, download, random_backbone=not pretrained)
        starts = (0, *spec.cuts[:-1])
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, spec.cuts, strict=True))
        # Channels-last weights (and activations, see layer_distances): oneDNN's convolutions and max-pooling
        # run on this layout without reordering every tensor, and the norm over channels reads contiguous memory.
        self.slices.to(memory_format=torch.channels_last)
        for p in self.slices.parameters():
            p.requires_grad_(False)
        path = Path(linear_weights) if linear_weights is not None else linear_weights_path(net)
        if not path.is_file():
            raise FileNotFoundError(f"LPIPS linear weights not found at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for k, ch in enumerate(spec.channels):
            weight = state[f"lin{k}.model.1.weight"]  # the 1x1 convolution, shape (1, ch, 1, 1)
            if weight.shape != (1, ch, 1, 1):
                raise ValueError(f"linear_weights: lin{k} has shape {tuple(weight.shape)}, expected (1, {ch}, 1, 1)")
            self.register_buffer(f"lin{k}", weight.reshape(1, ch, 1, 1).clone())
        self.eval()

    @property
    def min_size(self) -> int:
        return BACKBONES[self.net].min_size

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor, normalize: bool | None = None) -> list[torch.Tensor]:
        """The per-layer terms of equation (lpips), each of shape (N,); their sum is ``forward``.

        ``normalize``: ``None`` uses the module's; see the class docstring.
        """
        normalize = self.normalize if normalize is None else normalize
        _check_normalize(normalize)
        _check_inputs(x, y, self.min_size, normalize)
        if normalize:  # [0, 1] images -> [-1, 1], as lpips.LPIPS(normalize=True) and torchmetrics
            x, y = 2 * x - 1, 2 * y - 1
        n = x.shape[0]
        out = []
        with full_precision(x.device):  # a measurement: bf16 autocast would move it by about 1e-2
            # x and y as ONE batch of 2N images (each layer runs once), channels-last, scaled in one pass:
            # (t - shift) / scale = t * (1 / scale) - shift / scale.
            gain, offset = 1 / self.scale, -self.shift / self.scale
            if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):  # a loss: autograd, no out=
                h = torch.addcmul(offset, torch.cat([x, y]).to(gain.dtype), gain)
                h = h.contiguous(memory_format=torch.channels_last)
            else:
                h = torch.empty((2 * n, *x.shape[1:]), dtype=gain.dtype, device=x.device,
                                memory_format=torch.channels_last)
                torch.addcmul(offset, x, gain, out=h[:n])
                torch.addcmul(offset, y, gain, out=h[n:])
            for k, block in enumerate(self.slices):  # layer by layer: only one layer's features are kept
                h = block(h)
                out.append(_layer_distance(h, n, getattr(self, f"lin{k}")))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor, normalize: bool | None = None) -> torch.Tensor:
        """One LPIPS distance per image pair, shape (N,); see the class docstring."""
        return torch.stack(self.layer_distances(x, y, normalize)).sum(dim=0)


def _layer_distance(h: torch.Tensor, n: int, weight: torch.Tensor) -> torch.Tensor:
    """One term of equation (lpips) from the features ``h`` of x (first n) and y (last n), shape (n,).

    Each position's feature vector is divided by its norm (plus ``EPS``, as ``lpips.normalize_tensor``);
    the squared differences are weighted per channel (``weight``, shape (1, C, 1, 1)), summed over
    channels and averaged over positions. Without autograd the temporaries are overwritten in place:
    the first layers' features are the largest tensors of the whole computation.
    """
    inplace = not (torch.is_grad_enabled() and h.requires_grad)
    norm = torch.linalg.vector_norm(h, dim=1, keepdim=True)
    f = h * (norm.add_(EPS).reciprocal_() if inplace else 1 / (norm + EPS))  # unit feature vectors
    # (no fused multiply-add here: it would leave 1e-16 between identical images instead of 0)
    sq = f[:n].sub_(f[n:]).square_() if inplace else (f[:n] - f[n:]).square()
    # sum_c w_c d_c^2: a matrix-vector product over channels (contiguous in the channels-last layout)
    return torch.matmul(sq.permute(0, 2, 3, 1), weight.flatten().to(sq.dtype)).mean(dim=(1, 2))


def _check_net(net: str) -> None:
    check_choice(net, "net", sorted(BACKBONES))


def _check_normalize(normalize) -> None:
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be True or False, got {normalize!r}")


def _check_inputs(x: torch.Tensor, y: torch.Tensor, min_size: int, normalize: bool) -> None:
    """Shapes, then values (the input convention), then the backbone's minimum size."""
    for name, t in (("x", x), ("y", y)):
        check_tensor(t, name, floating=True)
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{name} must have shape (N, 3, H, W) (RGB; repeat a grayscale image "
                             f"with .expand(-1, 3, -1, -1)), got {tuple(t.shape)}")
    check_same_shape(x, y)
    lows = []
    for name, t in (("x", x), ("y", y)):  # one read of each: NaN, inf and the range
        if normalize:
            lo, _ = check_range(t, name, 0.0, 1.0, "; with normalize=True LPIPS expects images in [0, 1]")
        else:
            lo, _ = check_range(t, name, -1.0, 1.0, "; LPIPS expects 2 * image - 1 for images in [0, 1] "
                                                    "(or pass normalize=True)")
        lows.append(lo)
    # Images in [0, 1] given as if they were in [-1, 1] use half the range: legal, almost surely a mistake.
    if not normalize and min(lows) >= -ROUND_OFF:
        warnings.warn("x and y are both entirely in [0, 1], but LPIPS expects inputs in [-1, 1]: pass "
                      "normalize=True for images in [0, 1] (or map them by 2 * image - 1)",
                      UserWarning, stacklevel=3)
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"x and y must be at least {min_size}x{min_size} pixels for this backbone, "
                         f"got {tuple(x.shape[-2:])}")


def _build_features(spec: Backbone, net: str, backbone_weights, download: bool, random_backbone: bool) -> nn.Module:
    import torchvision

    builder = getattr(torchvision.models, spec.builder)
    if random_backbone:
        return builder(weights=None).features
    state = _load_backbone_state(spec, net, backbone_weights, download)
    with torch.device("meta"):  # no time spent initialising weights that are replaced next
        model = builder(weights=None)
    model.load_state_dict(state, assign=True)
    return model.features.float()


def _load_backbone_state(spec: Backbone, net: str, backbone_weights, download: bool) -> dict:
    if backbone_weights is not None:
        path = Path(backbone_weights)
        if not path.is_file():
            raise BackboneWeightsNotFoundError(f"backbone_weights={str(path)!r} does not exist")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    path = backbone_path(net)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    how = (f"LPIPS(net={net!r}) needs torchvision's ImageNet weights of {spec.builder}, expected at {path} "
           f"(torch hub cache; set TORCH_HOME to look elsewhere). Get them by running "
           f"torchvision.models.{spec.builder}(weights='IMAGENET1K_V1') once on a machine with internet and "
           f"copying {spec.file_name} there, or pass backbone_weights=<path to {spec.file_name}>, or set "
           f"{downloads.MIRROR_ENV} to a server or folder that holds it.")
    if not download:
        raise BackboneWeightsNotFoundError(how)
    try:
        path = downloads.ensure(spec.file_name, progress=True)  # torchvision's hash prefix, verified
    except downloads.WeightsDownloadError as err:  # offline (URLError), HTTP error, truncated, wrong hash
        raise BackboneWeightsNotFoundError(f"{how} (download failed: {err})") from err
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def feature_distance(blocks, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS's recipe with uniform weights on ANY feature extractor: NOT LPIPS unless the blocks are its backbone.

    Runs ``blocks`` in sequence, and after each one normalises the features along channels
    (equation (lpips-norm)), sums the squared differences over channels, averages over positions
    and sums over blocks: equation (lpips) with every w_l = 1. This is the ``lpips`` package's
    ``LPIPS(lpips=False)`` baseline; the notebooks use it with the course's own Fashion-MNIST
    encoder as a clearly labelled stand-in when the ImageNet backbones are not available.

    Args:
        blocks: a sequence of modules, each mapping the previous output to (N, C_l, H_l, W_l) features.
        x, y: inputs of the first block, same shape (N, ...), finite.

    Returns:
        (N,) non-negative distances, 0 for identical inputs, computed without autocast.

    Raises:
        ValueError: if ``blocks`` is empty, or x and y differ in shape or hold NaN/inf.

    Example:
        >>> blocks = [nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU())]
        >>> x = torch.rand(2, 1, 12, 12)
        >>> feature_distance(blocks, x, x).tolist(), feature_distance(blocks, x, 1 - x).shape
        ([0.0, 0.0], torch.Size([2]))
    """
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks must hold at least one module")
    check_finite_pair(x, y)
    n = x.shape[0]
    h = torch.cat([x, y])
    total = torch.zeros(n, dtype=h.dtype, device=h.device)
    with full_precision(h.device):  # a measurement: the same numbers inside a bf16 autocast region
        for block in blocks:
            h = block(h)
            f = h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
            total = total + (f[:n] - f[n:]).pow(2).sum(dim=1).mean(dim=(1, 2))
    return total
