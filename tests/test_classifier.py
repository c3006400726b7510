"""The shipped Fashion-MNIST classifier, the domain extractor of FID and IS."""

import pytest
import torch

from course_lib import checkpoints
from course_lib.classifier import FashionClassifier, accuracy, extract, load_fashion_classifier
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
