"""Shared fixtures. The tests never download anything."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")  # no window, in tests and doctests alike


def _fashion_available() -> bool:
    from course_lib.data import DataNotFoundError, find_data_dir

    try:
        find_data_dir(download=False)
    except DataNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (use with ``pytest.mark.usefixtures``)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def fashion_mnist_available():
    if not _fashion_available():
        where = os.environ.get("COURSE_DATA") or "/usr/share/datasets/fashion-mnist"
        pytest.skip(f"Fashion-MNIST not found ({where}); install Debian's dataset-fashion-mnist or set COURSE_DATA")
    return True
