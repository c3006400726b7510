"""SSIM and LPIPS from course_lib, compared with scikit-image, torchmetrics and the lpips package.

No test downloads anything: LPIPS is compared with random backbone weights, written under
torchvision's file names into a temporary torch hub cache that both implementations read.
"""

import warnings

import lpips as lpips_pkg
import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import structural_similarity
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from course_lib import metrics
from course_lib.exercises.metrics import check_psnr, check_ssim_window
from course_lib.lpips import (
    BACKBONES,
    LPIPS,
    BackboneWeightsNotFoundError,
    backbone_available,
    backbone_path,
    feature_distance,
)
from course_lib.metrics import gaussian_window, ssim, ssim_components, ssim_terms

# Small tensors: one thread is as fast, and much faster on a CPU shared with other jobs.
pytestmark = pytest.mark.usefixtures("one_thread")


def noisy_pair(shape, seed=0, noise=0.15, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64)
    # Smooth the target a little so that the windows hold structure, not only noise.
    target = torch.nn.functional.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)
    preds = (target + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return preds * scale, target * scale


def skimage_ssim(preds, target, data_range):
    out = []
    for p, t in zip(preds.numpy(), target.numpy(), strict=True):
        kwargs = {"channel_axis": 0} if p.shape[0] > 1 else {}
        p, t = (p, t) if p.shape[0] > 1 else (p[0], t[0])
        out.append(structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=data_range, **kwargs))
    return np.array(out)


# ---------------------------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("shape, scale", [((3, 3, 40, 57), 1.0), ((2, 1, 33, 50), 1.0), ((2, 3, 64, 31), 255.0),
                                          ((1, 1, 11, 11), 1.0)])
def test_ssim_equals_scikit_image(shape, scale):
    preds, target = noisy_pair(shape, scale=scale)
    ours = ssim(preds, target, data_range=scale, reduction="none")
    ref = skimage_ssim(preds, target, scale)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-6)
    assert np.abs(ours.numpy() - ref).max() < 1e-12  # in fact equal to rounding
    assert float(ssim(preds, target, data_range=scale)) == pytest.approx(ref.mean(), abs=1e-12)


def test_ssim_of_many_small_images_filtered_in_groups_equals_scikit_image():
    """210 planes of 28x28: several groups of planes per filtering step, the last one partial."""
    preds, target = noisy_pair((70, 3, 28, 28), seed=5)
    ours = ssim(preds, target, reduction="none")
    np.testing.assert_allclose(ours.numpy(), skimage_ssim(preds, target, 1.0), rtol=0, atol=1e-12)
    maps = ssim_components(preds, target)
    torch.testing.assert_close(maps["ssim"].mean(dim=(1, 2, 3)), ours, rtol=0, atol=1e-12)
    # each image alone gives the same value: no group mixes planes up
    torch.testing.assert_close(torch.cat([ssim(preds[i:i + 1], target[i:i + 1], reduction="none")
                                          for i in (0, 33, 69)]), ours[[0, 33, 69]], rtol=0, atol=1e-14)


def test_ssim_float32_input_is_computed_in_float64():
    preds, target = noisy_pair((2, 3, 48, 48))
    ours32 = ssim(preds.float(), target.float(), reduction="none")
    assert ours32.dtype == torch.float64
    ref = skimage_ssim(preds.float().double(), target.float().double(), 1.0)
    np.testing.assert_allclose(ours32.numpy(), ref, atol=1e-12)


def test_torchmetrics_matches_on_the_valid_region_and_differs_by_its_border():
    preds, target = noisy_pair((4, 3, 48, 40))
    ours = ssim(preds, target, reduction="none")
    tm_mean, tm_map = tm_ssim(preds, target, data_range=1.0, reduction="none", return_full_image=True)
    # torchmetrics reflect-pads by 5 and keeps a full H x W map: its interior is our valid map ...
    assert tm_map.shape == preds.shape
    interior = tm_map[..., 5:-5, 5:-5]
    torch.testing.assert_close(interior, ssim_components(preds, target)["ssim"], rtol=0, atol=1e-10)
    torch.testing.assert_close(interior.mean(dim=(1, 2, 3)), ours, rtol=0, atol=1e-10)
    # ... and its mean also counts the border windows, which see mirrored pixels: a different number.
    h, w = preds.shape[-2:]
    border = (tm_map.sum(dim=(1, 2, 3)) - interior.sum(dim=(1, 2, 3))) / (3 * (h * w - (h - 10) * (w - 10)))
    valid_share = (h - 10) * (w - 10) / (h * w)
    torch.testing.assert_close(tm_mean, valid_share * ours + (1 - valid_share) * border, rtol=0, atol=1e-10)
    assert (tm_mean - ours).abs().max() > 1e-3
    # Reductions: torchmetrics' "none" is our "none", its "elementwise_mean" the mean of those.
    tm_default = tm_ssim(preds, target, data_range=1.0)
    assert float(tm_default) == pytest.approx(float(tm_mean.mean()), abs=1e-12)


def test_components_multiply_to_ssim_and_match_one_window():
    preds, target = noisy_pair((2, 3, 20, 24), noise=0.3)
    maps = ssim_components(preds, target)
    assert all(m.shape == (2, 3, 10, 14) and m.dtype == torch.float64 for m in maps.values())
    torch.testing.assert_close(maps["luminance"] * maps["contrast"] * maps["structure"], maps["ssim"],
                               rtol=1e-10, atol=1e-12)
    w = gaussian_window(11, 1.5)
    weights = w[:, None] * w[None, :]
    for n, c, i, j in [(0, 0, 0, 0), (1, 2, 7, 3), (0, 1, 9, 13)]:
        terms = ssim_terms(preds[n, c, i:i + 11, j:j + 11], target[n, c, i:i + 11, j:j + 11], 1.0, weights)
        for name, value in zip(("luminance", "contrast", "structure"), terms, strict=True):
            assert float(maps[name][n, c, i, j]) == pytest.approx(float(value), abs=1e-10)
    assert float(maps["luminance"].max()) <= 1 + 1e-12 and float(maps["contrast"].max()) <= 1 + 1e-12


def test_ssim_terms_population_statistics_hand_computed():
    x = torch.tensor([0.0, 1.0, 0.0, 1.0])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    lum, con, struct = ssim_terms(x, y, data_range=1.0)
    c2 = 0.03**2
    assert float(lum) == pytest.approx(1.0)  # same means
    assert float(con) == pytest.approx(1.0)  # same (population) variance 0.25
    assert float(struct) == pytest.approx((-0.25 + c2 / 2) / (0.25 + c2 / 2))


def test_ssim_properties():
    preds, target = noisy_pair((3, 3, 32, 32))
    assert torch.allclose(ssim(target, target, reduction="none"), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ssim(preds, target), ssim(target, preds))
    torch.testing.assert_close(ssim(preds * 255, target * 255, data_range=255.0), ssim(preds, target))
    noisier, _ = noisy_pair((3, 3, 32, 32), noise=0.4)
    assert ssim(noisier, target) < ssim(preds, target)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_ssim_on_cuda_equals_cpu():
    preds, target = noisy_pair((2, 3, 40, 40))
    torch.testing.assert_close(ssim(preds.cuda(), target.cuda()).cpu(), ssim(preds, target))


@pytest.mark.parametrize("preds, target, kwargs, match", [
    (torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 17), {}, "same shape"),
    (torch.rand(1, 16, 16), torch.rand(1, 16, 16), {}, r"preds must have shape \(N, C, H, W\)"),
    (torch.rand(1, 1, 10, 40), torch.rand(1, 1, 10, 40), {}, "at least 11x11"),
    (torch.rand(1, 1, 16, 16) * 2, torch.rand(1, 1, 16, 16), {}, r"preds has values .* outside \[0, 1\]; rescale"),
    (torch.rand(0, 1, 16, 16), torch.rand(0, 1, 16, 16), {}, "preds and target are empty"),
    (torch.rand(1, 1, 16, 16), torch.full((1, 1, 16, 16), float("inf")), {}, "target contains NaN or inf"),
    (torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), {"data_range": -1}, "data_range must be a positive"),
    (torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), {"reduction": "sum"}, "reduction must be one of"),
    (torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), {"kernel_size": 4}, "kernel_size must be"),
])
def test_ssim_bad_input(preds, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ssim(preds, target, **kwargs)


def test_ssim_terms_bad_input():
    with pytest.raises(ValueError, match="x and y must have the same shape"):
        ssim_terms(torch.rand(3, 3), torch.rand(3, 4))
    with pytest.raises(ValueError, match="y contains NaN"):
        ssim_terms(torch.rand(3), torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="data_range must be a positive"):
        ssim_terms(torch.rand(3), torch.rand(3), data_range=0)


def test_ssim_unit_images_with_data_range_255_warn_and_round_off_is_accepted():
    preds, target = noisy_pair((1, 1, 16, 16))
    with pytest.warns(UserWarning, match="data_range=1.0"):
        ssim(preds, target, data_range=255.0)
    # values a round-off outside [0, 1] (a blur's 1 + 2e-16, a difference's -3e-17) are used as they are
    nudged, clean = target.clone(), target.clone()
    nudged[0, 0, 0, 0], nudged[0, 0, 1, 1] = 1 + 2.2e-16, -2.8e-17
    clean[0, 0, 0, 0], clean[0, 0, 1, 1] = 1.0, 0.0
    assert float(ssim(preds, nudged)) == pytest.approx(float(ssim(preds, clean)), abs=1e-12)
    with pytest.raises(ValueError, match="target has values"):  # beyond round-off: an error
        clean[0, 0, 1, 1] = -1e-3
        ssim(preds, clean)


def test_float64_results_are_cpu_tensors():
    preds, target = noisy_pair((1, 3, 16, 16))
    for value in (ssim(preds.float(), target.float()), *ssim_terms(preds[0, 0].float(), target[0, 0].float()),
                  *ssim_components(preds, target).values()):
        assert value.dtype == torch.float64 and value.device.type == "cpu"


# ------------------------------------------------------------------------------------------- LPIPS


def _random_backbone_file(net: str) -> None:
    """Random torchvision weights under torchvision's file name in the (temporary) hub cache.

    The convolutions get PyTorch's default random initialisation. The classifier, which LPIPS never
    uses, is stored as a broadcast zero (stride 0), so that the VGG file holds 59 MB of convolutions
    instead of 528 MB and no time goes into initialising it; torchvision loads it all the same.
    """
    spec = BACKBONES[net]
    with torch.device("meta"):
        model = getattr(torchvision.models, spec.builder)(weights=None)
    features = model.features.to_empty(device="cpu")
    for module in features.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    for k, v in model.state_dict().items():
        if not k.startswith("features."):
            state[k] = torch.zeros((), dtype=v.dtype).expand(v.shape)
    torch.save(state, backbone_path(net))


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    hub = tmp_path_factory.mktemp("torch_home") / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(hub.parent))
        # torch.hub.set_dir's global, restored to its unset state afterwards (restoring the old *path*
        # would pin it and make later tests ignore their TORCH_HOME)
        mp.setattr(torch.hub, "_hub_dir", str(hub))
        torch.manual_seed(0)
        for net in BACKBONES:
            _random_backbone_file(net)
        yield hub


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    y = (x + torch.tensor([0.05, 0.2, 0.6]).view(3, 1, 1, 1) * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return x, y


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_lpips_equals_the_lpips_package(net, hub_cache, inputs):
    x, y = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lpips calls torchvision's deprecated pretrained=True
        ref_model = lpips_pkg.LPIPS(net=net, verbose=False)
    ours_model = LPIPS(net, download=False)
    # Both read the same file: the reference's first convolution is our random one, although its
    # hash differs from the one in torchvision's file name (a cached file is not re-hashed).
    saved = torch.load(backbone_path(net), weights_only=True)["features.0.weight"]
    assert torch.equal(ref_model.net.slice1[0].weight, saved) and torch.equal(ours_model.slices[0][0].weight, saved)
    with torch.no_grad():
        ref_total, ref_layers = ref_model(x, y, retPerLayer=True)
        ours = ours_model(x, y)
        ours_layers = ours_model.layer_distances(x, y)
    torch.testing.assert_close(ours, ref_total.flatten(), rtol=1e-5, atol=1e-8)
    for a, b in zip(ours_layers, ref_layers, strict=True):
        torch.testing.assert_close(a, b.flatten(), rtol=1e-5, atol=1e-8)
    assert ours[0] < ours[1] < ours[2]  # more noise, larger distance
    # normalize=True: [0, 1] images, as the lpips package's forward(..., normalize=True)
    with torch.no_grad():
        ref_unit = ref_model((x + 1) / 2, (y + 1) / 2, normalize=True).flatten()
        torch.testing.assert_close(ours_model((x + 1) / 2, (y + 1) / 2, normalize=True), ref_unit,
                                   rtol=1e-5, atol=1e-8)
    # The comparison can fail: forgetting the input shift moves the result by far more than 1e-5.
    ours_model.shift.zero_()
    with torch.no_grad():
        assert ((ours_model(x, y) - ours) / ours).abs().max() > 1e-3


def test_feature_distance_is_the_lpips_packages_unweighted_baseline(hub_cache, inputs):
    x, y = inputs
    ref = lpips_pkg.LPIPS(net="squeeze", lpips=False, verbose=False)  # uniform weights, same backbone file
    ours = LPIPS("squeeze", download=False)
    with torch.no_grad():
        scaled = [(t - ours.shift) / ours.scale for t in (x, y)]
        torch.testing.assert_close(feature_distance(ours.slices, *scaled), ref(x, y).flatten(), rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="blocks must hold"):
        feature_distance([], x, y)


def test_lpips_accepts_float64_inputs_and_runs_in_the_module_dtype(random_squeeze):
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(2, 3, 40, 40, generator=g) * 2 - 1, torch.rand(2, 3, 40, 40, generator=g) * 2 - 1
    with torch.no_grad():
        d32, d64 = random_squeeze(x, y), random_squeeze(x.double(), y.double())
    assert d64.dtype == torch.float32
    torch.testing.assert_close(d64, d32, rtol=1e-6, atol=0)


def test_lpips_backbone_file_argument_and_identity(hub_cache, inputs):
    x, y = inputs
    a = LPIPS("squeeze", download=False)
    b = LPIPS("squeeze", backbone_weights=backbone_path("squeeze"), download=False)
    with torch.no_grad():
        torch.testing.assert_close(a(x, y), b(x, y))
        assert float(a(x, x).abs().max()) == 0.0
    xg = x[:1].clone().requires_grad_(True)
    a(xg, y[:1]).sum().backward()  # usable as a loss: gradients reach the input
    assert xg.grad is not None and torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_lpips_missing_backbone_says_where_and_never_goes_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    assert not backbone_available("alex")
    expected = str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    with pytest.raises(BackboneWeightsNotFoundError, match="alexnet-owt-7be5be79.pth") as info:
        LPIPS("alex", download=False)
    assert expected in str(info.value) and "backbone_weights=" in str(info.value)

    # Offline, as far as the download is concerned: a mirror (course_lib.downloads) that does not hold the file.
    monkeypatch.setenv("COURSE_WEIGHTS_MIRROR", (tmp_path / "empty mirror").as_uri())
    with pytest.raises(BackboneWeightsNotFoundError, match="download failed") as info:
        LPIPS("alex", download=True)
    assert "alexnet-owt-7be5be79.pth" in str(info.value) and "sha256 7be5be79" in str(info.value)
    with pytest.raises(BackboneWeightsNotFoundError, match="does not exist"):
        LPIPS("alex", backbone_weights=tmp_path / "nope.pth")
    assert not backbone_path("alex").exists()


@pytest.fixture(scope="module")
def random_squeeze():
    return LPIPS("squeeze", pretrained=False)


@pytest.mark.parametrize("x, y, match", [
    (torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32), r"x must have shape \(N, 3, H, W\)"),
    (torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 33), "same shape"),
    (torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), "at least 17x17"),
    (torch.zeros(1, 3, 32, 32), torch.full((1, 3, 32, 32), 1.5), r"y has values .* outside \[-1, 1\]"),
    (torch.full((1, 3, 32, 32), float("nan")), torch.zeros(1, 3, 32, 32), "x contains NaN or inf"),
])
def test_lpips_bad_input(random_squeeze, x, y, match):
    with pytest.raises(ValueError, match=match):
        random_squeeze(x, y)


@pytest.mark.parametrize("x, y, match", [
    (torch.zeros(1, 3, 32, 32), torch.full((1, 3, 32, 32), 1.01), r"y has values .* outside \[0, 1\]"),
    (torch.full((1, 3, 32, 32), -0.5), torch.zeros(1, 3, 32, 32), r"x has values .* outside \[0, 1\]"),
])
def test_lpips_bad_input_with_normalize(random_squeeze, x, y, match):
    with pytest.raises(ValueError, match=match):
        random_squeeze(x, y, normalize=True)


def test_lpips_normalize_maps_unit_images_to_the_lpips_range(random_squeeze):
    g = torch.Generator().manual_seed(3)
    images, others = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        expected = random_squeeze(2 * images - 1, 2 * others - 1)
        torch.testing.assert_close(random_squeeze(images, others, normalize=True), expected, rtol=0, atol=0)
        as_default = LPIPS("squeeze", pretrained=False, normalize=True)
        as_default.load_state_dict(random_squeeze.state_dict())
        torch.testing.assert_close(as_default(images, others), expected, rtol=0, atol=0)


def test_lpips_warns_when_unit_images_are_not_normalized(random_squeeze):
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with pytest.warns(UserWarning, match="normalize=True"):
        random_squeeze(images, images.flip(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where the convention is clear
        random_squeeze(images, images.flip(-1), normalize=True)
        random_squeeze(2 * images - 1, 2 * images.flip(-1) - 1)
    # round-off outside [-1, 1] is accepted as is; more is an error
    edge = (2 * images - 1).clone()
    edge[0, 0, 0, 0] = -1 - 1e-7
    random_squeeze(edge, 2 * images - 1)
    with pytest.raises(ValueError, match="normalize"):
        random_squeeze(images, images, normalize=1)


def test_lpips_unknown_net():
    with pytest.raises(ValueError, match="net must be one of"):
        LPIPS("resnet", pretrained=False)


# --------------------------------------------------------------------------------------- exercises


@pytest.mark.parametrize("exercise", [check_psnr, check_ssim_window], ids=["psnr", "ssim_window"])
def test_checkers_pass_the_reference_and_fail_each_mistake(exercise):
    assert exercise.grade(exercise.reference).passed
    for mistake in exercise.mistakes:
        verdict = exercise.grade(mistake.wrong)
        assert verdict.status == "wrong" and mistake.hint in verdict.message


def test_psnr_checker_accepts_a_float32_solution():
    def mine(preds, target):
        return (10 * torch.log10(1.0 / ((preds - target) ** 2).flatten(1).mean(dim=1))).mean()

    assert check_psnr.grade(mine).passed
    with pytest.warns(UserWarning, match="data_range=1.0"):  # the library says why, too
        assert check_psnr.grade(lambda p, t: metrics.psnr(p, t, data_range=255.0)).status == "wrong"
