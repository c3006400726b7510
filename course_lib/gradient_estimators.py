"""Two unbiased estimators of the gradient of an expectation, book page ``reparameterization.md``.

We want g = grad_theta E_{z ~ q_theta}[f(z)] for q_theta = N(mu, diag sigma^2), theta = (mu, log sigma):

- (score-function) REINFORCE: g = E_q[(f(z) - b) grad_theta log q_theta(z)], any constant baseline b;
  for the Gaussian, grad_mu log q = eps / sigma and grad_{log sigma} log q = eps^2 - 1, z = mu + sigma eps.
- (reparam-grad) reparameterization: g = E_eps[grad_theta f(mu + sigma eps)], i.e.
  grad_mu = f'(z) and grad_{log sigma} = f'(z) * sigma * eps.

On the test objective f(z) = ||z - c||^2 (quadratic-objective) the exact gradient is known:
E_q[f] = ||mu - c||^2 + sum_j sigma_j^2, so grad_mu = 2 (mu - c) and grad_{log sigma} = 2 sigma^2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib.validation import check_choice, check_positive_int

METHODS = ("reparam", "score", "score_baseline")


def quadratic_objective(c: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Book equation (quadratic-objective): f(z) = ||z - c||^2, for z of shape (S, D) -> (S,).

    Example:
        >>> quadratic_objective(torch.tensor([1.0, 0.0]))(torch.tensor([[1.0, 2.0]]))
        tensor([4.])
    """
    if c.ndim != 1:
        raise ValueError(f"c must be 1-D, got shape {tuple(c.shape)}")
    return lambda z: (z - c).pow(2).sum(-1)


def quadratic_objective_gradient(mu: torch.Tensor, log_sigma: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The exact gradient of E_{N(mu, sigma^2)}[||z - c||^2]: concat(2 (mu - c), 2 sigma^2), shape (2D,).

    Example:
        >>> quadratic_objective_gradient(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.0]))
        tensor([2., 2.])
    """
    _check(mu, log_sigma)
    return torch.cat([2 * (mu - c), 2 * torch.exp(2 * log_sigma)])


def gradient_samples(method: str, f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor,
                     log_sigma: torch.Tensor, n: int, generator: torch.Generator | None = None,
                     baseline: float | None = None) -> torch.Tensor:
    """Single-sample gradient estimates of grad_(mu, log sigma) E_q[f(z)], one row per draw of eps.

    Their mean over n rows is the n-sample estimator; both methods are unbiased, so the mean
    tends to the true gradient, and the variance of the n-sample estimator is the per-row variance / n.

    Args:
        method: ``"reparam"`` (reparam-grad), ``"score"`` (score-function, b = 0) or
            ``"score_baseline"`` (b = ``baseline``, default f(mu)).
        f: maps z of shape (S, D) to (S,); differentiable for ``"reparam"``.
        mu, log_sigma: parameters of q, shape (D,).
        n: number of draws.
        generator: for reproducible draws.

    Returns:
        Tensor of shape (n, 2D): columns d/dmu then d/dlog sigma.

    Raises:
        ValueError: for an unknown ``method``, a non-positive ``n`` or mismatched shapes.

    Example:
        >>> c = torch.zeros(1); f = quadratic_objective(c); mu, ls = torch.ones(1), torch.zeros(1)
        >>> g = torch.Generator().manual_seed(0)
        >>> est = gradient_samples("reparam", f, mu, ls, 100_000, g).mean(0)
        >>> torch.allclose(est, quadratic_objective_gradient(mu, ls, c), atol=0.05)
        True
    """
    check_choice(method, "method", METHODS)
    check_positive_int(n, "n")
    _check(mu, log_sigma)
    mu, log_sigma = mu.detach(), log_sigma.detach()
    sigma = log_sigma.exp()
    device = generator.device if generator is not None else "cpu"  # the draw follows the generator
    eps = torch.randn(n, len(mu), generator=generator, dtype=mu.dtype, device=device).to(mu.device)
    z = mu + sigma * eps
    if method == "reparam":
        z = z.requires_grad_(True)
        (df_dz,) = torch.autograd.grad(f(z).sum(), z)  # row s: f'(z_s), since f acts on each row alone
        return torch.cat([df_dz, df_dz * sigma * eps], dim=1)
    with torch.no_grad():
        fz = f(z)
        if method == "score_baseline":
            fz = fz - (f(mu.unsqueeze(0))[0] if baseline is None else baseline)
        return fz.unsqueeze(1) * torch.cat([eps / sigma, eps.pow(2) - 1], dim=1)


def estimator_variance(method: str, f, mu: torch.Tensor, log_sigma: torch.Tensor, n_samples: int,
                       repeats: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance over ``repeats`` runs of the ``n_samples``-sample estimator, per coordinate.

    Returns:
        ``(mean, variance)``, each of shape (2D,).

    Example:
        >>> f = quadratic_objective(torch.zeros(1)); g = torch.Generator().manual_seed(0)
        >>> _, var_r = estimator_variance("reparam", f, torch.ones(1), torch.zeros(1), 10, 200, g)
        >>> _, var_s = estimator_variance("score", f, torch.ones(1), torch.zeros(1), 10, 200, g)
        >>> bool((var_r < var_s).all())
        True
    """
    check_positive_int(repeats, "repeats", minimum=2)
    check_positive_int(n_samples, "n_samples")
    rows = gradient_samples(method, f, mu, log_sigma, n_samples * repeats, generator)
    estimates = rows.view(repeats, n_samples, -1).mean(1)
    return estimates.mean(0), estimates.var(0)


def _check(mu: torch.Tensor, log_sigma: torch.Tensor) -> None:
    if mu.ndim != 1 or mu.shape != log_sigma.shape:
        raise ValueError(
            f"mu and log_sigma must be 1-D of equal shape, got {tuple(mu.shape)} and {tuple(log_sigma.shape)}")
