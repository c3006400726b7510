"""The FID InceptionV3 of pytorch-fid (TensorFlow's FID Inception) and its weights.

FID and the Inception Score of the papers (``course_lib.fid``) read the pool3 features (2048-d)
and the 1008-way softmax of this network. Its layers and state-dict keys are pytorch-fid's, so
pytorch-fid's weight file loads as is; the weights are read from the torch hub cache under
pytorch-fid's file name, a file you pass, or downloaded and SHA-256-verified by
``course_lib.downloads``. Random weights are never used in their place.

Like every extractor (``course_lib.classifier.FashionClassifier`` too), it offers
``features(images) -> (N, D)`` and ``probs(images) -> (N, K)``, both float64 CPU tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import downloads
from course_lib.resizing import check_style, inception_input
from course_lib.runtime import float64_cpu, full_precision
from course_lib.validation import check_images, check_positive_int

FID_WEIGHTS_FILE = downloads.FID_INCEPTION  # "pt_inception-2015-12-05-6726825d.pth", pytorch-fid's release
FID_WEIGHTS_URL = downloads.PINNED[FID_WEIGHTS_FILE].url
INCEPTION_SIZE = 299


class InceptionWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights are not on this machine and could not be downloaded."""


def inception_weights_path() -> Path:
    """Where the FID Inception weights are expected: ``torch.hub.get_dir()/checkpoints/<pytorch-fid's file>``.

    Example:
        >>> inception_weights_path().name
        'pt_inception-2015-12-05-6726825d.pth'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def inception_available() -> bool:
    """True when ``inception_weights_path()`` exists, i.e. ``InceptionV3()`` works offline."""
    return inception_weights_path().is_file()


def _pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    # TensorFlow's average pool ignores the zero padding (torchvision's counts it).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _make_blocks():
    """torchvision's Inception blocks A, C and E, patched to compute as TensorFlow's FID Inception does."""
    from torchvision.models import inception as tv

    class FIDInceptionA(tv.InceptionA):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return torch.cat([b1, b5, b3, self.branch_pool(_pool(x, "avg"))], 1)

    class FIDInceptionC(tv.InceptionC):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                          self.branch7x7dbl_5):
                d = layer(d)
            return torch.cat([b1, b7, d, self.branch_pool(_pool(x, "avg"))], 1)

    class FIDInceptionE(tv.InceptionE):
        def __init__(self, in_channels, pool_kind):
            super().__init__(in_channels)
            self.pool_kind = pool_kind

        def forward(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            # The FID Inception max-pools in its last block (the paper and torchvision average).
            return torch.cat([b1, b3, d, self.branch_pool(_pool(x, self.pool_kind))], 1)

    return FIDInceptionA, FIDInceptionC, FIDInceptionE


class InceptionV3(nn.Module):
    """The FID InceptionV3 of pytorch-fid: pool3 features (2048-d) for FID, 1008-way logits for IS.

    Layers and state-dict keys are those of ``pytorch_fid.inception.fid_inception_v3()`` (torchvision's
    ``Inception3`` with the blocks patched as TensorFlow computes them), so pytorch-fid's weight file
    loads as is. Inputs in [0, 1], (N, 1 or 3, H, W): a grayscale image is repeated to 3 channels,
    every image is resized to 299x299 bilinearly (``align_corners=False``, no antialiasing, as
    pytorch-fid) and scaled to [-1, 1].

    Args:
        weights: a state-dict file; default: ``inception_weights_path()`` (the torch hub cache under
            ``$TORCH_HOME``), then a download from pytorch-fid's release when ``download``.
        download: allow the download when the file is not cached: ``course_lib.downloads.ensure``, which
            checks the pinned SHA-256 and size and never leaves a partial file in the cache
            (``$COURSE_WEIGHTS_MIRROR`` selects a mirror).
        style: the input resizing and scaling, ``"pytorch-fid"`` (default, that of the reference
            features) or another of ``course_lib.resizing.RESIZE_STYLES`` to measure what it changes.
        pretrained: ``True`` (default): pytorch-fid's weights, as above. ``False``: FOR TESTS AND
            TIMING ONLY, random weights, no file read (the features are then meaningless).

    Raises:
        InceptionWeightsNotFoundError: when the weights are absent and cannot be downloaded, or the
            download is refused (wrong hash, truncated); the message names the expected file (and
            hash). Random weights are never used in their place.
        ValueError: for a ``style`` not in ``RESIZE_STYLES``, or ``weights`` with ``pretrained=False``.

    Example:
        >>> InceptionV3(weights="/nonexistent.pth")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        course_lib.inception.InceptionWeightsNotFoundError: weights='/nonexistent.pth' does not exist
    """

    feature_dim, num_classes = 2048, 1008

    def __init__(self, weights: str | os.PathLike | None = None, download: bool = True, style: str = "pytorch-fid",
                 pretrained: bool = True):
        super().__init__()
        check_style(style)  # before the weights are read: a typo should not cost a download
        if not isinstance(pretrained, bool):
            raise ValueError(f"pretrained must be True or False, got {pretrained!r}")
        if weights is not None and not pretrained:
            raise ValueError("weights is a file of pretrained weights: pass it with pretrained=True")
        self.style = style
        state = _load_inception_state(weights, download) if pretrained else None
        self._build()
        if state is not None:
            self.load_state_dict(state)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _build(self):
        from torchvision.models.inception import BasicConv2d, InceptionB, InceptionD

        fid_a, fid_c, fid_e = _make_blocks()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = fid_a(192, pool_features=32)
        self.Mixed_5c = fid_a(256, pool_features=64)
        self.Mixed_5d = fid_a(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = fid_c(768, channels_7x7=128)
        self.Mixed_6c = fid_c(768, channels_7x7=160)
        self.Mixed_6d = fid_c(768, channels_7x7=160)
        self.Mixed_6e = fid_c(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = fid_e(1280, "avg")
        self.Mixed_7c = fid_e(2048, "max")
        self.fc = nn.Linear(2048, self.num_classes)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) in [0, 1] -> (N, 3, 299, 299) network input, resized as ``self.style``."""
        return inception_input(images, self.style, INCEPTION_SIZE)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """pool3 features (N, 2048) of preprocessed inputs (N, 3, 299, 299) in [-1, 1]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1008) of images in [0, 1]."""
        return self.fc(self.pool3(self.preprocess(images)))

    @torch.no_grad()
    def _run(self, images: torch.Tensor, what: str, batch_size: int, bias: bool = False) -> torch.Tensor:
        check_images(images, "images")
        check_positive_int(batch_size, "batch_size")
        device = self.fc.weight.device
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = self.preprocess(images[start:start + batch_size].to(device, torch.float32))
            with full_precision(device):  # features for a measurement: float32 even under bf16 autocast
                h = self.pool3(x)
                if what == "probs":  # the logits, with or without the final layer's bias
                    h = self.fc(h) if bias else h @ self.fc.weight.T
            # float64 only on the CPU (MPS has none): the softmax and FID's statistics run there
            h = float64_cpu(h)
            out.append(torch.softmax(h, dim=1) if what == "probs" else h)
        return torch.cat(out)

    def features(self, images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
        """pool3 features (N, 2048), a float64 CPU tensor, of images (N, 1 or 3, H, W) in [0, 1] on any device."""
        return self._run(images, "features", batch_size)

    def probs(self, images: torch.Tensor, batch_size: int = 50, bias: bool = False) -> torch.Tensor:
        """p(y|x) for the Inception Score: the softmax of the 1008 logits (N, 1008), a float64 CPU tensor.

        The logits are pool3 @ W^T *without* the final layer's bias, as in the original Inception
        Score code (Salimans et al. 2016, ``tf.matmul(pool3, w)``), torch-fidelity
        (``logits_unbiased``) and torchmetrics. ``bias=True`` adds the bias, to show that the score
        changes with it; do not report that variant.
        """
        return self._run(images, "probs", batch_size, bias)


def _load_inception_state(weights, download: bool) -> dict:
    """The state dict from ``weights``, the torch hub cache, or (when ``download``) pytorch-fid's release."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise InceptionWeightsNotFoundError(f"weights={str(path)!r} does not exist")
        return torch.load(path, map_location="cpu", weights_only=True)
    path = inception_weights_path()
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    how = (f"the FID Inception weights are expected at {path} (torch hub cache; set TORCH_HOME to look "
           f"elsewhere). Download {FID_WEIGHTS_URL} on a machine with internet and copy it there, or pass "
           f"weights=<path to the file>, or set {downloads.MIRROR_ENV} to a server or folder that holds it.")
    if not download:
        raise InceptionWeightsNotFoundError(how)
    try:
        path = downloads.ensure(FID_WEIGHTS_FILE, progress=True)  # pinned SHA-256 and size, verified
    except downloads.WeightsDownloadError as err:  # offline (URLError), HTTP error, truncated, wrong hash
        raise InceptionWeightsNotFoundError(f"{how} (download failed: {err})") from err
    return torch.load(path, map_location="cpu", weights_only=True)


__all__ = ["FID_WEIGHTS_FILE", "FID_WEIGHTS_URL", "INCEPTION_SIZE", "InceptionV3", "InceptionWeightsNotFoundError",
           "inception_available", "inception_weights_path"]
