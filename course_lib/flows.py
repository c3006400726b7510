"""Normalizing flows: affine coupling layers and RealNVP, trained by exact maximum likelihood.

The density model of notebook 02_generative_viewpoint: a RealNVP-style flow (Dinh et al. 2017)
made of affine coupling layers, book equations (gen-coupling) and (gen-coupling-logdet), whose
exact log-likelihood comes from the change of variables, book equation (gen-change-of-variables),
and which is trained by maximum likelihood, book equation (gen-mle), with the course's one
training loop ``course_lib.training.train``.

Conventions: points are rows of an (N, D) tensor; log-densities are in nats, shape (N,).
The flow's ``forward`` is the *normalizing* direction x -> z (data to noise), as in RealNVP;
its ``inverse`` z -> x is the generator g = f^{-1}, a push-forward of N(0, I)
(``course_lib.toy_data.push_forward``). ``mlp``, the conditioners' network, is also the GAN's
(``course_lib.gan`` imports it from here; this module imports nothing from the GAN).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from course_lib import training
from course_lib.toy_data import push_forward, standard_normal_log_prob
from course_lib.validation import check_points, check_positive, check_positive_int

Conditioner = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------------------------
# One affine coupling layer, as functions
# ---------------------------------------------------------------------------------------

def affine_coupling_forward(
    x: torch.Tensor, mask: torch.Tensor, conditioner: Conditioner,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine coupling layer, book equations (gen-coupling) and (gen-coupling-logdet).

    With the binary ``mask`` m (1: the coordinate passes through unchanged, 0: it is transformed)
    and ``(s, t) = conditioner(m * x)``:

        z = m * x + (1 - m) * (x * exp(s) + t),
        log |det dz/dx| = sum_j (1 - m_j) s_j.

    The conditioner sees only the unchanged coordinates m * x, so the Jacobian is triangular
    (after reordering) with diagonal 1 where m = 1 and exp(s_j) where m = 0.

    Args:
        x: points, shape (N, D).
        mask: binary tensor of shape (D,), with at least one 0 and one 1.
        conditioner: ``conditioner(m * x) -> (log_scale s, shift t)``, each of shape (N, D);
            only the entries where m = 0 are used.

    Returns:
        ``(z, log_det)``: z of shape (N, D) and log |det dz/dx| of shape (N,).

    Raises:
        ValueError: if ``x`` is not (N, D), the mask is not a binary (D,) tensor, or the
            conditioner's outputs do not have shape (N, D).

    Example:
        >>> m = torch.tensor([1.0, 0.0])
        >>> cond = lambda xm: (torch.full_like(xm, 0.5), torch.ones_like(xm))
        >>> z, log_det = affine_coupling_forward(torch.tensor([[2.0, 3.0]]), m, cond)
        >>> z, log_det
        (tensor([[2.0000, 5.9462]]), tensor([0.5000]))
    """
    check_points(x, "x")
    _check_mask(mask, x.shape[1])
    return _coupling_forward(x, mask.to(device=x.device, dtype=x.dtype), _checked(conditioner, x.shape))


def affine_coupling_inverse(
    z: torch.Tensor, mask: torch.Tensor, conditioner: Conditioner,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of ``affine_coupling_forward``: x = m * z + (1 - m) * (z - t) * exp(-s).

    The unchanged coordinates give m * x = m * z, so (s, t) = conditioner(m * z) are the same
    as in the forward pass: inverting costs one pass, no equation solving.

    Returns:
        ``(x, log_det)``: x of shape (N, D) and log |det dx/dz| = -sum_j (1 - m_j) s_j, shape (N,).

    Example:
        >>> m = torch.tensor([0.0, 1.0])
        >>> cond = lambda xm: (0.3 * xm.flip(1), xm.flip(1) ** 2)
        >>> x = torch.randn(4, 2)
        >>> z, _ = affine_coupling_forward(x, m, cond)
        >>> torch.allclose(affine_coupling_inverse(z, m, cond)[0], x, atol=1e-6)
        True
    """
    check_points(z, "z")
    _check_mask(mask, z.shape[1])
    return _coupling_inverse(z, mask.to(device=z.device, dtype=z.dtype), _checked(conditioner, z.shape))


def _coupling_forward(x, mask, conditioner):
    # (gen-coupling) and (gen-coupling-logdet), without the argument checks (AffineCoupling's hot path).
    s, t = conditioner(mask * x)
    free = 1 - mask
    return mask * x + free * (x * torch.exp(s) + t), (free * s).sum(dim=1)


def _coupling_inverse(z, mask, conditioner):
    s, t = conditioner(mask * z)
    free = 1 - mask
    return mask * z + free * (z - t) * torch.exp(-s), -(free * s).sum(dim=1)


def coupling_log_density(
    x: torch.Tensor, mask: torch.Tensor, conditioner: Conditioner,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact log-density of a one-layer flow, book equation (gen-change-of-variables).

    The model is x = f^{-1}(z), z ~ N(0, I), with f one affine coupling layer. By the change
    of variables,

        log p(x) = log N(f(x); 0, I) + log |det df/dx|
                 = -||z||^2 / 2 - (D/2) log(2 pi) + sum_j (1 - m_j) s_j.

    Args:
        x, mask, conditioner: as in ``affine_coupling_forward``.

    Returns:
        ``(log_px, log_det)``, each of shape (N,), in nats.

    Example:
        >>> m = torch.tensor([1.0, 0.0])
        >>> identity = lambda xm: (torch.zeros_like(xm), torch.zeros_like(xm))
        >>> log_px, log_det = coupling_log_density(torch.zeros(1, 2), m, identity)
        >>> round(float(log_px), 4), float(log_det)  # N(0; 0, I_2) = 1 / (2 pi)
        (-1.8379, 0.0)
    """
    z, log_det = affine_coupling_forward(x, mask, conditioner)
    return standard_normal_log_prob(z) + log_det, log_det


# ---------------------------------------------------------------------------------------
# Networks: the conditioner's MLP, a coupling layer, the flow
# ---------------------------------------------------------------------------------------


def mlp(
    in_features: int, out_features: int, hidden: int = 64, depth: int = 2,
    activation: Callable[[], nn.Module] = nn.SiLU,
) -> nn.Sequential:
    """A fully connected network: ``depth`` hidden layers of width ``hidden``, each followed by ``activation()``.

    Args:
        in_features, out_features: input and output widths, positive ints.
        hidden: width of each hidden layer, a positive int.
        depth: number of hidden layers, a positive int.
        activation: builds the non-linearity after each hidden layer (a new module each time).

    Returns:
        An ``nn.Sequential`` of ``depth + 1`` linear layers, mapping (N, in_features) to (N, out_features).

    Raises:
        ValueError: if a width or ``depth`` is not a positive int.

    Example:
        >>> mlp(2, 4, hidden=8, depth=2)(torch.zeros(3, 2)).shape
        torch.Size([3, 4])
    """
    for name, value in (("in_features", in_features), ("out_features", out_features), ("hidden", hidden),
                        ("depth", depth)):
        check_positive_int(value, name)
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """An affine coupling layer with an MLP conditioner, book equation (gen-coupling).

    The conditioner's log-scale is softly bounded, s = c * tanh(raw / c) with c = ``max_log_scale``,
    so that one step cannot blow the density up; its last layer starts at zero, so a new layer
    is the identity map.

    Args:
        mask: binary tensor of shape (D,): 1 for the coordinates that pass through unchanged.
        hidden: width of the conditioner's hidden layers.
        max_log_scale: bound c on |s|, > 0.

    Raises:
        ValueError: if ``mask`` is not a binary 1-D tensor with at least one 0 and one 1, or
            ``max_log_scale`` is not positive.

    Example:
        >>> layer = AffineCoupling(torch.tensor([1.0, 0.0]))
        >>> x = torch.randn(3, 2)
        >>> z, log_det = layer(x)
        >>> torch.allclose(z, x), log_det.tolist()  # the identity at initialisation
        (True, [0.0, 0.0, 0.0])
    """

    def __init__(self, mask: torch.Tensor, hidden: int = 64, max_log_scale: float = 2.0):
        super().__init__()
        if not isinstance(mask, torch.Tensor) or mask.ndim != 1:
            raise ValueError(f"mask must be a 1-D tensor, got {mask!r}")
        _check_mask(mask, len(mask))
        check_positive(max_log_scale, "max_log_scale")
        self.register_buffer("mask", mask.float())
        self.max_log_scale = float(max_log_scale)
        dim = len(mask)
        self.net = mlp(dim, 2 * dim, hidden)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def conditioner(self, x_masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) masked input -> (log_scale, shift), each (N, D)."""
        raw_s, t = self.net(x_masked).chunk(2, dim=1)
        c = self.max_log_scale
        return c * torch.tanh(raw_s / c), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> (z, log |det dz/dx|), shapes (N, D) and (N,)."""
        return _coupling_forward(x, self.mask, self.conditioner)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (N, D) -> (x, log |det dx/dz|), shapes (N, D) and (N,)."""
        return _coupling_inverse(z, self.mask, self.conditioner)


class RealNVP(nn.Module):
    """A normalizing flow of affine coupling layers (Dinh et al. 2017), book equation (gen-flow).

    f = f_L o ... o f_1 maps data x to noise z; consecutive layers have complementary masks
    (the coordinates of even index pass through layer 1, those of odd index layer 2, ...),
    so every coordinate is transformed. Its exact log-likelihood is book equation
    (gen-flow-loglik): log p(x) = log N(f(x); 0, I) + sum_l log |det df_l/dh_{l-1}|.

    Args:
        dim: data dimension D >= 2.
        n_layers: number of coupling layers, a positive int (an even number treats all coordinates alike).
        hidden: width of each conditioner's hidden layers.
        max_log_scale: bound on each layer's |log-scale|.

    Raises:
        ValueError: if ``dim`` is not an int >= 2, ``n_layers`` is not a positive int, or
            ``hidden`` or ``max_log_scale`` is out of range; ``forward``, ``log_prob`` and ``inverse``
            if their input is not (N, dim).

    Example:
        >>> flow = RealNVP(dim=2, n_layers=4)
        >>> x = torch.randn(5, 2)
        >>> flow.log_prob(x).shape, flow.sample(3, seed=0).shape
        (torch.Size([5]), torch.Size([3, 2]))
    """

    def __init__(self, dim: int = 2, n_layers: int = 8, hidden: int = 64, max_log_scale: float = 2.0):
        super().__init__()
        check_positive_int(dim, "dim", minimum=2)  # a coupling layer splits the coordinates in two groups
        check_positive_int(n_layers, "n_layers")
        self.dim = dim
        parity = torch.arange(dim) % 2
        masks = [(parity == (layer % 2)).float() for layer in range(n_layers)]
        self.layers = nn.ModuleList(AffineCoupling(m, hidden, max_log_scale) for m in masks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalizing direction: x (N, D) -> (z = f(x), log |det df/dx|), shapes (N, D) and (N,)."""
        check_points(x, "x", dim=self.dim)
        log_det = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Generative direction: z (N, D) -> x = f^{-1}(z), shape (N, D)."""
        check_points(z, "z", dim=self.dim)
        for layer in reversed(self.layers):
            z, _ = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Book equation (gen-flow-loglik): exact log p(x) in nats, shape (N,)."""
        z, log_det = self(x)
        return standard_normal_log_prob(z) + log_det

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n samples x = f^{-1}(z), z ~ N(0, I): the push-forward of book equation (gen-push-forward)."""
        return push_forward(self.inverse, n, self.dim, seed, device=next(self.parameters()).device)


# ---------------------------------------------------------------------------------------
# Training by maximum likelihood
# ---------------------------------------------------------------------------------------


def flow_nll(model: RealNVP, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Training objective for ``course_lib.training.train``, book equation (gen-mle).

    Args:
        model: the flow.
        x: a batch of points, shape (N, model.dim).

    Returns:
        ``{"loss": -mean log p(x)}``, the negative log-likelihood in nats per point.

    Example:
        >>> round(flow_nll(RealNVP(), torch.zeros(3, 2))["loss"].item(), 4)  # a new flow is N(0, I): log(2 pi)
        1.8379
    """
    return {"loss": -model.log_prob(x).mean()}


def train_flow(
    flow: RealNVP,
    data: torch.Tensor,
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 512,
    val_data: torch.Tensor | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Fit ``flow`` by exact maximum likelihood, book equation (gen-mle), with ``course_lib.training.train``.

    Adam with a cosine learning-rate decay from ``lr`` to 0 over all steps (``lr_schedule="cosine"``:
    large steps first, then small ones to settle), in float32 (no mixed precision:
    log-determinants add up many small terms).

    Args:
        flow: the model, trained in place.
        data: training points, shape (N, flow.dim).
        epochs: passes over the data, a positive int.
        lr: initial learning rate, > 0.
        batch_size: points per step.
        val_data: optional held-out points, evaluated after each epoch.
        device: where to train, a str or torch.device; ``None`` picks ``get_device()``.
        seed: seeds the shuffling (``train`` seeds the global generators with it).
        progress: show tqdm bars and one line per epoch.

    Returns:
        ``train``'s history: ``train_loss`` (and ``val_loss``), negative log-likelihoods in nats
        per point, one per epoch, and ``epoch_seconds``.

    Raises:
        ValueError: if ``data`` is not (N, flow.dim), or ``epochs``, ``batch_size`` or ``lr`` is out of range.

    Example:
        >>> flow = RealNVP(n_layers=2, hidden=8)
        >>> x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
        >>> history = train_flow(flow, x, epochs=2, batch_size=32, device="cpu", progress=False)
        >>> sorted(history)
        ['epoch_seconds', 'train_loss']
    """
    check_points(data, "data", dim=flow.dim)
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive(lr, "lr")
    return training.train(flow, flow_nll, data, epochs=epochs, lr=lr, batch_size=batch_size, val_data=val_data,
                          lr_schedule="cosine", device=device, amp=False, seed=seed, progress=progress)


# ---------------------------------------------------------------------------------------
# Coupling-specific argument checks
# ---------------------------------------------------------------------------------------


def _check_mask(mask, dim: int) -> None:
    if not isinstance(mask, torch.Tensor) or mask.shape != (dim,):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a tensor of shape ({dim},), got {got}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must contain only 0s and 1s")
    if bool((mask == 0).all()) or bool((mask == 1).all()):
        raise ValueError("mask must contain at least one 0 and one 1 (a coupling layer splits the coordinates)")


def _checked(conditioner: Conditioner, shape: torch.Size) -> Conditioner:
    """Wrap ``conditioner`` so that a wrong output raises a ValueError naming it."""
    if not callable(conditioner):
        raise ValueError(f"conditioner must be callable, got {type(conditioner).__name__}")

    def checked(x_masked: torch.Tensor):
        out = conditioner(x_masked)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError("conditioner must return a tuple (log_scale, shift)")
        s, t = out
        if s.shape != shape or t.shape != shape:
            raise ValueError(f"conditioner must return log_scale and shift of shape {tuple(shape)}, "
                             f"got {tuple(s.shape)} and {tuple(t.shape)}")
        return s, t

    return checked
