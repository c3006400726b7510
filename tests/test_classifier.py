"""The shipped Fashion-MNIST classifier, the domain extractor of FID and IS."""

import pytest
import torch

from course_lib import checkpoints
from course_lib.classifier import FashionClassifier, accuracy, extract, load_fashion_classifier, train_classifier
from course_lib.data import load_fashion_mnist
from course_lib.fid import fid, inception_score


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_fashion_classifier()


def test_shipped_checkpoint_is_accurate(model):
    assert checkpoints.read_manifest()["fashion_classifier"]["metrics"]["test_accuracy"] >= 0.90
    x, y = load_fashion_mnist("test", subset=2000)
    assert accuracy(model, x, y) >= 0.88  # measured again, on the first 2,000 test images


def test_features_and_probs_interface(model):
    x, _ = load_fashion_mnist("test", subset=300)
    feats, probs = model.features(x), model.probs(x)
    assert feats.shape == (300, 128) and feats.dtype == torch.float64
    assert probs.shape == (300, 10) and torch.allclose(probs.sum(1), torch.ones(300, dtype=torch.float64))
    assert torch.allclose(model.features(x, batch_size=7), feats, atol=1e-5)
    both = model.features_and_probs(x)
    assert torch.equal(both[0], feats) and torch.equal(both[1], probs)
    # real images are confidently classified and spread over the classes: domain IS well above 1
    assert inception_score(probs, splits=3)[0] > 5
    # noise is far from clothes in the classifier's feature space
    noise = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x2, _ = load_fashion_mnist("train", subset=300)
    assert float(fid(feats, model.features(noise))) > 10 * float(fid(feats, model.features(x2)))


def test_extract_errors():
    model = FashionClassifier()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        extract(model, torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="outside"):
        extract(model, torch.full((2, 1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="what"):
        extract(model, torch.rand(2, 1, 28, 28), "pool3")


def test_shipped_checkpoint_loads_with_a_str_or_torch_device():
    for device in ("cpu", torch.device("cpu")):
        loaded = load_fashion_classifier(device)
        assert not loaded.training and next(loaded.parameters()).device.type == "cpu"
    assert list(loaded.state_dict()) == list(FashionClassifier().state_dict())  # the keys of the class


def blocks_dataset(n, seed):
    """Class c: a bright 7x7 block at place c of a 4x3 grid on faint noise; separable at a glance."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = 0.2 * torch.rand(n, 1, 28, 28, generator=g)
    for i, c in enumerate(y.tolist()):
        r, k = divmod(c, 3)
        x[i, 0, 7 * r:7 * r + 7, 9 * k:9 * k + 7] = 1.0
    return x, y


def test_train_classifier_runs_the_course_training_loop(monkeypatch):
    from course_lib import classifier as C

    calls, real_train = [], C.train

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(C, "train", spy)
    x, y = blocks_dataset(300, 0)
    x_val, y_val = blocks_dataset(100, 1)
    model = FashionClassifier()
    history = C.train_classifier(model, x, y, epochs=2, batch_size=32, x_val=x_val, y_val=y_val,
                                 device=torch.device("cpu"), seed=0)
    (_, _, data), kwargs = calls[0]
    assert isinstance(data, tuple) and kwargs["lr_schedule"] == "cosine" and kwargs["val_data"][0] is x_val
    assert {"train_loss", "train_accuracy", "val_accuracy"} <= set(history)
    assert all(len(history[k]) == 2 for k in ("train_loss", "train_accuracy", "val_accuracy"))
    assert history["train_loss"][1] < history["train_loss"][0]
    assert not model.training
    # the history's validation accuracy is the accuracy measured independently afterwards
    assert history["val_accuracy"][-1] == pytest.approx(accuracy(model, x_val, y_val), abs=1e-6)
    assert history["val_accuracy"][-1] > 0.9  # the blocks are easy: it did learn
    # the logged training accuracy is the fraction of correct predictions, in [0, 1]
    assert all(0 <= a <= 1 for a in history["train_accuracy"])


def test_train_classifier_is_repeatable_and_extract_gives_float64_cpu():
    x, y = blocks_dataset(64, 2)
    runs = []
    for _ in range(2):
        torch.manual_seed(5)  # the same initial weights; then the run itself is seeded by seed=3
        model = FashionClassifier()
        train_classifier(model, x, y, epochs=1, batch_size=16, seed=3, device="cpu")
        runs.append(model.features(x))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    feats, probs = FashionClassifier().features_and_probs(x)
    assert feats.dtype == probs.dtype == torch.float64 and feats.device.type == probs.device.type == "cpu"


def test_train_classifier_and_extract_errors():
    x, y = blocks_dataset(8, 4)
    model = FashionClassifier()
    with pytest.raises(ValueError, match="x and y must have the same length"):
        train_classifier(model, x, y[:5], epochs=1)
    with pytest.raises(ValueError, match="x_val and y_val must be given together"):
        train_classifier(model, x, y, epochs=1, x_val=x)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        train_classifier(model, x, y, epochs=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        extract(model, x, batch_size=0)
    with pytest.raises(ValueError, match="images is empty"):
        extract(model, x[:0])
