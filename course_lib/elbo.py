"""A latent-variable model where everything is exact: the linear-Gaussian model (probabilistic PCA).

Book equations (``book/elbo.md``):

- (lg-model) z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D);
- (lg-marginal) p(x) = N(x; b, W W^T + s^2 I_D), so log p(x) is known in closed form;
- (lg-posterior) p(z|x) = N(S W^T (x - b) / s^2, S) with S = (I_d + W^T W / s^2)^{-1};
- (lg-elbo) the ELBO of any Gaussian q(z) = N(m, C), in closed form;
- (elbo-identity) log p(x) = ELBO(q) + KL(q || p(z|x)), which this module lets one check numerically.

Everything works in float64 on the CPU (inputs are moved there first: MPS has no float64) and
is written with Cholesky factors, not with ``torch.distributions``, so that the tests can use
the latter as an independent reference.
"""

from __future__ import annotations

import math

import torch

from course_lib.vae import iwae_bound
from course_lib.validation import LOG_2PI, check_positive, check_positive_int


def _cpu64(x) -> torch.Tensor:
    """``x`` (a tensor, array or nested list) as a float64 CPU tensor; a tensor stays differentiable."""
    if isinstance(x, torch.Tensor):
        return x.to("cpu").to(torch.float64)
    return torch.as_tensor(x, dtype=torch.float64)


def gaussian_kl_full(m1: torch.Tensor, c1: torch.Tensor, m2: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1, C1) || N(m2, C2)) for full covariances, book equation (kl-gauss-full).

    KL = 1/2 [ tr(C2^{-1} C1) + (m2 - m1)^T C2^{-1} (m2 - m1) - d + log det C2 - log det C1 ].

    Args:
        m1, m2: means, shape (N, d) (or broadcastable).
        c1, c2: covariances, shape (d, d) or (N, d, d), symmetric positive definite.

    Returns:
        Tensor of shape (N,), >= 0.

    Raises:
        ValueError: if the last dimensions disagree.

    Example:
        >>> gaussian_kl_full(torch.zeros(1, 1), torch.eye(1), torch.ones(1, 1), torch.eye(1))  # 1/2 * 1^2
        tensor([0.5000])
    """
    d = m1.shape[-1]
    for name, c in (("c1", c1), ("c2", c2)):
        if c.shape[-2:] != (d, d):
            raise ValueError(f"{name} must have shape (..., {d}, {d}), got {tuple(c.shape)}")
    l1, l2 = torch.linalg.cholesky(c1), torch.linalg.cholesky(c2)
    c2_inv = torch.cholesky_inverse(l2)
    diff = m2 - m1
    trace = (c2_inv * c1).sum((-2, -1))  # tr(C2^{-1} C1), both symmetric
    maha = torch.einsum("...i,...ij,...j->...", diff, c2_inv, diff)
    return 0.5 * (trace + maha - d + _logdet_chol(l2) - _logdet_chol(l1))


class LinearGaussianModel:
    """Book equation (lg-model): z ~ N(0, I_d), x | z ~ N(W z + b, noise_var * I_D).

    Args:
        W: loading matrix, shape (D, d).
        b: offset, shape (D,).
        noise_var: s^2 > 0.

    Raises:
        ValueError: for a non-positive ``noise_var`` or mismatched shapes.

    Example:
        >>> model = LinearGaussianModel(torch.ones(2, 1), torch.zeros(2), 0.5)
        >>> x = torch.tensor([[1.0, 1.0]])
        >>> m, S = model.posterior(x)
        >>> bool(torch.allclose(model.elbo(x, m, S), model.log_marginal(x)))  # tight at the posterior
        True
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, noise_var: float):
        W, b = _cpu64(W), _cpu64(b)
        if W.ndim != 2:
            raise ValueError(f"W must have shape (D, d), got {tuple(W.shape)}")
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},), got {tuple(b.shape)}")
        check_positive(noise_var, "noise_var")
        self.W, self.b, self.noise_var = W, b, float(noise_var)
        self.D, self.d = W.shape

    @classmethod
    def random(cls, D: int = 5, d: int = 2, noise_var: float = 0.5, seed: int = 0) -> LinearGaussianModel:
        """A model with W and b drawn from N(0, 1), reproducible from ``seed``.

        Example:
            >>> LinearGaussianModel.random(D=4, d=2).W.shape
            torch.Size([4, 2])
        """
        check_positive_int(D, "D")
        check_positive_int(d, "d")
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(D, d, generator=g, dtype=torch.float64),
                   torch.randn(D, generator=g, dtype=torch.float64), noise_var)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (x, z) from the model: x of shape (n, D), z of shape (n, d) (float64, CPU)."""
        check_positive_int(n, "n")
        z = torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.D, generator=generator, dtype=torch.float64)
        return z @ self.W.T + self.b + math.sqrt(self.noise_var) * noise, z

    def _x(self, x: torch.Tensor) -> torch.Tensor:
        x = _cpu64(x)
        if x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (N, {self.D}), got {tuple(x.shape)}")
        return x

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Book equation (lg-marginal): log p(x) = log N(x; b, W W^T + s^2 I), shape (N,).

        Raises:
            ValueError: if ``x`` is not (N, D).

        Example:
            >>> model = LinearGaussianModel(torch.zeros(1, 1), torch.zeros(1), 1.0)  # x ~ N(0, 1)
            >>> model.log_marginal(torch.zeros(1, 1))  # -log(2 pi) / 2
            tensor([-0.9189], dtype=torch.float64)
        """
        x = self._x(x)
        chol = torch.linalg.cholesky(self.W @ self.W.T + self.noise_var * torch.eye(self.D, dtype=torch.float64))
        r = torch.linalg.solve_triangular(chol, (x - self.b).T, upper=False)  # (D, N)
        return -0.5 * (self.D * LOG_2PI + _logdet_chol(chol) + r.pow(2).sum(0))

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log N(x; W z + b, s^2 I) + log N(z; 0, I), for z of shape (..., N, d): shape (..., N)."""
        x = self._x(x)
        resid = x - (z @ self.W.T + self.b)
        log_px_z = -0.5 * (self.D * (LOG_2PI + math.log(self.noise_var)) + resid.pow(2).sum(-1) / self.noise_var)
        log_pz = -0.5 * (self.d * LOG_2PI + z.pow(2).sum(-1))
        return log_px_z + log_pz

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Book equation (lg-posterior): p(z|x) = N(S W^T (x - b) / s^2, S), S = (I + W^T W / s^2)^{-1}.

        Returns:
            ``(mean, cov)``: shapes (N, d) and (d, d) (the covariance does not depend on x).
        """
        x = self._x(x)
        precision = torch.eye(self.d, dtype=torch.float64) + self.W.T @ self.W / self.noise_var
        cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        mean = (x - self.b) @ self.W @ cov / self.noise_var
        return mean, cov

    def elbo(self, x: torch.Tensor, q_mean: torch.Tensor, q_cov: torch.Tensor) -> torch.Tensor:
        """Book equation (lg-elbo): the analytic ELBO E_q[log p(x, z)] + H[q] for q = N(q_mean, q_cov).

        E_q[log p(x|z)] = -D/2 log(2 pi s^2) - (||x - b - W m||^2 + tr(W C W^T)) / (2 s^2),
        E_q[log p(z)] = -d/2 log 2 pi - (||m||^2 + tr C) / 2, H[q] = d/2 log(2 pi e) + 1/2 log det C.

        Args:
            x: (N, D). q_mean: (N, d). q_cov: (d, d) or (N, d, d), positive definite.

        Returns:
            Tensor of shape (N,).
        """
        x = self._x(x)
        m, c = _q(q_mean, q_cov, self.d)
        trace_c = torch.diagonal(c, dim1=-2, dim2=-1).sum(-1)
        trace_wcw = torch.diagonal(self.W @ c @ self.W.T, dim1=-2, dim2=-1).sum(-1)
        resid = (x - self.b - m @ self.W.T).pow(2).sum(-1)
        e_log_px_z = -0.5 * self.D * (LOG_2PI + math.log(self.noise_var)) - (resid + trace_wcw) / (2 * self.noise_var)
        e_log_pz = -0.5 * self.d * LOG_2PI - 0.5 * (m.pow(2).sum(-1) + trace_c)
        entropy = 0.5 * self.d * (LOG_2PI + 1) + 0.5 * _logdet_chol(torch.linalg.cholesky(c))
        return e_log_px_z + e_log_pz + entropy

    def kl_to_posterior(self, x: torch.Tensor, q_mean: torch.Tensor, q_cov: torch.Tensor) -> torch.Tensor:
        """KL(q || p(z|x)) for q = N(q_mean, q_cov): the gap log p(x) - ELBO of (elbo-identity). Shape (N,)."""
        m, c = _q(q_mean, q_cov, self.d)
        post_mean, post_cov = self.posterior(x)
        return gaussian_kl_full(m, c, post_mean, post_cov)

    def log_weights(self, x: torch.Tensor, q_mean: torch.Tensor, q_cov: torch.Tensor, k: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """log w = log p(x, z) - log q(z) for k samples z ~ q (reparameterized): shape (k, N).

        Their mean is the Monte Carlo ELBO (elbo-mc); ``course_lib.vae.iwae_bound`` of them is the IWAE bound.
        """
        check_positive_int(k, "k")
        x = self._x(x)
        m, c = _q(q_mean, q_cov, self.d)
        chol = torch.linalg.cholesky(c)
        eps = torch.randn(k, len(x), self.d, generator=generator, dtype=torch.float64)
        z = m + (torch.broadcast_to(chol, (len(x), self.d, self.d)) @ eps.unsqueeze(-1)).squeeze(-1)
        log_q = -0.5 * (self.d * LOG_2PI + _logdet_chol(chol) + eps.pow(2).sum(-1))
        return self.log_joint(x, z) - log_q

    def mc_elbo(self, x, q_mean, q_cov, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Book equation (elbo-mc): the Monte Carlo ELBO (1/k) sum_i [log p(x, z_i) - log q(z_i)], shape (N,).

        Example:
            >>> model = LinearGaussianModel.random(D=3, d=1); x, _ = model.sample(2)
            >>> m, S = model.posterior(x)  # at the posterior every sample gives log p(x) exactly
            >>> bool(torch.allclose(model.mc_elbo(x, m, S, k=5), model.log_marginal(x)))
            True
        """
        return self.log_weights(x, q_mean, q_cov, k, generator).mean(0)

    def iwae(self, x, q_mean, q_cov, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Book equation (iwae-bound) with k samples from q, shape (N,)."""
        return iwae_bound(self.log_weights(x, q_mean, q_cov, k, generator), k=k)


def _q(q_mean: torch.Tensor, q_cov: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    m, c = _cpu64(q_mean), _cpu64(q_cov)
    if m.ndim != 2 or m.shape[1] != d:
        raise ValueError(f"q_mean must have shape (N, {d}), got {tuple(m.shape)}")
    if c.shape[-2:] != (d, d) or c.ndim not in (2, 3):
        raise ValueError(f"q_cov must have shape ({d}, {d}) or (N, {d}, {d}), got {tuple(c.shape)}")
    return m, c


def _logdet_chol(chol: torch.Tensor) -> torch.Tensor:
    return 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
