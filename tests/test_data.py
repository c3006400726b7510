import gzip
import shutil

import numpy as np
import pytest
import torch

from course_lib import data


def test_train_split_matches_published_statistics(fashion_mnist_available):
    x, y = data.load_fashion_mnist("train", download=False)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    # Published normalisation constants of Fashion-MNIST's training pixels.
    assert round(float(x.mean()), 4) == 0.2860
    assert round(float(x.std()), 4) == 0.3530
    assert torch.bincount(y).tolist() == [6000] * 10


def test_test_split_and_subset(fashion_mnist_available):
    x, y = data.load_fashion_mnist("test", download=False)
    assert x.shape == (10000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [1000] * 10
    xs, ys = data.load_fashion_mnist("test", subset=7, download=False)
    assert torch.equal(xs, x[:7]) and torch.equal(ys, y[:7])
    assert len(data.CLASS_NAMES) == 10 and data.CLASS_NAMES[9] == "Ankle boot"


def _write_idx(path, array: np.ndarray, compress: bool):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return raw


def test_idx_parser_reads_a_hand_made_file(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _write_idx(tmp_path / "x", array, compress=False)
    assert np.array_equal(data._parse_idx(raw), array)


@pytest.fixture
def copied_data(tmp_path, fashion_mnist_available):
    src = data.find_data_dir(download=False)
    for name in data._all_names():
        path = data._file_for(src, name)
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_explicit_root_and_env_are_used_first(copied_data, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(copied_data))
    assert data.find_data_dir(download=False) == copied_data
    x, _ = data.load_fashion_mnist("test", root=copied_data, subset=3)
    assert x.shape == (3, 1, 28, 28)


def test_uncompressed_files_in_torchvision_layout(copied_data, tmp_path_factory):
    raw_dir = tmp_path_factory.mktemp("tv") / "FashionMNIST" / "raw"
    raw_dir.mkdir(parents=True)
    for name in data._all_names():
        with gzip.open(copied_data / f"{name}.gz") as f:
            (raw_dir / name).write_bytes(f.read())
    x_tv, y_tv = data.load_fashion_mnist("test", root=raw_dir.parent.parent)
    x, y = data.load_fashion_mnist("test", root=copied_data)
    assert torch.equal(x, x_tv) and torch.equal(y, y_tv)


def test_corrupt_file_is_named(copied_data):
    path = copied_data / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path) as f:
        raw = bytearray(f.read())
    raw[100] = (raw[100] + 1) % 10  # one wrong label
    with gzip.open(path, "wb") as f:
        f.write(bytes(raw))
    with pytest.raises(RuntimeError, match="t10k-labels-idx1-ubyte.gz is corrupt"):
        data.load_fashion_mnist("test", root=copied_data)


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataNotFoundError, match=r"COURSE_DATA.*apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("train")
    with pytest.raises(data.DataNotFoundError, match="root="):
        data.load_fashion_mnist("train", root=tmp_path / "nowhere")


def test_nothing_found_and_no_download(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(data, "DOWNLOAD_DIR", tmp_path / "cache")
    with pytest.raises(data.DataNotFoundError, match="dataset-fashion-mnist"):
        data.find_data_dir(download=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "validation"}, "split must be 'train' or 'test'"),
    ({"subset": 0}, "subset must be a positive int"),
    ({"subset": 2.5}, "subset must be a positive int"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_fashion_mnist(**kwargs)
