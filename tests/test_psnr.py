import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

from course_lib.metrics import psnr


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
    (torch.rand(2, 1, 4, 4) * 2, torch.rand(2, 1, 4, 4), {}, "outside \\[0, data_range=1.0\\]"),
    (torch.full((1, 1, 2, 2), float("nan")), torch.rand(1, 1, 2, 2), {}, "preds contains NaN or inf"),
    (torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), {"data_range": 0}, "data_range must be a positive"),
    (torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), {"reduction": "sum"}, "reduction must be one of"),
])
def test_bad_input(preds, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        psnr(preds, target, **kwargs)
