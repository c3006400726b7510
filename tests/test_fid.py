"""FID and Inception Score from course_lib, compared with pytorch-fid, torchmetrics and torch-fidelity.

No test downloads anything: the InceptionV3 (course_lib.inception) is compared with pytorch-fid's on
random weights written under pytorch-fid's file name into a temporary torch hub cache that both
implementations read.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torch_fidelity.metric_isc import isc_features_to_metric
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.inception import InceptionScore

from course_lib import fid as fidlib
from course_lib import inception as inc
from course_lib.fid import fid, frechet_distance, gaussian_statistics, inception_score, probs_from_logits

# Small tensors: one thread is as fast, and much faster on a CPU shared with other jobs.
pytestmark = pytest.mark.usefixtures("one_thread")


def correlated_features(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing + shift


def np_stats(x):
    x = x.numpy()
    return x.mean(0), np.cov(x, rowvar=False)


# ------------------------------------------------------------------------------------------------ FID


@pytest.mark.parametrize("n, d, rel", [(2000, 64, 1e-6), (600, 128, 1e-6), (1200, 301, 1e-6), (40, 64, 1e-3),
                                       (100, 256, 1e-3)])
def test_frechet_distance_equals_pytorch_fid(n, d, rel):
    real, fake = correlated_features(n, d, 0), correlated_features(n, d, 1, shift=0.1)
    mu1, s1 = np_stats(real)
    mu2, s2 = np_stats(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    ours = float(frechet_distance(mu1, s1, mu2, s2))
    assert ours == pytest.approx(ref, rel=rel)
    if n < d:
        with pytest.warns(UserWarning, match="fewer samples|samples for"):
            assert float(fid(real, fake)) == pytest.approx(ref, rel=rel)
    else:
        assert float(fid(real, fake)) == pytest.approx(ref, rel=rel)


@pytest.mark.parametrize("n_real, n_fake, d", [(100, 100, 256), (30, 70, 64), (150, 90, 160)])
def test_sample_space_route_equals_the_covariance_route_and_the_references(n_real, n_fake, d, monkeypatch):
    """Fewer samples than dimensions: fid() works on the N x N product A B^T, never on F x F matrices."""
    real, fake = correlated_features(n_real, d, 12), correlated_features(n_fake, d, 13, shift=0.1)
    assert fidlib._sample_space_is_cheaper(n_real, n_fake, d)
    (mu1, s1), (mu2, s2) = gaussian_statistics(real), gaussian_statistics(fake)
    by_covariances = float(frechet_distance(mu1, s1, mu2, s2))
    ref_tm = float(_compute_fid(mu1, s1, mu2, s2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_pf = calculate_frechet_distance(*np_stats(real), *np_stats(fake))
    terms_by_covariances = (float((mu1 - mu2).pow(2).sum()), float(frechet_distance(mu1, s1, mu1, s2)))

    def no_covariances(*args, **kwargs):
        raise AssertionError("the F x F route was taken")

    monkeypatch.setattr(fidlib, "frechet_distance", no_covariances)
    monkeypatch.setattr(fidlib, "gaussian_statistics", no_covariances)
    with pytest.warns(UserWarning, match="samples for"):
        ours = float(fid(real, fake))
    # Two exact routes. The F x F one has a rounding floor: its F - N zero eigenvalues come out as ~1e-16,
    # whose square roots add ~1e-8 each (see test_closed_form_diagonal_gaussians); A B^T has no such floor.
    assert ours == pytest.approx(by_covariances, rel=1e-7)
    assert ours == pytest.approx(ref_tm, rel=1e-3) and ours == pytest.approx(ref_pf, rel=1e-3)
    with pytest.warns(UserWarning, match="samples for"):
        mean_term, cov_term = fidlib.fid_terms(real, fake)
    assert float(mean_term) == pytest.approx(terms_by_covariances[0], rel=1e-12)
    assert float(cov_term) == pytest.approx(terms_by_covariances[1], rel=1e-7)
    with pytest.warns(UserWarning, match="samples for"):
        assert float(fid(real, real)) == pytest.approx(0, abs=1e-9 * by_covariances)


def test_route_follows_the_shapes():
    assert fidlib._sample_space_is_cheaper(1024, 1024, 2048)  # Inception width, few samples
    assert not fidlib._sample_space_is_cheaper(4096, 4096, 2048)  # N = 2 F: the covariances
    assert not fidlib._sample_space_is_cheaper(2000, 2000, 64)


@pytest.mark.parametrize("n, d", [(1500, 64), (300, 32)])
def test_fid_equals_torchmetrics(n, d):
    real, fake = correlated_features(n, d, 2), correlated_features(n, d, 3, shift=0.2)
    mu1, s1 = gaussian_statistics(real)
    mu2, s2 = gaussian_statistics(fake)
    ref = float(_compute_fid(mu1, s1, mu2, s2))
    assert float(fid(real, fake)) == pytest.approx(ref, rel=1e-6)
    # and our statistics are numpy's (sample covariance, N - 1)
    np.testing.assert_allclose(s1.numpy(), np.cov(real.numpy(), rowvar=False), rtol=1e-12, atol=1e-14)


def test_torchmetrics_metric_class_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Identity(torch.nn.Module):
        num_features = 16

        def forward(self, x):
            return x

    real, fake = correlated_features(400, 16, 4), correlated_features(400, 16, 5, shift=0.3)
    metric = FrechetInceptionDistance(feature=Identity(), normalize=False).double()
    metric.update(real, real=True)
    metric.update(fake, real=False)
    assert float(fid(real, fake)) == pytest.approx(float(metric.compute()), rel=1e-6)


def test_closed_form_diagonal_gaussians():
    a = torch.tensor([1.0, 4.0, 0.25, 9.0, 0.0], dtype=torch.float64)
    b = torch.tensor([4.0, 1.0, 1.0, 9.0, 2.25], dtype=torch.float64)
    mu1, mu2 = torch.zeros(5), torch.tensor([1.0, -1.0, 0.0, 2.0, 0.5])
    expected = float((mu1.double() - mu2.double()).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum())
    assert float(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))) == pytest.approx(expected, rel=1e-12)
    # rotating both covariances by the same orthogonal matrix changes nothing
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    value = frechet_distance(q @ mu1.double(), q @ torch.diag(a) @ q.T, q @ mu2.double(), q @ torch.diag(b) @ q.T)
    # a zero eigenvalue rotated becomes ~1e-16, whose square root is ~1e-8: that is the rounding floor
    assert float(value) == pytest.approx(expected, rel=1e-7)


def test_closed_form_at_the_width_of_the_in_place_route():
    """F = SMALL_DIM: the blocked product in the factor's storage and the in-place eigenvalues (scipy)."""
    d = fidlib.SMALL_DIM
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    a, b = 0.5 + torch.rand(d, generator=g, dtype=torch.float64), 0.5 + torch.rand(d, generator=g, dtype=torch.float64)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T  # commuting: Tr sqrt(S1 S2) = sum sqrt(a b)
    mu2 = torch.full((d,), 0.1, dtype=torch.float64)
    expected = float(mu2.pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum())
    assert float(frechet_distance(torch.zeros(d), s1, mu2, s2)) == pytest.approx(expected, rel=1e-9)
    assert float(fidlib.trace_sqrt_product(s1, s2)) == pytest.approx(float((a * b).sqrt().sum()), rel=1e-12)


def test_non_commuting_closed_form():
    # 1-D rank-one covariances along different directions: Tr sqrt(S1 S2) = |u.v| sqrt(a b)
    u, v = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.6, 0.8], dtype=torch.float64)
    s1, s2 = 4 * torch.outer(u, u), 9 * torch.outer(v, v)
    expected = 4 + 9 - 2 * 0.6 * 6
    assert float(frechet_distance(torch.zeros(2), s1, torch.zeros(2), s2)) == pytest.approx(expected, rel=1e-9)


def test_rank_deficient_covariances_give_a_stable_trace():
    """Features in a 30-dimensional subspace of R^64 (as the classifier's, whose covariance has rank 70 of
    128) have singular covariances whose zero eigenvalues come out as +-1e-12; their square roots (1e-6
    each) must not enter the trace. Reference: the same trace in the subspace's own coordinates, where
    both covariances are full rank (scipy's sqrtm). Shifting the features by a constant leaves the
    covariances, so the covariance term, unchanged."""
    import scipy.linalg

    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(30, 64, generator=g, dtype=torch.float64)
    real, fake = (torch.relu(torch.randn(n, 30, generator=g, dtype=torch.float64)) @ mixing for n in (1000, 500))
    basis = torch.linalg.qr(mixing.T).Q  # (64, 30): orthonormal basis of the features' subspace
    sigma_r, sigma_g = gaussian_statistics(real)[1], gaussian_statistics(fake)[1]
    small_r, small_g = (basis.T @ s @ basis for s in (sigma_r, sigma_g))
    reference = np.trace(scipy.linalg.sqrtm(small_r.numpy() @ small_g.numpy())).real
    tr = float(fidlib.trace_sqrt_product(sigma_r, sigma_g))
    assert tr == pytest.approx(reference, rel=1e-12)
    shifted = float(fidlib.trace_sqrt_product(sigma_r, gaussian_statistics(fake + 0.5)[1]))
    assert shifted == pytest.approx(tr, rel=1e-12)
    mean_term, cov_term = fidlib.fid_terms(real, fake)
    shifted_mean, shifted_cov = fidlib.fid_terms(real, fake + 0.5)
    assert float(shifted_cov) == pytest.approx(float(cov_term), rel=1e-9)
    assert float(shifted_mean) > float(mean_term)


def test_identical_sets_give_zero_and_are_symmetric():
    x, y = correlated_features(300, 20, 6), correlated_features(300, 20, 7, shift=0.5)
    assert float(fid(x, x)) == pytest.approx(0, abs=1e-9)
    assert float(fid(x, y)) == pytest.approx(float(fid(y, x)), rel=1e-9)


def test_fid_errors_and_warning():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match="same width"):
        fid(x, torch.randn(10, 5))
    with pytest.raises(ValueError, match="NaN or inf"):
        fid(x, torch.full((10, 4), float("nan")))
    with pytest.raises(ValueError, match="fake_features must hold at least 2 samples"):
        fid(x, torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fid(x, torch.randn(10))
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]), torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match="negative eigenvalue"):
        frechet_distance(torch.zeros(2), -torch.eye(2), torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match="same width"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))
    with pytest.warns(UserWarning, match="singular"):
        fid(torch.randn(3, 8), torch.randn(20, 8))


def test_thread_count_is_restored_even_when_the_computation_raises(monkeypatch):
    def broken(sigma1, sigma2, **kwargs):
        assert torch.get_num_threads() == 1  # small matrices: one thread while it runs
        raise RuntimeError("simulated LAPACK failure")

    monkeypatch.setattr(fidlib, "trace_sqrt_product", broken)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            fid(torch.randn(20, 4), torch.randn(20, 4))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)


def test_results_are_float64_cpu_tensors_from_any_input():
    real, fake = correlated_features(50, 4, 8), correlated_features(50, 4, 9, shift=0.3)
    value = fid(real.float(), fake.numpy())  # float32 tensor and float64 numpy array mixed
    assert value.dtype == torch.float64 and value.device.type == "cpu"
    assert float(value) == pytest.approx(float(fid(real, fake)), rel=1e-5)
    mu, sigma = gaussian_statistics(real.float())
    assert mu.dtype == sigma.dtype == torch.float64 and mu.device.type == sigma.device.type == "cpu"
    assert probs_from_logits(torch.zeros(2, 3)).dtype == torch.float64
    assert fidlib.inception_score_splits(torch.full((4, 2), 0.5), splits=2).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_features_on_cuda_give_the_cpu_result():
    real, fake = correlated_features(200, 8, 10), correlated_features(200, 8, 11, shift=0.2)
    on_device = fid(real.float().cuda(), fake.float().cuda())
    assert on_device.device.type == "cpu"
    assert float(on_device) == pytest.approx(float(fid(real.float(), fake.float())), rel=1e-12)
    mu, sigma = gaussian_statistics(real.cuda())
    assert float(frechet_distance(mu.cuda(), sigma.cuda(), mu, sigma)) == pytest.approx(0, abs=1e-9)


# ------------------------------------------------------------------------------------------------- IS


def random_logits(n, k, seed, sharp=3.0):
    g = torch.Generator().manual_seed(seed)
    return sharp * torch.randn(n, k, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("n, k, splits", [(1000, 10, 10), (997, 20, 7), (50, 1008, 1)])
def test_inception_score_equals_torch_fidelity(n, k, splits):
    logits = random_logits(n, k, n)
    ref = isc_features_to_metric(logits, splits=splits, shuffle=False)
    mean, std = inception_score(probs_from_logits(logits), splits=splits)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-10)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-8, abs=1e-12)


def test_inception_score_equals_torchmetrics_with_its_shuffle_and_ddof():
    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    logits, splits = random_logits(1000, 10, 1), 10
    metric = InceptionScore(feature=Identity(), splits=splits, normalize=False).double()
    metric.update(logits)
    torch.manual_seed(123)
    order = torch.randperm(1000)  # the permutation torchmetrics draws in compute()
    torch.manual_seed(123)
    ref_mean, ref_std = metric.compute()
    mean, std = inception_score(probs_from_logits(logits[order]), splits=splits)
    assert mean == pytest.approx(float(ref_mean), rel=1e-6)
    # torchmetrics' std has ddof 1, ours (like the original code and torch-fidelity) ddof 0
    assert std * math.sqrt(splits / (splits - 1)) == pytest.approx(float(ref_std), rel=1e-5)


def test_inception_score_extremes():
    k = 5
    assert inception_score(torch.full((40, k), 1 / k), splits=4) == pytest.approx((1.0, 0.0))
    assert inception_score(torch.eye(k).repeat(8, 1), splits=4) == pytest.approx((k, 0.0))
    one_class = torch.zeros(40, k)
    one_class[:, 2] = 1
    assert inception_score(one_class, splits=4)[0] == pytest.approx(1.0)


def test_inception_score_errors():
    p = torch.full((10, 4), 0.25)
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(torch.rand(10, 4) + 0.5)
    with pytest.raises(ValueError, match="NaN"):
        inception_score(torch.full((10, 4), float("nan")))
    with pytest.raises(ValueError, match="probs must hold at least 2 samples"):
        inception_score(p[:1], splits=1)
    with pytest.raises(ValueError, match="splits"):
        inception_score(p, splits=11)
    with pytest.raises(ValueError, match="negative"):
        inception_score(torch.tensor([[1.5, -0.5], [0.5, 0.5]]), splits=1)


# ------------------------------------------------------------------------------------------ Inception


@pytest.fixture(scope="module")
def random_fid_weights(tmp_path_factory):
    from pytorch_fid import inception as pf

    home = tmp_path_factory.mktemp("torch_home")
    torch.manual_seed(0)
    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, cls, args in [("Mixed_5b", pf.FIDInceptionA, (192, 32)), ("Mixed_5c", pf.FIDInceptionA, (256, 64)),
                            ("Mixed_5d", pf.FIDInceptionA, (288, 64)), ("Mixed_6b", pf.FIDInceptionC, (768, 128)),
                            ("Mixed_6c", pf.FIDInceptionC, (768, 160)), ("Mixed_6d", pf.FIDInceptionC, (768, 160)),
                            ("Mixed_6e", pf.FIDInceptionC, (768, 192)), ("Mixed_7b", pf.FIDInceptionE_1, (1280,)),
                            ("Mixed_7c", pf.FIDInceptionE_2, (2048,))]:
        setattr(net, name, cls(*args))
    state = net.state_dict()
    # Non-trivial batch-norm statistics, so that a swapped layer cannot hide.
    g = torch.Generator().manual_seed(1)
    for key, value in state.items():
        if key.endswith("running_var"):
            value.copy_(0.5 + torch.rand(value.shape, generator=g))
        elif key.endswith("running_mean"):
            value.copy_(0.1 * torch.randn(value.shape, generator=g))
    (home / "hub" / "checkpoints").mkdir(parents=True)
    path = home / "hub" / "checkpoints" / inc.FID_WEIGHTS_FILE
    torch.save(state, path)
    return home, path, state


def test_inception_features_equal_pytorch_fid(random_fid_weights, monkeypatch):
    from pytorch_fid.inception import InceptionV3 as PFInception

    home, path, state = random_fid_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    assert inc.inception_weights_path() == path and inc.inception_available()
    ours = inc.InceptionV3(download=False)
    assert list(ours.state_dict()) == list(state)  # same layers, same keys, same order
    ref = PFInception([3]).eval()
    images = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = ref(images)[0].flatten(1).double()
    got = ours.features(images)
    assert got.shape == (2, 2048) and got.dtype == torch.float64 and got.device.type == "cpu"
    scale = expected.abs().max()
    assert (got - expected).abs().max() <= 1e-5 * scale
    # grayscale input is the same as its RGB repetition
    gray = images[:, :1]
    assert torch.allclose(ours.features(gray), ours.features(gray.expand(-1, 3, -1, -1)))
    probs = ours.probs(images)
    assert probs.shape == (2, 1008) and torch.allclose(probs.sum(1), torch.ones(2, dtype=torch.float64))
    # p(y|x) from the logits WITHOUT the final bias (original IS code, torch-fidelity's logits_unbiased,
    # torchmetrics), computed here from pytorch-fid's pool3 features and the file's fc weights
    w, b = state["fc.weight"].double(), state["fc.bias"].double()
    unbiased = torch.softmax(expected @ w.T, dim=1)
    biased = torch.softmax(expected @ w.T + b, dim=1)
    assert ((probs - unbiased).abs() / unbiased).max() <= 1e-4  # random weights: p(y|x) near 1/1008
    assert ((ours.probs(images, bias=True) - biased).abs() / biased).max() <= 1e-4
    assert ((unbiased - biased).abs() / biased).max() > 1e-2  # the bias does change p(y|x): told apart


def test_inception_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert not inc.inception_available()
    with pytest.raises(inc.InceptionWeightsNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
        inc.InceptionV3(download=False)
    with pytest.raises(inc.InceptionWeightsNotFoundError, match="does not exist"):
        inc.InceptionV3(weights=tmp_path / "nope.pth")
    # random weights only when asked, without reading any file (tests and timing)
    random_net = inc.InceptionV3(pretrained=False)
    assert not random_net.training and random_net.features(torch.rand(1, 1, 8, 8)).shape == (1, 2048)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="pretrained"):
        inc.InceptionV3(weights=tmp_path / "nope.pth", pretrained=False)


def test_inception_style_changes_only_the_input(random_fid_weights, monkeypatch):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from tests.test_resizing import clean_fid_reference

    home, _, _ = random_fid_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    uint8 = torch.round(images * 255).expand(-1, 3, -1, -1)
    # What torch-fidelity's and clean-fid's extractors feed their networks, from their own resize code.
    tf = (interpolate_bilinear_2d_like_tensorflow1x(uint8, size=(299, 299), align_corners=False) - 128) / 128
    pil = clean_fid_reference(images.expand(-1, 3, -1, -1), 299)
    expected_inputs = {"torch-fidelity": tf, "clean-fid": (pil - 128) / 128}
    for style, x in expected_inputs.items():
        net = inc.InceptionV3(download=False, style=style)
        with torch.no_grad():
            expected = net.pool3(x).double()
        got = net.features(images)
        assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    default = inc.InceptionV3(download=False)
    assert (default.preprocess(images) - net.preprocess(images)).abs().max() > 0.01  # the styles do differ
    with pytest.raises(ValueError, match="style"):
        inc.InceptionV3(download=False, style="tensorflow2")
