"""course_lib.evaluation: moment matching and class-histogram matching, against hand cases and closed forms."""

import numpy as np
import pytest
import scipy.stats
import torch

from course_lib import fid
from course_lib.evaluation import apportion, match_class_histogram, match_moments
from tests import device_double
from tests.device_double import on_device


def _skewed(n, d, seed):
    """Exponential (skewed, non-negative) samples mixed by a random matrix: far from a Gaussian."""
    g = torch.Generator().manual_seed(seed)
    e = -torch.log(torch.rand(n, d, generator=g, dtype=torch.float64))
    return e @ torch.randn(d, d, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------------------------- match_moments


def test_match_moments_one_dimension_by_hand():
    # x = 0, 1, 5: mean 2, sample variance (4 + 1 + 9) / 2 = 7; target 10, 12: mean 11, variance 2
    y = match_moments(torch.tensor([[0.0], [1.0], [5.0]]), torch.tensor([[10.0], [12.0]]))
    expected = 11 + (torch.tensor([0.0, 1.0, 5.0], dtype=torch.float64) - 2) * (2 / 7) ** 0.5
    torch.testing.assert_close(y[:, 0], expected, rtol=1e-12, atol=1e-12)
    assert y.dtype == torch.float64 and y.device.type == "cpu"


def test_match_moments_gives_the_target_mean_and_sample_covariance():
    x, target = _skewed(400, 5, 0), torch.randn(300, 5, generator=torch.Generator().manual_seed(1)) * 3 + 2
    y = match_moments(x, target)
    torch.testing.assert_close(y.mean(0), target.double().mean(0), rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.cov(y.T), torch.cov(target.double().T), rtol=1e-10, atol=1e-10)
    scale = float(torch.cov(target.double().T).trace())
    assert float(fid.fid(target, y)) < 1e-10 * scale  # FID sees nothing left to tell


def test_match_moments_keeps_the_shape_of_the_cloud():
    """An affine map with a positive scale keeps a 1-D sample's skewness and kurtosis (scipy computes them)."""
    x = _skewed(500, 1, 2)
    y = match_moments(x, torch.randn(200, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    assert scipy.stats.skew(y[:, 0].numpy()) == pytest.approx(scipy.stats.skew(x[:, 0].numpy()), rel=1e-9)
    assert scipy.stats.kurtosis(y[:, 0].numpy()) == pytest.approx(scipy.stats.kurtosis(x[:, 0].numpy()), rel=1e-9)
    assert float(scipy.stats.skew(y[:, 0].numpy())) > 1  # still far from a Gaussian's 0


def test_match_moments_onto_a_singular_target():
    g = torch.Generator().manual_seed(4)
    target = torch.randn(50, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 4, generator=g, dtype=torch.float64)
    y = match_moments(torch.randn(100, 4, generator=g, dtype=torch.float64), target)  # rank 2 of 4
    torch.testing.assert_close(torch.cov(y.T), torch.cov(target.T), rtol=1e-9, atol=1e-9)


def test_match_moments_accepts_numpy_float32_and_device_tensors():
    x, target = _skewed(60, 3, 5), _skewed(40, 3, 6)
    expected = match_moments(x, target)
    torch.testing.assert_close(match_moments(x.numpy(), target.numpy()), expected)
    torch.testing.assert_close(match_moments(x.float(), target.float()), expected, rtol=1e-5, atol=1e-5)
    device_double.VIOLATIONS.clear()
    match_moments(on_device(x.float()), on_device(target.float()))
    assert device_double.VIOLATIONS == []


@pytest.mark.parametrize("samples, target, match", [
    (torch.randn(3, 5), torch.randn(10, 5), "singular"),  # fewer samples than dimensions
    (torch.cat([torch.randn(20, 2), torch.ones(20, 1)], 1), torch.randn(10, 3), "singular"),  # a constant column
    (torch.randn(20, 3), torch.randn(10, 4), "same width"),
    (torch.randn(20), torch.randn(10, 1), "shape"),
    (torch.full((20, 2), float("nan")), torch.randn(10, 2), "NaN"),
    (torch.randn(1, 2), torch.randn(10, 2), "at least 2"),
])
def test_match_moments_refuses_bad_input(samples, target, match):
    with pytest.raises(ValueError, match=match):
        match_moments(samples, target)


# ------------------------------------------------------------------------------------- apportion


@pytest.mark.parametrize("weights, n, expected", [
    ([1, 1, 1], 10, [4, 3, 3]),  # 3.33 each: the extra one to the first (ties to the lower index)
    ([5, 3, 0, 2], 7, [4, 2, 0, 1]),  # quotas 3.5, 2.1, 0, 1.4
    ([0.5, 0.5], 3, [2, 1]),
    ([1, 2, 3, 4], 10, [1, 2, 3, 4]),  # exact
    ([1, 0, 0], 5, [5, 0, 0]),
    ([1, 99], 1, [0, 1]),
])
def test_apportion_by_hand(weights, n, expected):
    counts = apportion(torch.tensor(weights), n)
    assert counts.tolist() == expected and counts.dtype == torch.int64


def test_apportion_stays_within_one_of_the_quota():
    g = torch.Generator().manual_seed(7)
    for n in (1, 17, 1000):
        w = torch.rand(10, generator=g)
        counts = apportion(w, n)
        quota = n * w.double() / w.double().sum()
        assert int(counts.sum()) == n and bool(((counts - quota).abs() < 1).all())


@pytest.mark.parametrize("weights, n", [([1.0, -1.0], 3), ([0.0, 0.0], 3), ([[1.0]], 3), ([1.0], 0),
                                        ([float("nan"), 1.0], 2)])
def test_apportion_refuses_bad_input(weights, n):
    with pytest.raises(ValueError):
        apportion(torch.tensor(weights), n)


# ------------------------------------------------------------------------------------- match_class_histogram


def test_match_class_histogram_by_hand():
    fake = torch.tensor([0] * 6 + [1] * 2 + [2] * 2)  # 60% class 0
    real = torch.tensor([0, 1, 2])  # a third each
    picked = match_class_histogram(fake, real, 6, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(fake[picked]).tolist() == [2, 2, 2]
    assert len(set(picked.tolist())) == 6  # without replacement: each sample at most once
    assert picked.dtype == torch.int64


def test_match_class_histogram_counts_follow_the_real_histogram():
    g = torch.Generator().manual_seed(1)
    fake = torch.randint(0, 10, (5000,), generator=g)
    real = torch.multinomial(torch.arange(1.0, 11.0), 3000, replacement=True, generator=g)
    picked = match_class_histogram(fake, real, 1000, generator=g)
    expected = apportion(torch.bincount(real, minlength=10), 1000)
    assert torch.bincount(fake[picked], minlength=10).tolist() == expected.tolist()
    assert len(set(picked.tolist())) == 1000
    assert not bool((fake[picked].diff() >= 0).all())  # returned in random order, not class by class


def test_match_class_histogram_with_replacement_repeats_rare_classes():
    fake = torch.tensor([0] * 9 + [1])  # one sample of class 1
    real = torch.tensor([0, 1])
    picked = match_class_histogram(fake, real, 6, replacement=True, generator=torch.Generator().manual_seed(2))
    assert torch.bincount(fake[picked]).tolist() == [3, 3]
    assert (picked == 9).sum() == 3  # the one class-1 sample, three times
    with pytest.raises(ValueError, match="class 1 needs 3 samples but labels_fake holds 1"):
        match_class_histogram(fake, real, 6)


def test_match_class_histogram_is_reproducible_and_leaves_the_global_rng_alone():
    fake, real = torch.randint(0, 3, (100,)), torch.tensor([0, 1, 2, 2])
    state = torch.get_rng_state()
    a = match_class_histogram(fake, real, 20, generator=torch.Generator().manual_seed(3))
    b = match_class_histogram(fake, real, 20, generator=torch.Generator().manual_seed(3))
    c = match_class_histogram(fake, real, 20, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.get_rng_state())


def test_match_class_histogram_accepts_numpy_labels():
    picked = match_class_histogram(np.array([0, 0, 1, 1]), np.array([0, 1]), 2,
                                   generator=torch.Generator().manual_seed(0))
    assert sorted(np.array([0, 0, 1, 1])[picked.numpy()].tolist()) == [0, 1]


def test_matching_the_classes_removes_the_mean_term_they_cause():
    """Two classes with the same distribution inside each: a 90/10 generator against a 50/50 real set has a
    mean term of (0.4 * distance of the class means)^2; after matching, only sampling noise is left."""
    g = torch.Generator().manual_seed(5)
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]], dtype=torch.float64)
    real_labels = torch.arange(4000) % 2
    fake_labels = (torch.rand(8000, generator=g) < 0.1).long()
    real = centres[real_labels] + torch.randn(4000, 2, generator=g, dtype=torch.float64)
    fake = centres[fake_labels] + torch.randn(8000, 2, generator=g, dtype=torch.float64)
    before = float((real.mean(0) - fake.mean(0)).pow(2).sum())
    assert before == pytest.approx((0.4 * 4) ** 2, rel=0.05)
    picked = match_class_histogram(fake_labels, real_labels, 1500, generator=g)
    after = float((real.mean(0) - fake[picked].mean(0)).pow(2).sum())
    assert after < 0.02 * before
    assert float(fid.fid(real, fake[picked])) < 0.1 * float(fid.fid(real, fake))


@pytest.mark.parametrize("fake, real, n, kwargs, match", [
    (torch.tensor([0, 0, 1]), torch.tensor([0, 2]), 2, {}, "no sample of class 2"),
    (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), 2, {}, "integer"),
    (torch.tensor([[0, 1]]), torch.tensor([0, 1]), 2, {}, "1-D"),
    (torch.tensor([0, -1]), torch.tensor([0, 1]), 2, {}, ">= 0"),
    (torch.tensor([0, 1]), torch.tensor([], dtype=torch.int64), 2, {}, "at least one"),
    (torch.tensor([0, 1]), torch.tensor([0, 1]), 0, {}, "positive int"),
    (torch.tensor([0, 3]), torch.tensor([0, 1]), 2, {"num_classes": 3}, "smaller than num_classes"),
    (torch.tensor([0, 1]), torch.tensor([0, 1]), 2, {"replacement": "yes"}, "True or False"),
    ([0, 1], torch.tensor([0, 1]), 2, {}, "tensor"),
])
def test_match_class_histogram_refuses_bad_input(fake, real, n, kwargs, match):
    with pytest.raises(ValueError, match=match):
        match_class_histogram(fake, real, n, **kwargs)
