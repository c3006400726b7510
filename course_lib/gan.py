"""Generative adversarial networks: a generator and a discriminator trained as a two-player game.

The implicit model of notebook 02_generative_viewpoint: a small GAN (Goodfellow et al. 2014) whose
generator is a push-forward of a standard normal, book equation (gen-push-forward), that samples
well but gives no likelihood. It is trained with the non-saturating losses, book equations
(gen-gan-d-loss) and (gen-gan-g-loss), by the course's one training loop ``course_lib.training.train``
with a custom step that alternates one Adam step of the discriminator and one of the generator.

Conventions: points are rows of an (N, D) tensor; the discriminator returns logits, shape (N,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import training
from course_lib.flows import mlp  # the same fully connected network as the flow's conditioners
from course_lib.validation import check_points, check_positive, check_positive_int

# ---------------------------------------------------------------------------------------
# The two networks
# ---------------------------------------------------------------------------------------


class GANGenerator(nn.Module):
    """The GAN's generator G: noise z (N, latent_dim) -> samples (N, data_dim), an MLP.

    Its output is ``loc + scale * mlp(z)``: with ``loc`` and ``scale`` the data's mean and standard
    deviation per coordinate, the network itself works on standardized data, where GANs train best.

    Args:
        latent_dim: dimension of the noise z.
        data_dim: dimension of the samples.
        hidden, depth: width and number of hidden layers (LeakyReLU(0.2) activations).
        loc, scale: per-coordinate shift and scale of the output, shape (data_dim,); default 0 and 1.

    Raises:
        ValueError: if a dimension, ``hidden`` or ``depth`` is not a positive int, ``loc`` or ``scale``
            is not a (data_dim,) tensor, ``scale`` is not positive, or (in ``forward``) z is not
            (N, latent_dim).

    Example:
        >>> GANGenerator()(torch.randn(4, 2)).shape
        torch.Size([4, 2])
    """

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, depth: int = 3,
                 loc: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()
        check_positive_int(latent_dim, "latent_dim")
        check_positive_int(data_dim, "data_dim")
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.net = mlp(latent_dim, data_dim, hidden, depth, activation=lambda: nn.LeakyReLU(0.2))
        _register_standardization(self, data_dim, loc, scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_points(z, "z", dim=self.latent_dim)
        return self.loc + self.scale * self.net(z)


class GANDiscriminator(nn.Module):
    """The GAN's discriminator D: samples (N, data_dim) -> logits (N,); D(x) = sigmoid(logit).

    Its input is standardized first, ``mlp((x - loc) / scale)``, as the generator's output is scaled.

    Args:
        data_dim: dimension of the samples.
        hidden, depth: width and number of hidden layers (LeakyReLU(0.2) activations).
        loc, scale: per-coordinate shift and scale of the input, shape (data_dim,); default 0 and 1.

    Raises:
        ValueError: if ``data_dim``, ``hidden`` or ``depth`` is not a positive int, ``loc`` or ``scale``
            is not a (data_dim,) tensor, ``scale`` is not positive, or (in ``forward``) x is not
            (N, data_dim).

    Example:
        >>> GANDiscriminator()(torch.randn(4, 2)).shape
        torch.Size([4])
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 3,
                 loc: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()
        check_positive_int(data_dim, "data_dim")
        self.data_dim = data_dim
        self.net = mlp(data_dim, 1, hidden, depth, activation=lambda: nn.LeakyReLU(0.2))
        _register_standardization(self, data_dim, loc, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_points(x, "x", dim=self.data_dim)
        return self.net((x - self.loc) / self.scale).squeeze(1)


def _register_standardization(module: nn.Module, dim: int, loc, scale) -> None:
    loc = torch.zeros(dim) if loc is None else loc
    scale = torch.ones(dim) if scale is None else scale
    for name, value in (("loc", loc), ("scale", scale)):
        if not isinstance(value, torch.Tensor) or value.shape != (dim,):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a tensor of shape ({dim},), got {got}")
    if not bool((scale > 0).all()):
        raise ValueError(f"scale must have positive entries, got {scale.tolist()}")
    module.register_buffer("loc", loc.detach().float().clone())
    module.register_buffer("scale", scale.detach().float().clone())


# ---------------------------------------------------------------------------------------
# The two losses
# ---------------------------------------------------------------------------------------


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Book equation (gen-gan-d-loss): L_D = -mean log sigma(a) - mean log(1 - sigma(b)).

    With a the discriminator's logits on real data and b on generated samples; since
    log sigma(a) = -softplus(-a) and log(1 - sigma(b)) = -softplus(b), L_D = mean softplus(-a) + mean softplus(b),
    computed stably. It is the binary cross-entropy with labels 1 for real, 0 for fake.

    Example:
        >>> round(float(discriminator_loss(torch.zeros(3), torch.zeros(5))), 4)  # 2 log 2
        1.3863
    """
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Book equation (gen-gan-g-loss), the non-saturating loss: L_G = -mean log sigma(b) = mean softplus(-b).

    Minimising log(1 - sigma(b)) instead (the minimax game's own term) gives almost no gradient
    when the discriminator easily rejects the samples (b very negative), early in training.

    Example:
        >>> round(float(generator_loss(torch.zeros(4))), 4)  # log 2
        0.6931
    """
    return F.softplus(-logits_fake).mean()


def gan_losses(
    generator: nn.Module, discriminator: nn.Module, x_real: torch.Tensor, z: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Both GAN losses on one batch, book equations (gen-gan-d-loss) and (gen-gan-g-loss).

    L_D uses the generated samples detached, so its gradient reaches only D; L_G's gradient flows
    through D into G (step only G's optimizer on it).

    Args:
        generator: G, mapping z to samples.
        discriminator: D, mapping samples (N, D) to logits (N,).
        x_real: a batch of data, shape (N, D).
        z: a batch of noise, shape (M, latent_dim).

    Returns:
        ``{"d_loss", "g_loss", "d_real", "d_fake"}``: the two losses (scalars, nats) and the mean
        probabilities D assigns to "real" on the real and the fake batch (in [0, 1], for monitoring).

    Example:
        >>> class Zero(nn.Module):  # a discriminator that cannot tell: logit 0, D = 1/2
        ...     def forward(self, x): return torch.zeros(len(x))
        >>> out = gan_losses(nn.Identity(), Zero(), torch.randn(8, 2), torch.randn(8, 2))
        >>> round(float(out["d_loss"]), 4), round(float(out["g_loss"]), 4)  # 2 log 2 and log 2
        (1.3863, 0.6931)
    """
    check_points(x_real, "x_real")
    check_points(z, "z")
    fake = generator(z)
    logits_real = discriminator(x_real)
    logits_fake_detached = discriminator(fake.detach())
    return {
        "d_loss": discriminator_loss(logits_real, logits_fake_detached),
        "g_loss": generator_loss(discriminator(fake)),
        "d_real": torch.sigmoid(logits_real).mean().detach(),
        "d_fake": torch.sigmoid(logits_fake_detached).mean().detach(),
    }


# ---------------------------------------------------------------------------------------
# Training: one loop (course_lib.training.train), a step that plays both players
# ---------------------------------------------------------------------------------------


def train_gan(
    generator: GANGenerator,
    discriminator: GANDiscriminator,
    data: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    decay: bool = True,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train a GAN: alternate one Adam step of D on L_D and one of G on L_G (Goodfellow et al. 2014).

    ``course_lib.training.train`` runs the epochs and batches; its custom ``update`` step does, on
    each batch of data and a batch of fresh noise of the same size, one Adam step of D on
    (gen-gan-d-loss), then one of G on (gen-gan-g-loss) against the D just updated. A GAN has
    no single loss to minimise (it is a two-player game), so the step, not the loop, holds the
    two optimizers: Adam with beta1 = 0.5, the usual GAN setting.

    Args:
        generator, discriminator: the two networks, moved to ``device`` and trained in place.
        data: training points, shape (N, data_dim); an epoch is one pass over them,
            ``ceil(N / batch_size)`` steps.
        epochs: passes over ``data``, a positive int.
        batch_size: real points (and fakes) per step, a positive int.
        lr: both optimizers' learning rate, > 0.
        betas: Adam's (beta1, beta2).
        decay: decay both learning rates linearly to 0 over all steps, so that the game, which
            tends to oscillate, settles at the end.
        device: where to train, a str or torch.device; ``None`` picks ``get_device()``.
        seed: seeds the shuffling (``train`` seeds the global generators with it) and the noise,
            which is drawn on the CPU from its own generator (the same noise on every device).
        progress: show tqdm bars and one line per epoch.

    Returns:
        ``train``'s history, one value per epoch, averaged over the epoch's points:
        ``train_d_loss`` and ``train_g_loss`` (nats), ``train_d_real`` and ``train_d_fake``
        (D's mean probability of "real" on the data and on the samples, before D's update, in
        [0, 1]), and ``epoch_seconds``.

    Raises:
        ValueError: if ``epochs`` or ``batch_size`` is not a positive int, ``lr`` is not positive,
            or ``data`` is not (N, data_dim) with N > 0.

    Example:
        >>> g, d = GANGenerator(hidden=8, depth=1), GANDiscriminator(hidden=8, depth=1)
        >>> x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
        >>> history = train_gan(g, d, x, epochs=2, batch_size=32, device="cpu", progress=False)
        >>> sorted(history), len(history["train_d_loss"])
        (['epoch_seconds', 'train_d_fake', 'train_d_loss', 'train_d_real', 'train_g_loss'], 2)
    """
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive(lr, "lr")
    check_points(data, "data", dim=discriminator.data_dim)
    if len(data) == 0:
        raise ValueError("data is empty: it must hold at least one point")
    players = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    total_steps = epochs * math.ceil(len(data) / batch_size)
    step = _alternating_step(generator, discriminator, lr=lr, betas=betas, decay=decay,
                             total_steps=total_steps, noise=torch.Generator().manual_seed(seed))
    # The step holds both losses; with no val_data, train never calls an objective (None).
    history = training.train(players, None, data, epochs=epochs, lr=lr, batch_size=batch_size,
                             update=step, device=device, amp=False, seed=seed, progress=progress)
    players.eval()
    return history


def _alternating_step(generator: GANGenerator, discriminator: GANDiscriminator, *, lr: float,
                      betas: tuple[float, float], decay: bool, total_steps: int, noise: torch.Generator):
    """The ``update`` step of ``train_gan``: D's Adam step, then G's, on one batch."""
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / total_steps if decay else 1.0)
                 for opt in (opt_d, opt_g)]

    def step(players: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = torch.randn(len(x), generator.latent_dim, generator=noise).to(x.device, non_blocking=True)
        fake = generator(z)
        logits_real = discriminator(x)
        logits_fake = discriminator(fake.detach())
        d_loss = discriminator_loss(logits_real, logits_fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(discriminator(fake))  # against the D just updated
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(generator.parameters()))  # D's gradients are not needed here
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        # Kept on the device: train reads them once per epoch.
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(logits_real.detach()).mean(),
                "d_fake": torch.sigmoid(logits_fake.detach()).mean()}

    return step

