"""Checkers for the pixel and perceptual metrics chapter (notebook 05_pixel_and_perceptual_metrics)."""

from __future__ import annotations

import math

import torch

from course_lib import metrics
from course_lib.exercises import Exercise, Mistake, NumericAnswer


def _psnr_cases(g: torch.Generator):
    """Batches in [0, 1] whose images have very different errors, so that where the mean is taken shows."""
    cases = []
    for shape in [(4, 1, 28, 28), (3, 3, 8, 6), (2, 1, 5, 7)]:
        target = torch.rand(shape, generator=g)
        scale = torch.logspace(-2.5, -0.5, shape[0]).view(-1, 1, 1, 1)  # noise from 0.003 to 0.3
        preds = (target + scale * torch.randn(shape, generator=g)).clamp(0, 1)
        cases.append((preds, target))
    return cases


def _psnr_reference(preds, target):
    return metrics.psnr(preds, target, data_range=1.0)


def _per_image_mse(a, b):
    return (a.double() - b.double()).pow(2).flatten(1).mean(1)


check_psnr = Exercise(
    "Exercise 5.1, PSNR of a batch of images in [0, 1]",
    _psnr_reference,
    "course_lib.metrics.psnr",
    _psnr_cases,
    mistakes=[
        Mistake("MAX is the largest possible pixel value: 1 for images in [0, 1], not 255 (that is for uint8).",
                lambda p, t: (10 * torch.log10(255.0**2 / _per_image_mse(p, t))).mean()),
        Mistake("you averaged the MSE over the batch before taking the log; compute one PSNR per image "
                "(MSE over its pixels only), then average the PSNRs.",
                lambda p, t: 10 * torch.log10(1.0 / _per_image_mse(p, t).mean())),
        Mistake("decibels use log10, not the natural log.",
                lambda p, t: (10 * torch.log(1.0 / _per_image_mse(p, t))).mean()),
        Mistake("with the MSE (a squared error) the factor is 10; 20 goes with the RMSE: 20 log10(MAX / RMSE).",
                lambda p, t: (20 * torch.log10(1.0 / _per_image_mse(p, t))).mean()),
        Mistake("PSNR divides MAX^2 by the MSE: 10 log10(MAX^2 / MSE), not 10 log10(MSE / MAX^2) (that is "
                "minus the PSNR).",
                lambda p, t: (10 * torch.log10(_per_image_mse(p, t))).mean()),
        Mistake("return one number, the mean of the per-image PSNRs: you returned the N values themselves.",
                lambda p, t: 10 * torch.log10(1.0 / _per_image_mse(p, t))),
        Mistake("the MSE averages the squared errors, not the absolute errors (that would be the MAE).",
                lambda p, t: (10 * torch.log10(1.0 / (p.double() - t.double()).abs().flatten(1).mean(1))).mean()),
    ],
    rtol=1e-4,
    accepts="a number: a Python float, a numpy scalar or a 0-dim tensor (any floating dtype)",
)
"""Example:
    >>> check_psnr.grade(lambda p, t: 10 * torch.log10(1 / ((p - t) ** 2).mean())).status
    'wrong'
"""


def _window_cases(g: torch.Generator):
    """7x7 windows: textured, low-contrast (where the constants matter), anti-correlated, and in [0, 255]."""
    cases = []
    for contrast, sign, data_range in [(0.3, 1, 1.0), (0.02, 1, 1.0), (0.1, -1, 1.0), (0.01, 1, 1.0),
                                       (0.2, 1, 255.0), (0.03, -1, 255.0)]:
        base = 0.2 + 0.6 * torch.rand((), generator=g)
        x = (base + contrast * torch.randn(7, 7, generator=g)).clamp(0, 1)
        y = (base + 0.05 + sign * (x - base) + 0.5 * contrast * torch.randn(7, 7, generator=g)).clamp(0, 1)
        cases.append((x * data_range, y * data_range, data_range))
    return cases


def _terms(x, y, data_range, var, c1, c2, c3):
    x, y = x.double().flatten(), y.double().flatten()
    mx, my = x.mean(), y.mean()
    vx, vy, cov = var(x, x), var(y, y), var(x, y)
    sx, sy = vx.sqrt(), vy.sqrt()
    return ((2 * mx * my + c1) / (mx**2 + my**2 + c1), (2 * sx * sy + c2) / (vx + vy + c2), (cov + c3) / (sx * sy + c3))


def _population(a, b):
    return ((a - a.mean()) * (b - b.mean())).mean()


def _sample(a, b):
    return ((a - a.mean()) * (b - b.mean())).sum() / (a.numel() - 1)


def _with(var=_population, k1=0.01, k2=0.03, use_range=True, square=True, c3_factor=0.5):
    def wrong(x, y, data_range):
        L = data_range if use_range else 1.0
        c1, c2 = ((k1 * L) ** 2, (k2 * L) ** 2) if square else (k1 * L, k2 * L)
        return _terms(x, y, data_range, var, c1, c2, c3_factor * c2)
    return wrong


check_ssim_window = Exercise(
    "Exercise 5.3, SSIM's three terms on one window",
    metrics.ssim_terms,
    "course_lib.metrics.ssim_terms",
    _window_cases,
    mistakes=[
        Mistake("the variances and the covariance divide by n - 1 (torch.var's default); SSIM's window "
                "statistics are weighted means: divide by n (torch.var(x, correction=0)).", _with(var=_sample)),
        Mistake("the constants depend on the data range: C1 = (K1 L)^2 and C2 = (K2 L)^2 with L = data_range "
                "(255 for uint8 images), not L = 1.", _with(use_range=False)),
        Mistake("C3 is C2 / 2, not C2: that choice is what lets c * s simplify to "
                "(2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2).", _with(c3_factor=1.0)),
        Mistake("the constants are squares: C1 = (K1 L)^2, C2 = (K2 L)^2.", _with(square=False)),
        Mistake("the constants are swapped: C1 = (0.01 L)^2 goes with the luminance term, C2 = (0.03 L)^2 with "
                "contrast and structure.", _with(k1=0.03, k2=0.01)),
        Mistake("return the three terms in the order (l, c, s): luminance, contrast, structure.",
                lambda x, y, r: _with()(x, y, r)[::-1]),
    ],
    output_names=("l (the luminance term)", "c (the contrast term)", "s (the structure term)"),
    accepts="a tuple (l, c, s) of three numbers, each a Python float, a numpy scalar or a 0-dim tensor",
)
"""Example:
    >>> check_ssim_window.grade(lambda x, y, L: (1.0, 1.0, 1.0)).status
    'wrong'
"""


# ------------------------------------------------------------------------------- pen and paper: PSNR of a given MSE
#: An 8-bit image (data range L = 255) whose reconstruction has this mean squared error, in grey levels squared.
PSNR_GIVEN = {"mse": 30.0, "data_range": 255.0}


def _psnr_exact() -> float:
    """PSNR by course_lib.metrics.psnr on an image pair with exactly the given MSE: a constant error sqrt(MSE)."""
    mse, L = PSNR_GIVEN["mse"], PSNR_GIVEN["data_range"]
    target = torch.full((1, 1, 4, 4), 100.0, dtype=torch.float64)
    return float(metrics.psnr(target + math.sqrt(mse), target, data_range=L))


_MSE, _L = PSNR_GIVEN["mse"], PSNR_GIVEN["data_range"]
check_psnr_answer = NumericAnswer(
    "Exercise 5.2, the PSNR of a given MSE",
    _psnr_exact(),
    "the exact PSNR (course_lib.metrics.psnr)",
    mistakes=[
        Mistake("the data range is squared: 10 log10(L^2 / MSE).", 10 * math.log10(_L / _MSE)),
        Mistake("the log is base 10 (decibels), not the natural log.", 10 * math.log(_L**2 / _MSE)),
        Mistake("20 log10 goes with L / sqrt(MSE); with L^2 / MSE the factor is 10.", 20 * math.log10(_L**2 / _MSE)),
        Mistake("20 log10 goes with L / sqrt(MSE), not L / MSE: the MSE is a squared error.",
                20 * math.log10(_L / _MSE)),
        Mistake("L is the data range of these 8-bit images, 255, not 1.", 10 * math.log10(1 / _MSE)),
        Mistake("the ratio is signal over error, L^2 / MSE: yours is upside down.", 10 * math.log10(_MSE / _L**2)),
    ],
    atol=0.01, rtol=0.0, given=PSNR_GIVEN,
    accepts="a number in dB (a float, a numpy scalar or a 0-dim tensor; a Python expression such as "
            "10 * math.log10(...) is fine), within 0.01 dB of the exact value",
)


# ------------------------------------------------------------------------------- LPIPS on given features
def lpips_from_features(feats_x, feats_y, weights):
    """LPIPS from given features, book equations (lpips-norm) and (lpips): one distance per image, shape (N,).

    For each layer l: unit-normalise the features of shape (N, C_l, H_l, W_l) over the channels (with
    course_lib.lpips's epsilon), square the difference, weight each channel by ``weights[l]`` (shape (C_l,),
    the lpips package's convention: the weight multiplies the squared difference), sum over channels, average
    over the positions; then sum over the layers. The computation of ``course_lib.lpips.LPIPS.layer_distances``
    after its backbone.
    """
    from course_lib.lpips import EPS

    total = 0
    for fx, fy, w in zip(feats_x, feats_y, weights, strict=True):
        nx = fx / (fx.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
        ny = fy / (fy.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
        total = total + ((nx - ny).pow(2) * w.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
    return total


def _lpips_cases(g: torch.Generator):
    cases = []
    for n, layers in [(2, [(4, 5, 5), (6, 3, 3)]), (3, [(3, 4, 6)]), (1, [(8, 6, 6), (5, 4, 4), (7, 2, 2)])]:
        fx, fy, ws = [], [], []
        for c, h, w in layers:
            scale = torch.rand(n, 1, h, w, generator=g) * 3 + 0.2  # feature norms differ from place to place
            x = torch.relu(torch.randn(n, c, h, w, generator=g)) * scale + 0.05
            fx.append(x)
            fy.append(x + 0.5 * scale * torch.randn(n, c, h, w, generator=g))
            ws.append(torch.rand(c, generator=g) + 0.1)
        cases.append((fx, fy, ws))
    return cases


def _lpips_variant(fx_list, fy_list, w_list, *, norm_dim=1, weights=True, space="mean", square=True, w_power=1):
    total = 0
    for fx, fy, w in zip(fx_list, fy_list, w_list, strict=True):
        if norm_dim is not None:
            fx = fx / (fx.pow(2).sum(dim=norm_dim, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.pow(2).sum(dim=norm_dim, keepdim=True).sqrt() + 1e-10)
        d = (fx - fy).pow(2) if square else (fx - fy).abs()
        if weights:
            d = d * w.view(1, -1, 1, 1) ** w_power
        d = d.sum(dim=1)
        total = total + (d.mean(dim=(1, 2)) if space == "mean" else d.sum(dim=(1, 2)))
    return total


check_lpips_from_features = Exercise(
    "Exercise 5.4, LPIPS on given features",
    lpips_from_features,
    "course_lib.exercises.metrics.lpips_from_features",
    _lpips_cases,
    mistakes=[
        Mistake("the features are not normalised: divide each position's feature vector by its length over the "
                "channels (unit length at every position) before the difference.",
                lambda a, b, w: _lpips_variant(a, b, w, norm_dim=None)),
        Mistake("normalise over the channels (dim=1), one unit vector per position, not over the spatial positions.",
                lambda a, b, w: _lpips_variant(a, b, w, norm_dim=(2, 3))),
        Mistake("the per-channel weights are missing: multiply the squared difference by weights[l] before summing "
                "over channels.", lambda a, b, w: _lpips_variant(a, b, w, weights=False)),
        Mistake("the weights here multiply the squared difference as they are (the lpips package's convention); "
                "you squared them.", lambda a, b, w: _lpips_variant(a, b, w, w_power=2)),
        Mistake("average over the spatial positions (1 / (H_l W_l)), do not sum: layers of different sizes must "
                "weigh alike.", lambda a, b, w: _lpips_variant(a, b, w, space="sum")),
        Mistake("LPIPS squares the difference; you took its absolute value.",
                lambda a, b, w: _lpips_variant(a, b, w, square=False)),
    ],
    atol=1e-5, rtol=1e-4,
    accepts="a tensor or numpy array of shape (N,), one distance per image (any floating dtype)",
)
