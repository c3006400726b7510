import json

import pytest
import torch
from torch import nn

from course_lib import checkpoints
from course_lib.training import batches, evaluate, train, train_in_chunks


class Line(nn.Module):
    def __init__(self, slope: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([slope]))

    def forward(self, x):
        return self.w * x


def squared_error(model, batch):
    x, y = batch[:, 0], batch[:, 1]
    residual = model(x) - y
    return {"loss": residual.pow(2).mean(), "abs": residual.abs().mean()}


@pytest.fixture
def line_data():
    x = torch.linspace(-1, 1, 64)
    return torch.stack([x, 3 * x], dim=1)  # y = 3x exactly


def test_training_fits_a_line_and_records_history(line_data):
    model = Line()
    history = train(model, squared_error, line_data, epochs=60, lr=0.1, batch_size=16, val_data=line_data,
                    progress=False, device=torch.device("cpu"))
    assert model.w.item() == pytest.approx(3.0, abs=1e-2)
    assert set(history) == {"train_loss", "train_abs", "val_loss", "val_abs", "epoch_seconds"}
    assert all(len(v) == 60 for v in history.values())
    assert history["val_loss"][-1] < 1e-3 < history["val_loss"][0]


def test_training_is_repeatable_with_a_seed(line_data):
    runs = []
    for _ in range(2):
        model = Line()
        train(model, squared_error, line_data, epochs=2, lr=0.05, batch_size=8, seed=7, progress=False,
              device=torch.device("cpu"))
        runs.append(model.w.item())
    assert runs[0] == runs[1]


def test_evaluate_weights_batches_by_size(line_data):
    model = Line(slope=2.0)  # residual = -x
    got = evaluate(model, squared_error, line_data, batch_size=10)  # 64 = 6*10 + 4
    x = line_data[:, 0]
    assert got["loss"] == pytest.approx(float(x.pow(2).mean()), rel=1e-6)
    assert got["abs"] == pytest.approx(float(x.abs().mean()), rel=1e-6)


def test_batches_cover_every_row_once():
    data = torch.arange(10).unsqueeze(1)
    seen = torch.cat(list(batches(data, 3, shuffle=True, generator=torch.Generator().manual_seed(0))))
    assert sorted(seen.squeeze(1).tolist()) == list(range(10))


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs must be"), ({"epochs": 1, "batch_size": 0},
                                                                              "batch_size must be")])
def test_bad_arguments(line_data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(Line(), squared_error, line_data, progress=False, **kwargs)


def test_train_in_chunks_logs_one_entry_per_chunk_and_follows_the_shuffles(line_data):
    seen = []

    def recording(model, batch):
        if model.training:
            seen.append(batch[:, 0].clone())
        return squared_error(model, batch)

    epochs = []
    history = train_in_chunks(Line(), recording, line_data, chunk_size=20, passes=2, lr=0.1, batch_size=7, seed=3,
                              progress=False, device="cpu", val_data=line_data,
                              on_epoch_end=lambda epoch, h: epochs.append(epoch))
    per_pass = 64 // 20  # 3 chunks of 20; 4 examples of each shuffle sit the pass out
    assert all(len(v) == 2 * per_pass for v in history.values())
    assert {"train_loss", "val_loss"} <= set(history) and epochs == [1] * (2 * per_pass)
    # the chunks are the successive 20-row slices of torch.randperm(64) drawn from a generator seeded with 3
    g = torch.Generator().manual_seed(3)
    x = line_data[:, 0]
    trained = torch.cat(seen)
    expected = []
    for _ in range(2):
        order = torch.randperm(64, generator=g)
        expected += [sorted(x[order[s:s + 20]].tolist()) for s in range(0, 60, 20)]
    chunks = [sorted(trained[i * 20:(i + 1) * 20].tolist()) for i in range(2 * per_pass)]
    assert chunks == expected


def test_train_in_chunks_is_one_training_with_one_optimizer(line_data):
    # one Adam optimizer across chunks: the same steps as train() called by hand on the chunks
    model = Line()
    train_in_chunks(model, squared_error, line_data, chunk_size=32, passes=2, lr=0.05, batch_size=8, seed=1,
                    progress=False, device="cpu")
    by_hand = Line()
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1)
    step = 0
    for _ in range(2):
        order = torch.randperm(64, generator=g)
        for start in (0, 32):
            train(by_hand, squared_error, line_data[order[start:start + 32]], epochs=1, optimizer=optimizer,
                  batch_size=8, seed=1 + step, progress=False, device="cpu")
            step += 1
    assert model.w.item() == by_hand.w.item()
    fitted = Line()
    train_in_chunks(fitted, squared_error, line_data, chunk_size=16, passes=30, lr=0.1, batch_size=16,
                    progress=False, device="cpu")
    assert fitted.w.item() == pytest.approx(3.0, abs=1e-2)


def test_train_in_chunks_takes_tuple_data(line_data):
    pairs = (line_data[:, :1], line_data[:, 1:])

    def objective(model, batch):
        x, y = batch
        return {"loss": (model(x) - y).pow(2).mean()}

    history = train_in_chunks(Line(), objective, pairs, chunk_size=64, passes=2, progress=False, device="cpu")
    assert len(history["train_loss"]) == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"chunk_size": 0, "passes": 1}, r"chunk_size must be an int in \[1, 64\]"),
    ({"chunk_size": 65, "passes": 1}, r"chunk_size must be an int in \[1, 64\]"),
    ({"chunk_size": 8, "passes": 0}, "passes must be a positive int"),
    ({"chunk_size": 8, "passes": 1, "epochs": 3}, r"does not support \['epochs'\]"),
    ({"chunk_size": 8, "passes": 1, "lr_schedule": "cosine"}, "lr_schedule"),
])
def test_train_in_chunks_bad_arguments(line_data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_in_chunks(Line(), squared_error, line_data, progress=False, **kwargs)


def test_checkpoint_round_trip_and_manifest(tmp_path):
    model = nn.Linear(3, 2)
    path = tmp_path / "m.pt"
    sha = checkpoints.save_checkpoint(path, model, init_kwargs={"in_features": 3, "out_features": 2},
                                      history={"train_loss": [2.0, 1.0]})
    manifest = tmp_path / "manifest.json"
    checkpoints.register_checkpoint("lin", path, sha, manifest=manifest, recipe={"epochs": 2})
    assert json.loads(manifest.read_text())["lin"]["sha256"] == sha
    loaded, ckpt = checkpoints.load_pretrained("lin", manifest=manifest)
    assert isinstance(loaded, nn.Linear) and not loaded.training
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ckpt["history"]["train_loss"] == [2.0, 1.0]

    path.write_bytes(path.read_bytes() + b"x")  # corrupt the file
    with pytest.raises(checkpoints.ChecksumError, match="m.pt has SHA-256"):
        checkpoints.load_pretrained("lin", manifest=manifest)
    with pytest.raises(KeyError, match="available: \\['lin'\\]"):
        checkpoints.load_pretrained("nope", manifest=manifest)


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert checkpoints.sha256_of(path) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_shipped_checkpoints_match_their_hashes():
    entries = checkpoints.read_manifest()
    assert entries, "course_lib/pretrained/manifest.json lists no checkpoint"
    for name, entry in entries.items():
        path = checkpoints.PRETRAINED_DIR / entry["file"]
        assert checkpoints.sha256_of(path) == entry["sha256"], name
        assert path.stat().st_size < 5 * 2**20, f"{name} is over 5 MiB"


def test_training_with_a_progress_bar_prints_no_warning():
    """The bar reads the loss of a tensor that requires grad: without detach() torch warns, and the
    warning (with the library's path) lands in the built book's pages."""
    import warnings

    model = torch.nn.Linear(3, 1)

    def objective(m, x):
        return {"loss": m(x).pow(2).mean()}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(model, objective, torch.randn(64, 3), epochs=1, batch_size=8, device="cpu", progress=True)
