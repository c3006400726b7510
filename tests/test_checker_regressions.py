"""The checkers' own regression suite (issue 13).

For every exercise: typical wrong answers, written as a student would write them (not copied from the
checker's ``Mistake`` list), each rejected with a distinctive hint; correct answers by other routes
(another API, another dtype, numpy, scipy, pytorch-fid's own code) that must pass; and junk answers
that no checker may raise on.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.stats
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio as _skimage_psnr
from torch.distributions import Bernoulli, Categorical, Independent, Normal, kl_divergence

from course_lib.exercises import NumericAnswer, Verdict
from course_lib.exercises.vae import CollapsePrediction
from tests.test_exercises import EXERCISES

# ================================================================================== 1.2 reconstruction loss


def _rec_ok(x_hat, x):
    return ((x_hat - x) ** 2).flatten(1).sum(1).mean()


RECONSTRUCTION_WRONG = [
    (lambda x_hat, x: F.mse_loss(x_hat, x), "averaged over pixels too"),
    (lambda x_hat, x: ((x_hat - x) ** 2).sum(), "summed over the batch"),
    (lambda x_hat, x: (x_hat - x).abs().flatten(1).sum(1).mean(), "not squared"),
    (lambda x_hat, x: torch.linalg.vector_norm(x_hat - x, dim=(1, 2, 3)).mean(), "Euclidean norm"),
    (lambda x_hat, x: float(_rec_ok(x_hat, x)), "x_hat receives no gradient"),
    (lambda x_hat, x: _rec_ok(x_hat, x).detach(), "x_hat receives no gradient"),
    (lambda x_hat, x: 2 * _rec_ok(x_hat, x), "2 times the reference's"),
]
RECONSTRUCTION_RIGHT = [
    lambda x_hat, x: F.mse_loss(x_hat, x, reduction="sum") / x.shape[0],
    lambda x_hat, x: torch.einsum("nchw,nchw->n", x_hat - x, x_hat - x).mean(),
    lambda x_hat, x: ((x_hat.double() - x.double()) ** 2).sum(dim=(1, 2, 3)).mean(),  # float64
]

# ================================================================================== 1.1 conv output size

CONV_WRONG = [
    (lambda n, k, s, p: (n + 2 * p - k) // s, "forgot the '+ 1'"),
    (lambda n, k, s, p: (n + p - k) // s + 1, "padding is added on both sides"),
    (lambda n, k, s, p: (n + 2 * p - k) / s + 1, "floor division"),
    (lambda n, k, s, p: (n + 2 * p - k + 1) // s, "add 1 after the floor division"),
    (lambda n, k, s, p: float((n + 2 * p - k) // s + 1), "must be an integer"),
    (lambda n, k, s, p: torch.tensor(float((n + 2 * p - k) // s + 1)), "must be an integer"),
    (lambda n, k, s, p: math.ceil((n + 2 * p - k) / s) + 1, "where the reference gives"),
]
CONV_RIGHT = [
    lambda n, k, s, p: math.floor((n + 2 * p - k) / s) + 1,
    lambda n, k, s, p: np.int64((n + 2 * p - k) // s + 1),  # a numpy integer
    lambda n, k, s, p: torch.tensor((n + 2 * p - k) // s + 1),  # a 0-dim integer tensor
    lambda n, k, s, p: torch.nn.Conv1d(1, 1, k, s, p)(torch.zeros(1, 1, n)).shape[-1],  # ask PyTorch itself
]

# ================================================================================== 1.3 interpolation

INTERPOLATE_WRONG = [
    (lambda z0, z1, n: torch.stack([z1 + i / (n - 1) * (z0 - z1) for i in range(n)]), "runs backwards"),
    (lambda z0, z1, n: torch.stack([z0 + i / n * (z1 - z0) for i in range(n)]), "last point must be z1"),
    (lambda z0, z1, n: torch.stack([z0 + (i + 1) / n * (z1 - z0) for i in range(n)]), "first point must be z0"),
    (lambda z0, z1, n: torch.stack([torch.lerp(z0, z1, t) for t in torch.linspace(0, 1, n)], dim=1),
     "one row per step"),
    (lambda z0, z1, n: torch.lerp(z0, z1, torch.linspace(0, 1, n)[:, None])[1:], "expected shape"),
]
INTERPOLATE_RIGHT = [
    lambda z0, z1, n: torch.lerp(z0, z1, torch.linspace(0, 1, n)[:, None]),
    lambda z0, z1, n: np.linspace(z0.numpy(), z1.numpy(), n),  # numpy, float64
    lambda z0, z1, n: torch.stack([z0 + i / (n - 1) * (z1 - z0) for i in range(n)]),
]

# ================================================================================== 2.1 push forward


def _seeded_noise(n, dim, seed):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


PUSH_WRONG = [
    (lambda g, n, dim, seed: _seeded_noise(n, dim, seed), "returned the noise z itself"),
    (lambda g, n, dim, seed: g(torch.rand(n, dim, generator=torch.Generator().manual_seed(seed))), "not uniform"),
    (lambda g, n, dim, seed: g(_seeded_noise(dim, n, seed).T), "not (dim, n) transposed"),
    (lambda g, n, dim, seed: g(_seeded_noise(n, dim, seed)[:1]), "push every sample through g"),
    (lambda g, n, dim, seed: g(2 * _seeded_noise(n, dim, seed)), "where the reference gives"),
]


def _push_global(g, n, dim, seed):
    torch.manual_seed(seed)  # the global generator with the same seed draws the same numbers
    return g(torch.randn(n, dim))


PUSH_RIGHT = [
    _push_global,
    lambda g, n, dim, seed: g(_seeded_noise(n, dim, seed)).numpy(),  # numpy
    lambda g, n, dim, seed: g(torch.stack([z for z in _seeded_noise(n, dim, seed)])),
]

# ================================================================================== 2.2 coupling layer

_LOG_2PI = math.log(2 * math.pi)


def _coupling(x, mask, cond, *, sign=1.0, normaliser=True, base_at_x=False, detach=False):
    s, t = cond(mask * x)
    z = mask * x + (1 - mask) * (x * torch.exp(s) + t)
    log_det = sign * ((1 - mask) * s).sum(1)
    base = -0.5 * ((x if base_at_x else z) ** 2).sum(1) - (0.5 * x.shape[1] * _LOG_2PI if normaliser else 0.0)
    out = (base + log_det, log_det)
    return tuple(o.detach() for o in out) if detach else out


COUPLING_WRONG = [
    (lambda x, m, c: _coupling(x, m, c, sign=-1.0), "the log-determinant has the wrong sign"),
    (lambda x, m, c: _coupling(x, m, c, normaliser=False), "normaliser of the standard normal"),
    (lambda x, m, c: _coupling(x, m, c, base_at_x=True), "not at x"),
    (lambda x, m, c: _coupling(x, m, c, detach=True), "x receives no gradient"),
    (lambda x, m, c: _coupling(x, 1 - m, c), "the mask is the wrong way round"),
    (lambda x, m, c: _coupling(x, m, c)[0], "expected a tuple of 2 values"),
]


def _coupling_distributions(x, mask, cond):
    s, t = cond(mask * x)
    z = mask * x + (1 - mask) * (x * torch.exp(s) + t)
    log_det = torch.where(mask.bool(), torch.zeros_like(s), s).sum(dim=1)
    return Normal(0.0, 1.0).log_prob(z).sum(1) + log_det, log_det


def _coupling_float64(x, mask, cond):
    s, t = cond(mask * x)
    z = (mask * x + (1 - mask) * (x * torch.exp(s) + t)).double()
    log_det = ((1 - mask) * s).double().sum(1)
    base = torch.distributions.MultivariateNormal(torch.zeros(x.shape[1], dtype=torch.float64),
                                                  torch.eye(x.shape[1], dtype=torch.float64)).log_prob(z)
    return base + log_det, log_det


COUPLING_RIGHT = [_coupling_distributions, _coupling_float64]

# ================================================================================== 3.1 reparameterization


def _no_grad_sample(mu, logvar):
    with torch.no_grad():
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


REPARAM_WRONG = [
    (lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar)), "mu receives no gradient"),
    (lambda mu, logvar: Normal(mu, torch.exp(0.5 * logvar)).sample(), "mu receives no gradient"),
    (_no_grad_sample, "mu receives no gradient"),
    (lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu), "a missing 1/2"),
    (lambda mu, logvar: mu + torch.exp(0.5 * logvar).detach() * torch.randn_like(mu), "logvar receives no gradient"),
    (lambda mu, logvar: mu + torch.sqrt(logvar.abs()) * torch.randn_like(mu), "not sqrt(logvar)"),
    (lambda mu, logvar: torch.exp(0.5 * logvar) * torch.randn_like(mu), "you forgot the mean"),
    (lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.rand_like(mu), "not uniform"),
]
REPARAM_RIGHT = [
    lambda mu, logvar: Normal(mu, torch.exp(0.5 * logvar)).rsample(),  # rsample is the reparameterization
    lambda mu, logvar: mu + torch.randn(mu.shape) * logvar.mul(0.5).exp(),
    lambda mu, logvar: mu.double() + torch.exp(0.5 * logvar.double()) * torch.randn_like(mu).double(),  # float64
]

# ================================================================================== 3.2 KL


def _kl(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


KL_WRONG = [
    (lambda mu, logvar: (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1), "forgot the factor 1/2"),
    (lambda mu, logvar: -_kl(mu, logvar), "the sign is flipped"),
    (lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean(dim=1), "averaged over the latent"),
    (lambda mu, logvar: _kl(mu, logvar).mean(), "return one KL per example"),
    (lambda mu, logvar: _kl(mu, logvar).detach(), "the KL is detached"),
    # two slips at once, a sign and a missing 1/2: named as such, not as "rounding"
    (lambda mu, logvar: -(mu**2 + logvar.exp() - 1 - logvar).sum(dim=1), "-2 times the reference's"),
    # a slip in one term only: the term is named
    (lambda mu, logvar: 0.5 * (2 * mu**2 + logvar.exp() - 1 - logvar).sum(dim=1),
     "the mean term 1/2 sum mu^2: off"),
    (lambda mu, logvar: 0.5 * (mu**2 + 2 * logvar.exp() - 2 - 2 * logvar).sum(dim=1),
     "the variance term 1/2 sum (sigma^2 - 1 - log sigma^2): off"),
]
KL_RIGHT = [
    lambda mu, logvar: kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(dim=1),
    lambda mu, logvar: kl_divergence(Independent(Normal(mu, (0.5 * logvar).exp()), 1),
                                     Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)),
    lambda mu, logvar: _kl(mu.double(), logvar.double()),  # float64
]

# ================================================================================== 3.4 negative ELBO


def _bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


ELBO_WRONG = [
    (lambda lo, x, mu, lv: F.binary_cross_entropy_with_logits(lo, x) + _kl(mu, lv).mean(),
     "averaged the cross-entropy"),
    (lambda lo, x, mu, lv: -(_bce(lo, x) + _kl(mu, lv)).mean(), "you returned the ELBO"),
    (lambda lo, x, mu, lv: (_bce(lo, x) - _kl(mu, lv)).mean(), "must be added, not subtracted"),
    (lambda lo, x, mu, lv: _bce(lo, x).mean(), "the KL term is missing"),
    (lambda lo, x, mu, lv: (_bce(lo, x) + _kl(mu, lv).detach()).mean(), "the KL term is detached"),
    (lambda lo, x, mu, lv: (_bce(lo, x) + _kl(mu, lv).detach()).mean(), "mu and logvar receive no gradient"),
    (lambda lo, x, mu, lv: (_bce(lo, x).detach() + _kl(mu, lv)).mean(), "reconstruction term is detached"),
    # a sign and a missing 1/2 in the KL: the KL term is named
    (lambda lo, x, mu, lv: (_bce(lo, x) - 2 * _kl(mu, lv)).mean(), "the KL term: off"),
    (lambda lo, x, mu, lv: (2 * _bce(lo, x) + _kl(mu, lv)).mean(), "the reconstruction term: off"),
]


def _elbo_bernoulli(logits, x, mu, logvar):
    log_px = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    return (kl - log_px).mean()


ELBO_RIGHT = [
    _elbo_bernoulli,
    lambda lo, x, mu, lv: F.binary_cross_entropy(torch.sigmoid(lo.double()), x.double(), reduction="sum") / len(x)
    + _kl(mu, lv).mean(),
]

# ================================================================================== 3.6 IWAE


def _iwae_stable(log_w):
    m = log_w.max(0).values
    return m + (log_w - m).exp().mean(0).log()


IWAE_WRONG = [
    (lambda lw: lw.mean(dim=0), "that is the k-sample ELBO"),
    (lambda lw: torch.logsumexp(lw, dim=0), "you forgot the -log k"),
    (lambda lw: torch.log(torch.exp(lw).mean(dim=0)), "exp underflows"),
    (lambda lw: torch.logsumexp(lw, dim=1) - math.log(lw.shape[1]), "along dim 0"),
    (lambda lw: lw.max(dim=0).values, "largest weight"),
    (lambda lw: (torch.logsumexp(lw, 0) - math.log(lw.shape[0])).detach(), "log-weights receive no gradient"),
]
IWAE_RIGHT = [
    _iwae_stable,
    lambda lw: torch.logsumexp(lw, dim=0) - torch.log(torch.tensor(float(lw.shape[0]))),
    lambda lw: torch.logsumexp(lw.double() - math.log(lw.shape[0]), dim=0),  # float64
]

# ================================================================================== 4.1 nearest code


def _dist(z, c):
    flat = z.reshape(-1, z.shape[-1])
    return flat.pow(2).sum(1, keepdim=True) - 2 * flat @ c.T + c.pow(2).sum(1)


QUANTIZE_WRONG = [
    (lambda z, c: _dist(z, c).argmax(1).reshape(z.shape[:-1]), "farthest code"),
    (lambda z, c: (z.reshape(-1, z.shape[-1]) @ c.T).argmax(1).reshape(z.shape[:-1]), "largest dot product"),
    (lambda z, c: _dist(z, c).argmin(1), "reshape the (N*L,) indices back"),
    (lambda z, c: _dist(z, c).argmin(1).reshape(z.shape[:-1]).float(), "must be an integer"),
    (lambda z, c: torch.cdist(z.reshape(-1, z.shape[-1]), c, p=1).argmin(1).reshape(z.shape[:-1]), "(L1)"),
]


def _quantize_numpy(z, c):
    zz, cc = z.numpy(), c.numpy()
    return ((zz[..., None, :] - cc) ** 2).sum(-1).argmin(-1)


QUANTIZE_RIGHT = [
    lambda z, c: torch.cdist(z.reshape(-1, z.shape[-1]), c).argmin(1).reshape(z.shape[:-1]),
    _quantize_numpy,  # numpy int64
    lambda z, c: _dist(z, c).argmin(1).reshape(z.shape[:-1]).int(),  # int32
]

# ================================================================================== 4.2 straight-through


def _st_no_grad(z_e, e):
    with torch.no_grad():
        return z_e + (e - z_e)


STRAIGHT_WRONG = [
    (lambda z_e, e: e, "without detach) sends the decoder's gradient to the codebook"),
    (lambda z_e, e: e + (z_e - e).detach(), "stop-gradient is on the wrong side"),
    (lambda z_e, e: z_e, "never sees the quantized code"),
    (lambda z_e, e: e.detach(), "no gradient at all"),
    (_st_no_grad, "no gradient at all"),
    (lambda z_e, e: 2 * z_e - (2 * z_e - e).detach(), "passes the decoder's gradient to z_e unchanged"),
]


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z_e, e):
        return e.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


STRAIGHT_RIGHT = [
    lambda z_e, e: z_e - z_e.detach() + e.detach(),
    _StraightThrough.apply,  # a custom autograd function
    lambda z_e, e: z_e.double() + (e.double() - z_e.double()).detach(),  # float64
]

# ================================================================================== 4.3 VQ loss


def _sqn(a, b):
    return (a - b).pow(2).flatten(1).sum(1).mean()


VQ_WRONG = [
    (lambda z, e, b: _sqn(z, e.detach()) + b * _sqn(z.detach(), e), "stop-gradients are swapped"),
    (lambda z, e, b: _sqn(z, e) + b * _sqn(z, e), "without stop-gradients"),
    (lambda z, e, b: F.mse_loss(z.detach(), e) + b * F.mse_loss(z, e.detach()), "F.mse_loss's default"),
    (lambda z, e, b: _sqn(z.detach(), e), "commitment term beta ||z_e - sg[e]||^2 is missing"),
    (lambda z, e, b: b * (_sqn(z.detach(), e) + _sqn(z, e.detach())), "beta weighs the commitment term only"),
    (lambda z, e, b: _sqn(z.detach(), e) + 2 * b * _sqn(z, e.detach()),
     "the commitment term ||z_e - sg[e]||^2: off"),
]
VQ_RIGHT = [
    lambda z, e, b: (F.mse_loss(e, z.detach(), reduction="sum") + b * F.mse_loss(z, e.detach(), reduction="sum"))
    / z.shape[0],
    lambda z, e, b: _sqn(z.double().detach(), e.double()) + b * _sqn(z.double(), e.double().detach()),
]

# ================================================================================== 4.4 perplexity


def _freqs(i, k):
    counts = torch.bincount(i.reshape(-1), minlength=k).float()
    return counts / counts.sum()


PERPLEXITY_WRONG = [
    (lambda i, k: -torch.special.xlogy(_freqs(i, k), _freqs(i, k)).sum(), "the perplexity is its exponential"),
    (lambda i, k: torch.exp(-(_freqs(i, k) * torch.log2(_freqs(i, k).clamp_min(1e-30))).sum()), "bases do not match"),
    (lambda i, k: torch.exp(-(_freqs(i, k) * _freqs(i, k).log()).sum()), "0 * log 0 = nan"),
    (lambda i, k: float(len(torch.unique(i))), "counted the codes that are used"),
    (lambda i, k: float(k), "where the reference gives"),
]
PERPLEXITY_RIGHT = [
    lambda i, k: float(np.exp(scipy.stats.entropy(np.bincount(i.numpy().reshape(-1), minlength=k)))),  # float
    lambda i, k: np.exp(scipy.stats.entropy(np.bincount(i.numpy().reshape(-1)))),  # a numpy float64
    lambda i, k: Categorical(probs=_freqs(i, k)).entropy().exp(),
]

# ================================================================================== 5.1 PSNR


def _mse(p, t):
    return ((p - t) ** 2).flatten(1).mean(1)


PSNR_WRONG = [
    (lambda p, t: (10 * torch.log10(255**2 / _mse(p, t))).mean(), "not 255"),
    (lambda p, t: 10 * torch.log10(1 / ((p - t) ** 2).mean()), "averaged the MSE over the batch"),
    (lambda p, t: (10 * torch.log(1 / _mse(p, t))).mean(), "log10, not the natural log"),
    (lambda p, t: (20 * torch.log10(1 / _mse(p, t))).mean(), "20 goes with the RMSE"),
    (lambda p, t: (10 * torch.log10(_mse(p, t))).mean(), "minus the PSNR"),
    (lambda p, t: 10 * torch.log10(1 / _mse(p, t)), "the mean of the per-image PSNRs"),
    (lambda p, t: (10 * torch.log10(1 / _mse(p, t))).mean().repeat(2), "expected a single number"),
]


def _psnr_skimage(p, t):
    from skimage.metrics import peak_signal_noise_ratio

    return float(np.mean([peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(t.numpy(), p.numpy(),
                                                                                         strict=True)]))


PSNR_RIGHT = [
    _psnr_skimage,  # scikit-image, a Python float
    lambda p, t: np.mean(20 * np.log10(1 / np.sqrt(((p.numpy() - t.numpy()) ** 2).reshape(len(p), -1).mean(1)))),
    lambda p, t: (10 * torch.log10(1 / _mse(p.double(), t.double()))).mean(),
]

# ================================================================================== 5.3 SSIM terms


def _ssim(x, y, L, var_ddof=0, c3=0.5, k1=0.01, k2=0.03, squared=True):
    C1, C2 = ((k1 * L) ** 2, (k2 * L) ** 2) if squared else (k1 * L, k2 * L)
    C3 = c3 * C2
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(correction=var_ddof), y.var(correction=var_ddof)
    cov = ((x - mx) * (y - my)).sum() / (x.numel() - var_ddof)
    sx, sy = vx.sqrt(), vy.sqrt()
    return ((2 * mx * my + C1) / (mx**2 + my**2 + C1), (2 * sx * sy + C2) / (vx + vy + C2),
            (cov + C3) / (sx * sy + C3))


SSIM_WRONG = [
    (lambda x, y, L: _ssim(x, y, L, var_ddof=1), "divide by n (torch.var(x, correction=0))"),
    (lambda x, y, L: _ssim(x, y, 1.0), "not L = 1"),
    (lambda x, y, L: _ssim(x, y, L, c3=1.0), "C3 is C2 / 2"),
    (lambda x, y, L: _ssim(x, y, L, squared=False), "the constants are squares"),
    (lambda x, y, L: _ssim(x, y, L, k1=0.03, k2=0.01), "the constants are swapped"),
    (lambda x, y, L: _ssim(x, y, L)[::-1], "in the order (l, c, s)"),
    (lambda x, y, L: _ssim(x, y, L)[:2], "expected a tuple of 3 values"),
    # a slip in one term: the term is named
    (lambda x, y, L: (_ssim(x, y, L)[0], _ssim(x, y, L)[1], (((x - x.mean()) * (y - y.mean())).mean() + 1e-4)
                      / (x.std(correction=0) * y.std(correction=0) + 1e-4)), "in s (the structure term)"),
]


def _ssim_numpy(x, y, L):
    a, b = x.numpy().astype(np.float64).ravel(), y.numpy().astype(np.float64).ravel()
    C1, C2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    cov = np.cov(a, b, bias=True)
    sx, sy = np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1])
    return ((2 * a.mean() * b.mean() + C1) / (a.mean() ** 2 + b.mean() ** 2 + C1),
            (2 * sx * sy + C2) / (cov[0, 0] + cov[1, 1] + C2),
            (cov[0, 1] + C2 / 2) / (sx * sy + C2 / 2))  # numpy float64 scalars


SSIM_RIGHT = [
    _ssim_numpy,
    lambda x, y, L: tuple(float(v) for v in _ssim(x.double(), y.double(), L)),  # Python floats
    lambda x, y, L: list(_ssim(x, y, L)),  # a list instead of a tuple
]

# ================================================================================== 6.1 FID


def _fid(real, fake, *, cross_sign=-2.0, mean_square=True, ddof=1, dtype=None, roots=False):
    if dtype is not None:
        real, fake = real.to(dtype), fake.to(dtype)
    s1, s2 = torch.cov(real.T, correction=ddof), torch.cov(fake.T, correction=ddof)
    w, v = torch.linalg.eigh(s1)
    r1 = v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T
    if roots:
        w2, v2 = torch.linalg.eigh(s2)
        tr = (r1 @ v2 @ torch.diag(w2.clamp_min(0).sqrt()) @ v2.T).trace()
    else:
        tr = torch.linalg.eigvalsh(r1 @ s2 @ r1).clamp_min(0).sqrt().sum()
    diff = real.mean(0) - fake.mean(0)
    mean_term = diff.pow(2).sum() if mean_square else diff.norm()
    return mean_term + s1.trace() + s2.trace() + cross_sign * tr


def _fid_scipy_complex(real, fake):
    r, f = real.numpy(), fake.numpy()
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).astype(np.complex128)
    return ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


FID_WRONG = [
    (lambda r, f: _fid(r, f, cross_sign=+2.0), "the cross term is subtracted"),  # crashed the old checker
    (lambda r, f: _fid(r, f, mean_square=False), "not the distance itself"),  # crashed the old checker
    (lambda r, f: _fid(r, f, ddof=0), "divided by N - 1"),
    (lambda r, f: _fid(r, f, roots=True), "is not Tr(S_r^(1/2) S_g^(1/2))"),
    (lambda r, f: (r.mean(0) - f.mean(0)).pow(2).sum(), "only the means are compared"),
    (lambda r, f: _fid(r, f, cross_sign=-1.0), "you forgot the factor 2"),
    (_fid_scipy_complex, "keep only the real part"),
    # a slip in each term: both named
    (lambda r, f: _fid(r, f, mean_square=False, cross_sign=+2.0),
     "the mean term ||mu_r - mu_g||^2: off"),
    (lambda r, f: _fid(r, f, mean_square=False, cross_sign=+2.0),
     "the covariance terms Tr(S_r) + Tr(S_g) - 2 Tr((S_r S_g)^(1/2)): off"),
    (lambda r, f: 0.5 * _fid(r, f), "0.5 times the reference's"),
]


def _fid_pytorch_fid(real, fake):
    """pytorch-fid's own code: numpy float64 in, numpy float64 out."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    r, f = real.numpy(), fake.numpy()
    return calculate_frechet_distance(r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))


def _fid_scipy_float(real, fake):
    r, f = real.numpy(), fake.numpy()
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


FID_RIGHT = [
    _fid_pytorch_fid,
    _fid_scipy_float,
    lambda r, f: _fid(r, f, dtype=torch.float32),  # float32: crashed the old checker
    lambda r, f: _fid(r, f),
]

# ================================================================================== 6.3 Inception Score


def _is(probs, splits, *, log=torch.log, reverse=False, ddof=0, exp=True, strided=False):
    if strided:
        probs = probs[torch.arange(probs.shape[0]).reshape(-1, splits).T.reshape(-1)]
    scores = []
    for p in probs.chunk(splits):
        py = p.mean(0, keepdim=True)
        kl = ((py * (log(py) - log(p))) if reverse else (p * (log(p) - log(py)))).sum(1)
        scores.append(kl.mean().exp() if exp else kl.mean())
    scores = torch.stack(scores)
    return scores.mean(), scores.std(correction=ddof)


IS_WRONG = [
    (lambda p, s: _is(p, s, reverse=True), "not the reverse"),
    (lambda p, s: _is(p, s, log=torch.log2), "use the natural log"),
    (lambda p, s: _is(p, s, ddof=1), "not ddof 1"),
    (lambda p, s: _is(p, s, exp=False), "without the exponential"),
    (lambda p, s: _is(p, s, strided=True), "contiguous blocks"),
    (lambda p, s: _is(p, s)[0], "expected a tuple of 2 values"),
    (lambda p, s: (_is(p, s)[0], _is(p, s, ddof=1)[1] * 3), "in the std (the second value)"),
]


def _is_original(probs, splits):
    """The original Inception Score code's way, in numpy: numpy float64 results."""
    preds = probs.numpy()
    n = preds.shape[0]
    scores = []
    for k in range(splits):
        part = preds[k * (n // splits):(k + 1) * (n // splits), :]
        py = np.expand_dims(np.mean(part, 0), 0)
        kl = part * (np.log(part) - np.log(py))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return np.mean(scores), np.std(scores)


def _is_scipy(probs, splits):
    scores = []
    for p in np.split(probs.numpy(), splits):
        py = p.mean(0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(row, py) for row in p])))
    return float(np.mean(scores)), float(np.std(scores))


IS_RIGHT = [_is_original, _is_scipy, lambda p, s: _is(p.float(), s)]  # numpy, floats, float32 tensors

# ================================================================================== 6.4 resampling matrix


def _resize_interpolate(n_in, n_out, align_corners=False):
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=align_corners)[:, 0, :].T


def _resize_numpy(n_in, n_out):
    i = np.arange(n_out)[:, None]
    j = np.arange(n_in)[None, :]
    w = np.clip(1 - np.abs(j + 0.5 - (i + 0.5) * n_in / n_out), 0, None)
    return w / w.sum(1, keepdims=True)


RESIZE_WRONG = [
    (lambda a, b: _resize_interpolate(a, b, align_corners=True), "align_corners=True"),
    (lambda a, b: torch.from_numpy(_resize_numpy(a, b)).T, "you returned its transpose"),
    (lambda a, b: torch.from_numpy(np.clip(1 - np.abs(np.arange(a)[None, :] + 0.5
                                                       - (np.arange(b)[:, None] + 0.5) * a / b), 0, None)),
     "divide each row by its sum"),
    (lambda a, b: torch.from_numpy(_resize_numpy(a, b))[:, :-1], "expected shape"),
    (lambda a, b: _resize_numpy(a, b).tolist(), "expected a tensor, got a list"),
]
RESIZE_RIGHT = [_resize_numpy, lambda a, b: _resize_interpolate(a, b).float(), _resize_interpolate]

# ========================================================================== 3.3 KL between two 1-D Gaussians (a number)

_KG = {"m_q": 1.0, "s_q": 0.5, "m_p": 0.0, "s_p": 2.0}  # the numbers the notebook prints, typed in as a student would
KL_1D_WRONG = [
    (float(kl_divergence(Normal(0.0, 2.0), Normal(1.0, 0.5))), "KL(p || q)"),
    (math.log(4.0 / 0.25) + (0.25 + 1) / 8 - 0.5, "ratio of the variances"),
    (math.log(4.0) + (0.25 + 1) / 4 - 0.5, "a factor 1/2 is missing"),
    (math.log(4.0) + (0.25 + 1) / 8, "the constant -1/2 is missing"),
    (float(kl_divergence(Normal(1.0, 0.5), Normal(0.0, 1.0))), "standard normal"),
    (1.04, "where the reference gives"),  # rounded too far
]
KL_1D_RIGHT = [
    float(kl_divergence(Normal(_KG["m_q"], _KG["s_q"]), Normal(_KG["m_p"], _KG["s_p"]))),
    np.float32(math.log(4.0) + (0.25 + 1) / 8 - 0.5),
    torch.tensor(1.0425),  # rounded to 4 digits, a 0-dim float32 tensor
    # numerical integration of q log(q / p), independent of any closed form
    scipy.integrate.quad(lambda z: scipy.stats.norm.pdf(z, 1.0, 0.5) * (scipy.stats.norm.logpdf(z, 1.0, 0.5)
                                                                         - scipy.stats.norm.logpdf(z, 0.0, 2.0)),
                         -10, 10)[0],
]

# ================================================================================== 3.5 ELBO gap (a number)


def _gap_by_torch(reverse=False):
    s = 1 / (1 + 2.0**2 / 1.0)
    post, q = Normal(s * 2.0 * 3.0, math.sqrt(s)), Normal(0.5, math.sqrt(0.5))
    return float(kl_divergence(post, q) if reverse else kl_divergence(q, post))


def _gap_by_sampling():
    """log p(x) - E_q[log p(x, z) - log q(z)], the expectation by quadrature (no KL formula at all)."""
    log_px = scipy.stats.norm.logpdf(3.0, 0.0, math.sqrt(2.0**2 + 1.0))

    def integrand(z):
        log_joint = scipy.stats.norm.logpdf(3.0, 2.0 * z, 1.0) + scipy.stats.norm.logpdf(z, 0.0, 1.0)
        log_q = scipy.stats.norm.logpdf(z, 0.5, math.sqrt(0.5))
        return math.exp(log_q) * (log_joint - log_q)

    return log_px - scipy.integrate.quad(integrand, -15, 15)[0]


GAP_WRONG = [
    (_gap_by_torch(reverse=True), "KL(p(z|x) || q)"),
    (float(kl_divergence(Normal(0.5, math.sqrt(0.5)), Normal(0.0, 1.0))), "prior p(z) = N(0, 1)"),
    (2 * _gap_by_torch(), "a factor 1/2 is missing"),
    (0.5 * (0.5 / 0.25 + (0.5 - 1.5) ** 2 / 0.25 - 1 + math.log(0.25 / 0.5)), "the prior contributes its 1"),
    (-_gap_by_torch(), "where the reference gives"),
]
GAP_RIGHT = [_gap_by_torch(), _gap_by_sampling(), np.float64(round(_gap_by_torch(), 4)),
             torch.tensor(_gap_by_torch(), dtype=torch.float32)]

# ================================================================================== 3.7 score-function estimator


def _score_by_autograd(f, mu, log_sigma, eps, baseline):
    """Per row, autograd of log q at the fixed sample z (torch.distributions' log_prob), times f(z) - b."""
    rows = []
    z_all = (mu + log_sigma.exp() * eps).detach()
    for z in z_all:
        m, ls = mu.detach().clone().requires_grad_(True), log_sigma.detach().clone().requires_grad_(True)
        log_q = Normal(m, ls.exp()).log_prob(z).sum()
        gm, gl = torch.autograd.grad(log_q, (m, ls))
        rows.append((f(z.unsqueeze(0))[0] - baseline) * torch.cat([gm, gl]))
    return torch.stack(rows)


def _score_numpy(f, mu, log_sigma, eps, baseline):
    m, ls, e = mu.numpy(), log_sigma.numpy(), eps.numpy()
    sigma = np.exp(ls)
    fz = f(torch.from_numpy(m + sigma * e)).numpy()
    return (fz - baseline)[:, None] * np.concatenate([e / sigma, e**2 - 1], axis=1)


def _score_plain(f, mu, log_sigma, eps, baseline, **kw):
    sigma = log_sigma.exp()
    z = mu + sigma * eps
    return (f(z) - baseline)[:, None] * torch.cat([eps / sigma, eps**2 - 1], 1)


SCORE_WRONG = [
    (lambda f, mu, ls, eps, b: f(mu + ls.exp() * eps)[:, None] * torch.cat([eps / ls.exp(), eps**2 - 1], 1),
     "the baseline is missing"),
    (lambda f, mu, ls, eps, b: (b - f(mu + ls.exp() * eps))[:, None] * torch.cat([eps / ls.exp(), eps**2 - 1], 1),
     "a sign is flipped"),
    (lambda f, mu, ls, eps, b: torch.cat([eps / ls.exp(), eps**2 - 1], 1), "the score alone"),
    (lambda f, mu, ls, eps, b: torch.cat([2 * (mu + ls.exp() * eps - _C[len(mu)]),
                                          2 * (mu + ls.exp() * eps - _C[len(mu)]) * ls.exp() * eps], 1),
     "reparameterized gradient"),  # written out for the quadratic objective
    (lambda f, mu, ls, eps, b: (f(eps) - b)[:, None] * torch.cat([eps / ls.exp(), eps**2 - 1], 1),
     "not at the standard normal eps"),
    (lambda f, mu, ls, eps, b: (f(mu + ls.exp() * eps) - b)[:, None] * torch.cat([eps, eps**2 - 1], 1),
     "you used eps"),
    (lambda f, mu, ls, eps, b: _score_plain(f, mu, ls, eps, b).mean(0), "not their mean"),
]
_C = {}  # filled below from the checker's own cases: c of the quadratic objective, by dimension


def _fill_c():
    from course_lib.exercises.vae import _score_cases

    for f, mu, *_ in _score_cases(torch.Generator().manual_seed(0)):
        z = torch.zeros(1, len(mu), dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(f(z).sum(), z)
        _C[len(mu)] = -grad[0] / 2  # f(z) = ||z - c||^2: grad at 0 is -2c


_fill_c()
SCORE_RIGHT = [_score_by_autograd, _score_numpy, lambda f, mu, ls, eps, b: _score_plain(f, mu, ls, eps, b).float()]

# ============================================= 3.8 the variance of one reparameterized gradient (pen and paper)
# sigma = 0.5 as the notebook prints it; an independent route: the sample variance over many draws
_eps_var = np.random.default_rng(0).standard_normal(2_000_000)
VARIANCE_WRONG = [
    (2 * 0.5**2, "the factor 2 of the derivative is squared"),
    (4 * 0.5, "enters squared"),
    (0.0, "its variance is not 0"),
    (0.5**2, "the variance of sigma eps alone"),
    (2 * (0.5 - 1.0), "not the variance of its estimate"),
    (1.1, "where the reference gives"),
]
VARIANCE_RIGHT = [
    4 * 0.5**2,
    np.float32(1.0),
    torch.tensor(1.0),
    round(float(np.var(2 * (0.5 + 0.5 * _eps_var - 1.0))), 3),  # measured, rounded to the stated precision
]


# ============================================================================== 3.9 which beta collapses (a prediction)

EXERCISES["check_collapse_prediction"].observe(CollapsePrediction.EXAMPLE, 16)  # first with <= 8 active: beta = 4
PREDICTION_WRONG = [
    (2.0, "not collapsed yet"),
    (0.25, "not collapsed yet"),
    (8, "collapsed, but not the first"),
    (math.inf, "the sweep did collapse"),
    (3.0, "choose one of the swept"),
]
PREDICTION_RIGHT = [4.0, 4, np.float32(4.0), torch.tensor(4.0)]

# ================================================================================== 3.10 free bits

FREE_BITS_WRONG = [
    (lambda kl, lam: torch.clamp(kl, min=lam).mean(0).sum(), "the max comes after the mean"),
    (lambda kl, lam: torch.minimum(kl.mean(0), torch.tensor(lam, dtype=kl.dtype)).sum(), "not a ceiling"),
    (lambda kl, lam: kl.mean(0).sum(), "nothing is clamped"),
    (lambda kl, lam: kl.sum(0).clamp(min=lam).sum(), "do not sum"),
    (lambda kl, lam: float(kl.mean(0).clamp(min=lam).sum()), "receives no gradient"),
    (lambda kl, lam: torch.where(kl.mean(0) < lam, kl.mean(0) - kl.mean(0).detach() + lam, kl.mean(0)).sum(),
     "gradient"),  # the value lam, but the clamped dimension's gradient kept
]
FREE_BITS_RIGHT = [
    lambda kl, lam: torch.maximum(kl.mean(0), torch.tensor(lam, dtype=kl.dtype)).sum(),
    lambda kl, lam: (F.relu(kl.mean(0) - lam) + lam).sum(),
    lambda kl, lam: torch.where(kl.mean(0) > lam, kl.mean(0), torch.full_like(kl.mean(0), lam)).sum(),
    lambda kl, lam: kl.float().mean(0).clamp(min=lam).sum(),  # float32
]

# ============================================================================= 4.5 perplexity of a histogram (a number)

_COUNTS = np.array([50, 30, 15, 5, 0, 0, 0, 0])
PERPLEXITY_ANSWER_WRONG = [
    (scipy.stats.entropy(_COUNTS), "the entropy H in nats"),
    (scipy.stats.entropy(_COUNTS, base=2), "entropy in bits"),
    (math.exp(scipy.stats.entropy(_COUNTS, base=2)), "bases do not match"),
    (4, "the number of codes used"),
    (8.0, "the codebook size K"),
    (math.exp(-scipy.stats.entropy(_COUNTS)), "exp(+H)"),
]
PERPLEXITY_ANSWER_RIGHT = [
    math.exp(scipy.stats.entropy(_COUNTS)),
    2 ** scipy.stats.entropy(_COUNTS, base=2),
    torch.distributions.Categorical(probs=torch.tensor(_COUNTS / 100)).entropy().exp(),  # a 0-dim float64 tensor
    np.float32(3.1334),
]

# ================================================================================== 5.2 PSNR of a given MSE (a number)

PSNR_ANSWER_WRONG = [
    (10 * math.log10(255 / 30), "the data range is squared"),
    (10 * np.log(255**2 / 30), "base 10"),
    (20 * math.log10(255**2 / 30), "the factor is 10"),
    (10 * math.log10(1 / 30), "not 1"),
    (-10 * math.log10(255**2 / 30), "upside down"),
    (33.3, "where the reference gives"),  # rounded too far: 0.06 dB off
]
PSNR_ANSWER_RIGHT = [
    20 * math.log10(255 / math.sqrt(30)),
    float(_skimage_psnr(np.full((8, 8), 50.0), np.full((8, 8), 50.0 + math.sqrt(30)), data_range=255)),
    round(10 * math.log10(255**2 / 30), 2),  # 33.36: within 0.01 dB
    np.float32(10 * np.log10(65025 / 30)),
]

# ================================================================================== 5.4 LPIPS on given features


def _lpips_package(fx_list, fy_list, w_list):
    """The lpips package's own helpers: normalize_tensor (eps 1e-10) and spatial_average."""
    import lpips

    total = 0
    for fx, fy, w in zip(fx_list, fy_list, w_list, strict=True):
        diff = (lpips.normalize_tensor(fx) - lpips.normalize_tensor(fy)) ** 2
        total = total + lpips.spatial_average((diff * w.view(1, -1, 1, 1)).sum(1, keepdim=True)).flatten()
    return total


def _lpips_einsum64(fx_list, fy_list, w_list):
    total = 0
    for fx, fy, w in zip(fx_list, fy_list, w_list, strict=True):
        nx = fx.double() / (torch.linalg.vector_norm(fx.double(), dim=1, keepdim=True) + 1e-10)
        ny = fy.double() / (torch.linalg.vector_norm(fy.double(), dim=1, keepdim=True) + 1e-10)
        total = total + torch.einsum("nchw,c->n", (nx - ny) ** 2, w.double()) / (fx.shape[2] * fx.shape[3])
    return total


def _lpips_student(fx_list, fy_list, w_list, *, norm=True, dim=1, w_on=True, reduce="mean", power=2):
    total = 0
    for fx, fy, w in zip(fx_list, fy_list, w_list, strict=True):
        if norm:
            fx = F.normalize(fx, dim=dim) if dim == 1 else fx / fx.flatten(2).norm(dim=2)[..., None, None]
            fy = F.normalize(fy, dim=dim) if dim == 1 else fy / fy.flatten(2).norm(dim=2)[..., None, None]
        d = (fx - fy).abs() ** power
        if w_on:
            d = d * w[None, :, None, None]
        d = d.sum(1)
        total = total + (d.mean((1, 2)) if reduce == "mean" else d.sum((1, 2)))
    return total


LPIPS_WRONG = [
    (lambda a, b, w: _lpips_student(a, b, w, norm=False), "not normalised"),
    (lambda a, b, w: _lpips_student(a, b, w, dim=(2, 3)), "not over the spatial positions"),
    (lambda a, b, w: _lpips_student(a, b, w, w_on=False), "weights are missing"),
    (lambda a, b, w: _lpips_student(a, b, w, reduce="sum"), "do not sum"),
    (lambda a, b, w: _lpips_student(a, b, w, power=1), "absolute value"),
    (lambda a, b, w: _lpips_student(a, b, [v**2 for v in w]), "you squared them"),
]
LPIPS_RIGHT = [_lpips_package, _lpips_einsum64, lambda a, b, w: _lpips_student(a, b, w)]  # F.normalize: eps 1e-12

# ================================================================================== 6.2 FID's two terms


def _terms_scipy(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    return float(((mu1 - mu2) ** 2).sum()), float(np.trace(s1.numpy()) + np.trace(s2.numpy()) - 2 * np.trace(covmean))


def _terms_pytorch_fid(mu1, s1, mu2, s2):
    from pytorch_fid.fid_score import calculate_frechet_distance

    a = [t.numpy() for t in (mu1, s1, mu2, s2)]
    total = calculate_frechet_distance(*a)
    mean_term = float(np.sum((a[0] - a[2]) ** 2))
    return mean_term, total - mean_term


def _terms_student(mu1, s1, mu2, s2, *, norm=False, sign=-2, root="product"):
    mean_term = torch.linalg.vector_norm(mu1 - mu2) if norm else ((mu1 - mu2) ** 2).sum()
    if root == "product":
        tr = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    elif root == "none":
        tr = torch.trace(s1 @ s2)
    else:
        tr = torch.trace(torch.from_numpy(scipy.linalg.sqrtm(s1.numpy()).real @ scipy.linalg.sqrtm(s2.numpy()).real))
    return mean_term, torch.trace(s1) + torch.trace(s2) + sign * tr


FID_TERMS_WRONG = [
    (lambda *a: _terms_student(*a, norm=True), "squared distance"),
    (lambda *a: _terms_student(*a, sign=2), "the cross term is subtracted"),
    (lambda *a: _terms_student(*a, root="none"), "the square root is missing"),
    (lambda *a: _terms_student(*a, root="roots"), "unless the covariances commute"),
    (lambda *a: _terms_student(*a)[::-1], "swapped"),
    (lambda *a: sum(_terms_student(*a)), "expected a tuple of 2 values"),
]
FID_TERMS_RIGHT = [_terms_scipy, _terms_pytorch_fid, lambda *a: tuple(t.float() for t in _terms_student(*a)),
                   _terms_student]

# ================================================================================== 7.1 KID's unbiased estimator


def _mmd_student(k_xx, k_yy, k_xy, *, diagonal=False, within="pairs", cross="all", factor=2):
    m = k_xx.shape[0]
    off = ~torch.eye(m, dtype=torch.bool)
    if diagonal:
        within_sum = k_xx.sum() + k_yy.sum()
    else:
        within_sum = k_xx[off].sum() + k_yy[off].sum()
    within_term = within_sum / (m * (m - 1) if within == "pairs" else m**2)
    cross_term = k_xy.mean() if cross == "all" else k_xy[off].sum() / (m * (m - 1))
    return within_term - factor * cross_term


def _mmd_torch_fidelity_numpy(k_xx, k_yy, k_xy):
    from torch_fidelity.metric_kid import mmd2

    return mmd2(k_xx.detach().numpy(), k_xy.detach().numpy(), k_yy.detach().numpy())  # its order: XX, XY, YY


def _mmd_row_sums(k_xx, k_yy, k_xy):
    """torch-fidelity's route (row sums without the diagonal), in torch."""
    m = k_xx.shape[0]
    kt_xx = (k_xx.sum(dim=1) - torch.diagonal(k_xx)).sum()
    kt_yy = (k_yy.sum(dim=1) - torch.diagonal(k_yy)).sum()
    return (kt_xx + kt_yy) / (m * (m - 1)) - 2 * k_xy.sum(dim=0).sum() / (m * m)


def _mmd_upper_triangle(k_xx, k_yy, k_xy):
    m = k_xx.shape[0]
    return 2 * (torch.triu(k_xx, 1).sum() + torch.triu(k_yy, 1).sum()) / (m * (m - 1)) - 2 * k_xy.mean()


MMD_WRONG = [
    (lambda a, b, c: a.mean() + b.mean() - 2 * c.mean(), "that is the biased estimator"),
    (lambda a, b, c: _mmd_student(a, b, c, diagonal=True), "still include the diagonal terms"),
    (lambda a, b, c: _mmd_student(a, b, c, within="all"), "still divided by m^2"),
    (lambda a, b, c: _mmd_student(a, b, c, factor=1), "the cross term counts twice"),
    (lambda a, b, c: _mmd_student(a, b, c, cross="off_diagonal"), "'u-statistic' variant"),
    (lambda a, b, c: (a.sum() - a.trace()) / (len(a) * (len(a) - 1)) - 2 * c.mean(),
     "the generated set's own term is missing"),
    (lambda a, b, c: float(_mmd_student(a, b, c)), "your function returns a number, not a tensor"),
    (_mmd_torch_fidelity_numpy, "k_xx receives no gradient"),  # right values, in numpy
    (lambda a, b, c: a[~torch.eye(len(a), dtype=torch.bool)].mean() + b.mean() - 2 * c.mean(),
     "the generated set's within-set average: off"),
]
MMD_RIGHT = [
    _mmd_student,  # boolean mask of the off-diagonal entries
    _mmd_row_sums,
    _mmd_upper_triangle,  # symmetric kernels: the upper triangle, twice
    lambda a, b, c: _mmd_student(a.float(), b.float(), c.float()),  # float32
]

# ================================================================================== the tables

WRONG = {
    "check_reconstruction_loss": RECONSTRUCTION_WRONG,
    "check_conv_output_size": CONV_WRONG,
    "check_interpolate_codes": INTERPOLATE_WRONG,
    "check_push_forward": PUSH_WRONG,
    "check_coupling_log_density": COUPLING_WRONG,
    "check_reparameterize": REPARAM_WRONG,
    "check_gaussian_kl": KL_WRONG,
    "check_negative_elbo": ELBO_WRONG,
    "check_iwae_bound": IWAE_WRONG,
    "check_quantize": QUANTIZE_WRONG,
    "check_straight_through": STRAIGHT_WRONG,
    "check_vq_loss": VQ_WRONG,
    "check_perplexity": PERPLEXITY_WRONG,
    "check_psnr": PSNR_WRONG,
    "check_ssim_window": SSIM_WRONG,
    "check_frechet_distance": FID_WRONG,
    "check_inception_score": IS_WRONG,
    "check_resampling_matrix": RESIZE_WRONG,
    "check_kl_two_gaussians": KL_1D_WRONG,
    "check_elbo_gap": GAP_WRONG,
    "check_score_function_gradient": SCORE_WRONG,
    "check_reparam_variance": VARIANCE_WRONG,
    "check_collapse_prediction": PREDICTION_WRONG,
    "check_free_bits_kl": FREE_BITS_WRONG,
    "check_perplexity_answer": PERPLEXITY_ANSWER_WRONG,
    "check_psnr_answer": PSNR_ANSWER_WRONG,
    "check_lpips_from_features": LPIPS_WRONG,
    "check_fid_terms": FID_TERMS_WRONG,
    "check_mmd2_unbiased": MMD_WRONG,
}
RIGHT = {
    "check_reconstruction_loss": RECONSTRUCTION_RIGHT,
    "check_conv_output_size": CONV_RIGHT,
    "check_interpolate_codes": INTERPOLATE_RIGHT,
    "check_push_forward": PUSH_RIGHT,
    "check_coupling_log_density": COUPLING_RIGHT,
    "check_reparameterize": REPARAM_RIGHT,
    "check_gaussian_kl": KL_RIGHT,
    "check_negative_elbo": ELBO_RIGHT,
    "check_iwae_bound": IWAE_RIGHT,
    "check_quantize": QUANTIZE_RIGHT,
    "check_straight_through": STRAIGHT_RIGHT,
    "check_vq_loss": VQ_RIGHT,
    "check_perplexity": PERPLEXITY_RIGHT,
    "check_psnr": PSNR_RIGHT,
    "check_ssim_window": SSIM_RIGHT,
    "check_frechet_distance": FID_RIGHT,
    "check_inception_score": IS_RIGHT,
    "check_resampling_matrix": RESIZE_RIGHT,
    "check_kl_two_gaussians": KL_1D_RIGHT,
    "check_elbo_gap": GAP_RIGHT,
    "check_score_function_gradient": SCORE_RIGHT,
    "check_reparam_variance": VARIANCE_RIGHT,
    "check_collapse_prediction": PREDICTION_RIGHT,
    "check_free_bits_kl": FREE_BITS_RIGHT,
    "check_perplexity_answer": PERPLEXITY_ANSWER_RIGHT,
    "check_psnr_answer": PSNR_ANSWER_RIGHT,
    "check_lpips_from_features": LPIPS_RIGHT,
    "check_fid_terms": FID_TERMS_RIGHT,
    "check_mmd2_unbiased": MMD_RIGHT,
}


def _grade(name, fn, seed=0) -> Verdict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's log of 0, scipy's sqrtm: the verdict is what matters
        verdict = EXERCISES[name].grade(fn, seed=seed)
    assert isinstance(verdict, Verdict)
    return verdict


def test_every_exercise_is_covered():
    assert set(WRONG) == set(EXERCISES) == set(RIGHT)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_enough_answers_per_exercise(name):
    assert len(WRONG[name]) >= 4 and len(RIGHT[name]) >= 2


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_exercise_states_what_it_accepts(name):
    assert len(EXERCISES[name].accepts) > 20


@pytest.mark.parametrize("name, index", [(n, i) for n in sorted(WRONG) for i in range(len(WRONG[n]))])
def test_typical_wrong_answer_gets_its_hint(name, index):
    fn, hint = WRONG[name][index]
    verdict = _grade(name, fn)
    assert verdict.status == "wrong", verdict.message
    assert hint in verdict.message, verdict.message
    assert EXERCISES[name].reference_name in verdict.message  # the notebook goes on with the reference


@pytest.mark.parametrize("name, index", [(n, i) for n in sorted(RIGHT) for i in range(len(RIGHT[n]))])
def test_correct_answer_by_another_route_passes(name, index):
    for seed in (0, 1):
        verdict = _grade(name, RIGHT[name][index], seed)
        assert verdict.passed, verdict.message


# ------------------------------------------------------------------------------------------ junk


def _raises_value_error(*args):
    raise ValueError("bad input")


def _first_tensor(args):
    return next((a for a in args if isinstance(a, torch.Tensor)), torch.zeros(3))


JUNK = {
    "a string": lambda *a: "42",
    "None": lambda *a: None,
    "a ValueError": _raises_value_error,
    "a wrong shape": lambda *a: torch.zeros(3, 7),
    "nan": lambda *a: float("nan"),
    "a nan tensor": lambda *a: torch.full_like(_first_tensor(a).float(), float("nan")),
    "a complex tensor": lambda *a: torch.complex(_first_tensor(a).float(), torch.ones_like(_first_tensor(a).float())),
    "a complex number": lambda *a: 1 + 2j,
    "a list of strings": lambda *a: ["a", "b"],
    "a dict": lambda *a: {"value": 1.0},
    "a tuple of junk": lambda *a: (None, "x", object()),
    "an object array": lambda *a: np.array([object(), 1], dtype=object),
    "a bool": lambda *a: True,
    "an empty tensor": lambda *a: torch.zeros(0),
    "its input": lambda *a: a[0],
    "a generator": lambda *a: (i for i in range(3)),
    "an infinite value": lambda *a: float("inf"),
    "a tensor needing grad": lambda *a: torch.zeros((), requires_grad=True),
}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_no_checker_raises_on_junk(name, capsys):
    exercise = EXERCISES[name]
    for label, fn in JUNK.items():
        verdict = _grade(name, fn)
        assert verdict.status in {"wrong", "error", "not_done"}, (label, verdict.message)
        assert exercise.name in verdict.message
    assert _grade(name, "not a function").status == "wrong"
    assert exercise(_raises_value_error) is exercise.reference  # __call__ falls back, prints, does not raise
    # a function that raises: a function checker shows the exception; a number checker asks for a number
    assert ("not a function" if isinstance(exercise, NumericAnswer) else "ValueError") in capsys.readouterr().out


def test_error_verdict_names_the_exception():
    verdict = _grade("check_frechet_distance", _raises_value_error)
    assert verdict.status == "error" and "ValueError: bad input" in verdict.message


def test_no_checker_raises_on_any_answer_of_the_suite():
    """Every answer above, graded by every checker (most of them the wrong exercise): a verdict, never an exception."""
    answers = [fn for table in (WRONG, RIGHT) for entries in table.values() for fn in
               (e[0] if isinstance(e, tuple) else e for e in entries)]
    for name in EXERCISES:
        for fn in answers[::11]:  # a sample keeps the suite fast; each answer meets several checkers
            _grade(name, fn)


def test_a_crashing_mistake_replay_is_skipped_not_raised():
    from course_lib.exercises import Exercise, Mistake

    def broken(x):
        raise RuntimeError("a broken mistake")

    ex = Exercise("t", lambda x: 2 * x, "ref", lambda g: [(torch.randn(3, generator=g),)],
                  mistakes=[Mistake("never", broken), Mistake("three times", lambda x: 3 * x)])
    assert "three times" in ex.grade(lambda x: 3 * x).message
    assert ex.grade(lambda x: 4 * x).status == "wrong"


def test_a_crashing_checker_becomes_a_wrong_verdict():
    from course_lib.exercises import Exercise

    def bad_cases(g):
        raise RuntimeError("no cases")

    verdict = Exercise("t", lambda x: x, "ref", bad_cases).grade(lambda x: x)
    assert verdict.status == "wrong" and "could not grade" in verdict.message


def test_low_precision_answers_get_a_looser_tolerance():
    from course_lib.exercises import Exercise

    ex = Exercise("t", lambda x: 3 * x, "ref", lambda g: [(torch.randn(50, dtype=torch.float64, generator=g),)],
                  rtol=1e-7, atol=1e-9)
    assert ex.grade(lambda x: (3 * x).float()).passed
    assert ex.grade(lambda x: (3 * x).bfloat16()).passed
    assert not ex.grade(lambda x: (3.5 * x).bfloat16()).passed
    assert not ex.grade(lambda x: (3.01 * x).float()).passed
    assert not ex.grade(lambda x: 3 * x + 1e-6).passed  # float64 answers keep the exercise's tolerance


def test_a_prediction_is_graded_against_the_sweep_it_observes():
    checker = CollapsePrediction("t", accepts="a swept beta")
    assert checker.observe({1.0: 16, 2.0: 12, 4.0: 8, 8.0: 2}, 16) == 4.0
    assert checker.grade(4.0).passed and not checker.grade(8.0).passed
    assert "at β = 2 the sweep measured 12 active units" in checker.grade(2).message
    assert "the sweep did collapse" in checker.grade(math.inf).message
    assert checker.observe({1.0: 16, 2.0: 12}, 16) == math.inf  # nothing collapsed: "none" is the answer
    assert checker.grade(math.inf).passed and "not collapsed yet" in checker.grade(2.0).message
    assert checker(1.0) == math.inf  # wrong: the notebook goes on with the measured value


def test_a_number_answer_within_its_tolerance_passes():
    psnr_answer = EXERCISES["check_psnr_answer"]
    exact = psnr_answer.reference
    assert psnr_answer.grade(exact + 0.009).passed and not psnr_answer.grade(exact + 0.02).passed
    assert psnr_answer.grade(None).status == "not_done" and psnr_answer(None) == exact
    assert psnr_answer(round(exact, 2)) == round(exact, 2)  # a right answer is the one the notebook uses
    assert "expected numbers, got booleans" in psnr_answer.grade(True).message
