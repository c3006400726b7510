"""Fashion-MNIST, found offline first and verified byte for byte.

Sources, in order (``load_fashion_mnist``):

1. the ``root`` argument, else the directory in the ``COURSE_DATA`` environment variable;
2. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
3. a torchvision download into ``~/.cache/course_lib`` when online (Colab).

Each IDX file is checked by the SHA-256 of its *decompressed* bytes: Debian recompressed
the ``.gz`` files, so their checksums differ from torchvision's while the content is equal.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from course_lib.validation import check_positive_int

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = "COURSE_DATA"
DOWNLOAD_DIR = Path.home() / ".cache" / "course_lib"

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# SHA-256 of the decompressed IDX files (Xiao, Rasul and Vollgraf 2017, Zalando's release).
FILES = {
    "train": {
        "images": ("train-images-idx3-ubyte",
                   "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "labels": ("train-labels-idx1-ubyte",
                   "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    },
    "test": {
        "images": ("t10k-images-idx3-ubyte",
                   "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "labels": ("t10k-labels-idx1-ubyte",
                   "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}

HOW_TO_GET = (
    "Get Fashion-MNIST in one of these ways: `sudo apt-get install dataset-fashion-mnist` "
    "(Debian/Ubuntu, files land in /usr/share/datasets/fashion-mnist); or put the four "
    "*-ubyte(.gz) files in a directory and pass root=... or set COURSE_DATA=...; or run "
    "online once with download=True (torchvision fetches them, as in Colab)."
)


class DataNotFoundError(FileNotFoundError):
    """Raised when no source holds a valid copy of the dataset."""


def load_fashion_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    subset: int | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split of Fashion-MNIST as tensors.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        root: a directory holding the IDX files (``.gz`` or not, possibly under
            ``FashionMNIST/raw`` as torchvision stores them). ``None`` searches
            ``COURSE_DATA``, then Debian's package, then downloads.
        subset: keep only the first ``subset`` images (for quick runs), at most the split's size;
            ``None`` keeps all.
        download: allow the torchvision download as the last resort.

    Returns:
        ``(images, labels)``: float32 images of shape (N, 1, 28, 28) with values in
        [0, 1] (grey level / 255) and int64 labels of shape (N,) in 0..9, which index
        ``CLASS_NAMES``.

    Raises:
        ValueError: for an unknown ``split``, or a ``subset`` that is not a positive int (``True``
            is not a size) or is larger than the split.
        DataNotFoundError: when no source has the files; the message says how to get them.
        RuntimeError: when a file is corrupt (it does not decompress, or its checksum differs);
            the message names the file, what is wrong and how to get it again.

    Example:
        >>> images, labels = load_fashion_mnist("test", subset=8)  # doctest: +SKIP
        >>> images.shape, images.dtype, labels.dtype  # doctest: +SKIP
        (torch.Size([8, 1, 28, 28]), torch.float32, torch.int64)
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if subset is not None:
        check_positive_int(subset, "subset")
    directory = find_data_dir(root, download=download)
    images = _read_idx(directory, *FILES[split]["images"])
    labels = _read_idx(directory, *FILES[split]["labels"])
    if subset is not None:
        if subset > len(images):
            raise ValueError(f"subset must be at most the size of the {split!r} split ({len(images)} images), "
                             f"got {subset}")
        images, labels = images[:subset], labels[:subset]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def find_data_dir(root: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The first directory, in the documented order, that holds the four IDX files (``.gz`` or not).

    An explicit ``root`` (or ``COURSE_DATA``) that lacks the files is an error, not a
    reason to look elsewhere: the reader asked for that directory.
    """
    explicit = root if root is not None else os.environ.get(DATA_ENV) or None
    if explicit is not None:
        found = _dir_with_files(Path(explicit))
        if found is None:
            what = "root" if root is not None else f"${DATA_ENV}"
            raise DataNotFoundError(
                f"{what}={str(explicit)!r} does not hold the Fashion-MNIST files "
                f"({', '.join(_all_names())}). {HOW_TO_GET}"
            )
        return found
    for candidate in (DEBIAN_DIR, DOWNLOAD_DIR):
        found = _dir_with_files(candidate)
        if found is not None:
            return found
    if download:
        return _download_with_torchvision(DOWNLOAD_DIR)
    raise DataNotFoundError(f"Fashion-MNIST not found in {DEBIAN_DIR} or {DOWNLOAD_DIR}. {HOW_TO_GET}")


def _all_names() -> list[str]:
    return [name for split in FILES.values() for name, _ in split.values()]


def _dir_with_files(path: Path) -> Path | None:
    for directory in (path, path / "FashionMNIST" / "raw"):
        if all(_file_for(directory, name) is not None for name in _all_names()):
            return directory
    return None


def _file_for(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(directory: Path, name: str, sha256: str) -> np.ndarray:
    path = _file_for(directory, name)
    if path is None:
        raise DataNotFoundError(f"missing file {directory / name}(.gz). {HOW_TO_GET}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip raises all three for damaged files
        raise RuntimeError(
            f"{path} is corrupt: it cannot be read or decompressed ({type(err).__name__}: {err}). "
            f"Delete it and get the file again. {HOW_TO_GET}"
        ) from err
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise RuntimeError(
            f"{path} is corrupt: SHA-256 of its decompressed bytes is {digest}, "
            f"expected {sha256}. Delete it and get the file again. {HOW_TO_GET}"
        )
    return _parse_idx(raw)


def _parse_idx(raw: bytes) -> np.ndarray:
    # IDX format (LeCun's MNIST page): 2 zero bytes, a type code (0x08 = uint8), the number
    # of dimensions, then one big-endian int32 per dimension, then the data.
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _download_with_torchvision(directory: Path) -> Path:
    try:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(directory), train=train, download=True)
    except Exception as err:  # offline, or torchvision missing
        raise DataNotFoundError(
            f"Fashion-MNIST is not on this machine and the download failed ({err}). {HOW_TO_GET}"
        ) from err
    found = _dir_with_files(directory)
    if found is None:
        raise DataNotFoundError(f"torchvision's download into {directory} left no IDX files. {HOW_TO_GET}")
    return found
