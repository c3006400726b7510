"""KID and improved precision/recall against torch-fidelity and hand-computed cases."""

import numpy as np
import pytest
import torch

from course_lib.kid import kid, mmd2_unbiased, polynomial_kernel
from course_lib.precision_recall import knn_radii, nearest_distances, precision_recall

torch_fidelity = pytest.importorskip("torch_fidelity")
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402
from torch_fidelity.metric_prc import prc_features_to_metric  # noqa: E402


def _features(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def _fidelity_kid(real, fake, **kwargs):
    # torch-fidelity's convention: input1 first; KID is symmetric, so the order does not matter
    out = kid_features_to_metric(fake, real, kid_subsets=1, kid_subset_size=len(real), kid_kernel="poly",
                                 kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1,
                                 rng_seed=0, verbose=False, **kwargs)
    return out["kernel_inception_distance_mean"]


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_kid_equals_torch_fidelity_with_one_subset_of_all_samples(shift):
    real, fake = _features(300, 16, 0), _features(300, 16, 1, shift=shift)
    mean, std = kid(real, fake, subsets=1, subset_size=300)
    expected = _fidelity_kid(real, fake)
    assert float(mean) == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert float(std) == 0.0


def test_kid_equals_torch_fidelity_on_course_features():
    from course_lib.classifier import FashionClassifier, extract

    torch.manual_seed(0)
    model = FashionClassifier().eval()
    images = torch.rand(120, 1, 28, 28)
    feats = extract(model, images)[0] if isinstance(extract(model, images), tuple) else extract(model, images)
    real, fake = feats[:60].double(), (feats[60:] * 1.1).double()
    mean, _ = kid(real, fake, subsets=1, subset_size=60)
    assert float(mean) == pytest.approx(_fidelity_kid(real, fake), rel=1e-6, abs=1e-12)


def test_kid_hand_computed_case():
    # 1-D features, degree 1, gamma 1, coef0 0: k(x, y) = x y
    real = torch.tensor([[1.0], [2.0]])
    fake = torch.tensor([[0.0], [1.0]])
    # off-diagonal real: 2 * (1*2) / (2*1) = 2; fake: 2 * (0*1) / 2 = 0; cross: 2 * (0+1+0+2) / 4 = 1.5
    mean, _ = kid(real, fake, subsets=1, subset_size=2, degree=1, gamma=1.0, coef0=0.0)
    assert float(mean) == pytest.approx(2.0 + 0.0 - 1.5)


def test_biased_estimator_differs_from_kid_by_the_diagonal():
    real, fake = _features(50, 4, 2), _features(50, 4, 3)
    kxx, kyy, kxy = (polynomial_kernel(a, b) for a, b in ((real, real), (fake, fake), (real, fake)))
    biased = (kxx.mean() + kyy.mean() - 2 * kxy.mean())
    assert float(biased - mmd2_unbiased(kxx, kyy, kxy)) > 0.01  # the diagonal's positive offset


def test_kid_is_unbiased_where_fid_is_not():
    # two samples of one distribution: the mean over subsets stays near 0 at a small N
    real, fake = _features(400, 8, 4), _features(400, 8, 5)
    mean, std = kid(real, fake, subsets=50, subset_size=50, seed=1)
    assert abs(float(mean)) < 3 * float(std) / np.sqrt(50) + 1e-3


def test_kid_subsets_use_their_own_generator():
    real, fake = _features(100, 4, 6), _features(100, 4, 7)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = kid(real, fake, subsets=5, subset_size=50, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())
    b = kid(real, fake, subsets=5, subset_size=50, seed=3)
    assert torch.equal(a[0], b[0])


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_equals_torch_fidelity(k):
    real = _features(400, 8, 8)
    fake = _features(300, 8, 9, shift=0.5, scale=0.7)
    p, r = precision_recall(real, fake, k=k)
    out = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False,
                                 verbose=False)  # torch-fidelity: generated first
    # the same samples counted inside (torch-fidelity averages in float32)
    assert round(float(p) * len(fake)) == round(out["precision"] * len(fake))
    assert round(float(r) * len(real)) == round(out["recall"] * len(real))
    assert 0.05 < float(p) < 0.999 and 0.05 < float(r) < 0.999  # a case where order matters


def test_precision_recall_order_matters():
    real, fake = _features(300, 4, 10), _features(300, 4, 11, scale=0.3)
    p, r = precision_recall(real, fake)
    assert float(p) > 0.95 and float(r) < 0.6  # a narrow generator: good samples, poor coverage
    p2, r2 = precision_recall(fake, real)
    assert float(p2) == pytest.approx(float(r)) and float(r2) == pytest.approx(float(p))


def test_knn_radii_and_nearest_distances_hand_cases():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert knn_radii(x, k=1).tolist() == [5.0, 5.0, 5.0]
    assert knn_radii(x, k=2).tolist() == [10.0, 5.0, 10.0]
    d = nearest_distances(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), x)
    assert d.tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize("call, match", [
    (lambda: kid(torch.randn(10, 3), torch.randn(10, 4), subsets=1, subset_size=5), "same width"),
    (lambda: kid(torch.randn(10, 3), torch.randn(8, 3), subsets=1, subset_size=9), "subset_size"),
    (lambda: kid(torch.randn(10, 3), torch.randn(10, 3), subsets=0, subset_size=5), "subsets"),
    (lambda: kid(torch.randn(10), torch.randn(10), subsets=1, subset_size=5), r"\(N, D\)"),
    (lambda: precision_recall(torch.randn(10, 3), torch.randn(10, 2)), "same width"),
    (lambda: precision_recall(torch.randn(10, 3), torch.randn(3, 3), k=3), "k must be smaller"),
    (lambda: precision_recall(torch.randn(10, 3), torch.full((5, 3), float("nan"))), "NaN"),
])
def test_bad_input_is_refused_with_a_clear_message(call, match):
    with pytest.raises(ValueError, match=match):
        call()
