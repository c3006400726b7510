"""The decoder likelihoods log p(x|z) of the VAE chapters, and the binarization the Bernoulli needs.

Book equations (``book/vae.md`` and ``book/vae_failure_modes.md``):

- (vae-bernoulli) log p(x|z) = sum_i x_i log p_i + (1 - x_i) log(1 - p_i), p = sigmoid(logits):
  a probability of *binary* pixels (hence :func:`binarize`);
- (vae-cb) the continuous Bernoulli (Loaiza-Ganem and Cunningham 2019), a proper density of grey
  levels in [0, 1]: the Bernoulli term plus a log-normaliser;
- (vae-gauss) log N(x; mean, sigma^2 I), whose fixed-sigma form is the autoencoder's squared error.

Every log-likelihood is in nats, summed over pixels: one value per image, shape (N,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.validation import LOG_2PI, check_range, check_same_shape

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Book equation (vae-bernoulli): log p(x|z) = sum_i x_i log p_i + (1 - x_i) log(1 - p_i), p = sigmoid(logits).

    A proper log-probability only for binary x (binarized images): it is minus the binary
    cross-entropy, computed from logits for numerical stability.

    Args:
        logits: decoder outputs, shape (N, ...).
        x: targets in {0, 1}, same shape.

    Returns:
        Tensor of shape (N,): log-likelihood per image in nats (<= 0).

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> bernoulli_log_likelihood(torch.zeros(1, 3), torch.tensor([[0.0, 1.0, 1.0]]))  # 3 log(1/2)
        tensor([-2.0794])
    """
    check_same_shape(logits, x, ("logits", "x"))
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """Book equation (vae-cb): log C(lambda) of the continuous Bernoulli (Loaiza-Ganem and Cunningham 2019).

    The density on [0, 1] is C(lambda) lambda^x (1 - lambda)^(1 - x) with
    C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda), C(1/2) = 2. In terms of the logit
    eta = log(lambda / (1 - lambda)) this is C = eta / tanh(eta / 2); near eta = 0 a Taylor
    expansion log 2 + u^2/3 - 7 u^4/90 (u = eta/2) avoids 0/0.

    Args:
        logits: eta, any shape.

    Returns:
        log C, same shape, >= log 2 (the normaliser grows as lambda moves away from 1/2).

    Example:
        >>> continuous_bernoulli_log_norm(torch.tensor([0.0, 2.0]))  # log 2, log(2 / tanh 1)
        tensor([0.6931, 0.9655])
    """
    small = logits.abs() < 0.1
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = torch.log(safe.abs()) - torch.log(torch.tanh(safe / 2).abs())
    u2 = (logits / 2).pow(2)
    taylor = math.log(2.0) + u2 / 3 - 7 * u2.pow(2) / 90
    return torch.where(small, taylor, exact)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """The mean of the continuous Bernoulli with logit eta: 1 / (1 - exp(-eta)) - 1 / eta (1/2 at eta = 0).

    This, not sigmoid(eta), is the image a continuous-Bernoulli decoder expects.

    Example:
        >>> continuous_bernoulli_mean(torch.tensor([0.0, 100.0]))
        tensor([0.5000, 0.9900])
    """
    small = logits.abs() < 0.1
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = -1.0 / torch.expm1(-safe) - 1.0 / safe
    taylor = 0.5 + logits / 12 - logits.pow(3) / 720
    return torch.where(small, taylor, exact)


def continuous_bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Book equation (vae-cb): log p(x|z) of the continuous Bernoulli, a proper density for x in [0, 1].

    It equals minus the binary cross-entropy plus the log-normaliser, summed over pixels.

    Args:
        logits: decoder outputs, shape (N, ...).
        x: grey levels in [0, 1], same shape.

    Returns:
        Tensor of shape (N,), log-density per image in nats (it can be positive: a density, not a probability).

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> continuous_bernoulli_log_likelihood(torch.zeros(1, 2), torch.rand(1, 2))  # the uniform density: 0
        tensor([0.])
    """
    check_same_shape(logits, x, ("logits", "x"))
    return bernoulli_log_likelihood(logits, x) + continuous_bernoulli_log_norm(logits).flatten(1).sum(dim=1)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, logvar: torch.Tensor | float) -> torch.Tensor:
    """Book equation (vae-gauss): log N(x; mean, s^2 I) = -1/2 sum_i [(x_i - m_i)^2 / s^2 + log s^2 + log 2 pi].

    With a fixed sigma this is the squared error scaled by 1 / (2 sigma^2) plus a constant: the
    autoencoder's loss (ae-loss) is a Gaussian likelihood with sigma^2 = 1/2.

    Args:
        mean: decoder means, shape (N, ...).
        x: targets, same shape.
        logvar: log sigma^2, a float or a tensor broadcastable to ``x`` (a learned scalar, or per pixel).

    Returns:
        Tensor of shape (N,): log-density per image in nats.

    Raises:
        ValueError: if the shapes of ``mean`` and ``x`` differ.

    Example:
        >>> gaussian_log_likelihood(torch.zeros(1, 2), torch.zeros(1, 2), 0.0)  # -log(2 pi)
        tensor([-1.8379])
    """
    check_same_shape(mean, x, ("mean", "x"))
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return (-0.5 * ((x - mean).pow(2) / logvar.exp() + logvar + LOG_2PI)).flatten(1).sum(dim=1)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binarization: each pixel becomes 1 with probability equal to its grey level (x ~ Bernoulli(x)).

    Called on every batch (a new draw each time) this is *dynamic* binarization, for training;
    called once with a seeded generator it gives the fixed binarized test set.

    Args:
        x: grey levels in [0, 1] (float round-off beyond the ends is clipped before drawing).
        generator: a ``torch.Generator`` for a reproducible draw; the draw happens on the
            generator's device and the result is moved to ``x``'s, so a CPU generator gives the
            same images whatever the device of ``x``.

    Returns:
        Tensor of 0s and 1s, same shape, dtype and device as ``x``.

    Raises:
        ValueError: if ``x`` has values outside [0, 1].

    Example:
        >>> binarize(torch.tensor([0.0, 1.0, 1.0]))
        tensor([0., 1., 1.])
    """
    if x.numel():
        check_range(x, "x", 0.0, 1.0, "; binarize takes grey levels (probabilities)")
    p = x.clamp(0.0, 1.0)  # only round-off is clipped: the check above rejects anything larger
    if generator is None:
        return torch.bernoulli(p)
    return torch.bernoulli(p.to(generator.device), generator=generator).to(x.device)
