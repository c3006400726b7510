import warnings

import numpy as np
import pytest
import scipy.ndimage
import torch
from skimage.metrics import peak_signal_noise_ratio
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

from course_lib.metrics import psnr, ssim


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(5, 3, 17, 23, generator=g, dtype=torch.float64)
    preds = (target + 0.1 * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return preds, target


def test_per_image_equals_scikit_image(pair):
    preds, target = pair
    ours = psnr(preds, target, data_range=1.0, reduction="none")
    ref = [peak_signal_noise_ratio(t.numpy(), p.numpy(), data_range=1.0) for p, t in zip(preds, target, strict=True)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12)


def test_mean_equals_torchmetrics_per_image_then_mean(pair):
    # torchmetrics' `reduction="elementwise_mean"` with `dim=(1, 2, 3)` averages per-image PSNRs, as we do;
    # its default (dim=None) pools the MSE over the whole batch first, which is a different number.
    preds, target = pair
    ref = tm_psnr(preds, target, data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean")
    # rel 1e-6, not 1e-12: torchmetrics computes its factor 10 / ln(10) as a float32 tensor.
    assert float(psnr(preds, target)) == pytest.approx(float(ref), rel=1e-6)
    pooled = tm_psnr(preds, target, data_range=1.0)
    assert abs(float(psnr(preds, target)) - float(pooled)) > 1e-6


def test_data_range_255(pair):
    preds, target = pair
    assert torch.allclose(psnr(preds * 255, target * 255, data_range=255.0), psnr(preds, target))


def test_hand_computed_and_identical_images():
    target = torch.zeros(2, 1, 4, 4)
    preds = torch.zeros(2, 1, 4, 4)
    preds[0] += 0.1  # MSE 0.01 -> 20 dB
    values = psnr(preds, target, reduction="none")
    assert values[0].item() == pytest.approx(20.0)
    assert values[1].item() == float("inf")


@pytest.mark.parametrize("preds, target, kwargs, match", [
    (torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 5), {}, "same shape"),
    (torch.rand(1, 4, 4), torch.rand(1, 4, 4), {}, r"preds must have shape \(N, C, H, W\)"),
    (torch.rand(2, 1, 4, 4) * 2, torch.rand(2, 1, 4, 4), {}, r"preds has values .* outside \[0, 1\]; rescale"),
    (torch.rand(0, 1, 4, 4), torch.rand(0, 1, 4, 4), {}, "preds and target are empty"),
    (torch.rand(1, 1, 4, 4), torch.full((1, 1, 4, 4), -0.01), {}, r"target has values .* outside \[0, 1\]"),
    (torch.full((1, 1, 2, 2), float("nan")), torch.rand(1, 1, 2, 2), {}, "preds contains NaN or inf"),
    (torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), {"data_range": 0}, "data_range must be a positive"),
    (torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), {"reduction": "sum"}, "reduction must be one of"),
])
def test_bad_input(preds, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        psnr(preds, target, **kwargs)


def test_round_off_outside_the_range_is_accepted_as_is():
    # scipy's Gaussian filter of a black-and-white image overshoots 1 by round-off (1 + 2.2e-16),
    # and arithmetic on images undershoots 0 (0.3 - 0.1 - 0.2 = -2.8e-17): neither is an error.
    from skimage.data import checkerboard

    image = checkerboard().astype(np.float64) / 255
    blurred = scipy.ndimage.gaussian_filter(image, sigma=2.0)
    assert blurred.max() > 1  # the premise: round-off above one
    undershoot = np.full_like(image, 0.3) - 0.1 - 0.2
    assert undershoot.min() < 0  # and below zero
    preds = torch.from_numpy(np.stack([blurred, undershoot]))[:, None]
    target = torch.from_numpy(np.stack([image, np.zeros_like(image)]))[:, None]
    values = psnr(preds, target, reduction="none")
    # nothing is clipped: the PSNR of the values as given
    ref = [peak_signal_noise_ratio(image, blurred, data_range=1.0),
           peak_signal_noise_ratio(np.zeros_like(image), undershoot, data_range=1.0)]
    np.testing.assert_allclose(values.numpy(), ref, rtol=1e-12)
    assert torch.isfinite(ssim(preds, target, reduction="none")).all()  # SSIM accepts them too


def test_unit_images_with_data_range_255_warn():
    preds, target = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    with pytest.warns(UserWarning, match="data_range=1.0"):
        psnr(preds, target, data_range=255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0..255 images with data_range=255: no warning
        psnr(preds * 255, target * 255, data_range=255.0)


def test_result_is_a_float64_cpu_tensor(pair):
    preds, target = pair
    value = psnr(preds.float(), target.float(), reduction="none")
    assert value.dtype == torch.float64 and value.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_inputs_give_the_cpu_result(pair):
    preds, target = (t.float() for t in pair)
    on_device = psnr(preds.cuda(), target.cuda(), reduction="none")
    assert on_device.device.type == "cpu"
    torch.testing.assert_close(on_device, psnr(preds, target, reduction="none"), rtol=0, atol=0)
