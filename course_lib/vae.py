"""The variational autoencoder of chapter 3: reparameterization, Gaussian KL, likelihoods, ELBO, IWAE.

Book equations (``book/vae.md`` and ``book/elbo.md``):

- (vae-encoder) q_phi(z|x) = N(mu(x), diag exp(logvar(x))), (vae-model) the prior p(z) = N(0, I);
- (vae-reparam) z = mu + exp(logvar / 2) * eps, eps ~ N(0, I);
- (vae-kl-gauss) KL(q || p(z)) = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j);
- (vae-elbo) ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)), and its negative, the loss (vae-loss);
- (vae-bernoulli), (vae-cb), (vae-gauss) the decoder's likelihoods, in ``course_lib.likelihoods``;
- (iwae-bound) the importance-weighted bound log (1/k) sum_i w_i, with w_i = p(x, z_i) / q(z_i|x);
- (active-units) A_u = #{j : Var_x(E_q[z_j]) > 0.01}; (free-bits) the free-bits KL;
- (vae-autoregressive) p(x|z) = prod_i p(x_i | x_<i, z), the decoder of ``PixelCNNVAE``.

Every quantity is in nats, summed over pixels and latent dimensions: one value per image
(or, for the losses, the mean over the batch of those per-image values).

Randomness: every function that draws noise takes an optional ``generator`` (a
``torch.Generator``; the draw happens on its device and moves to the inputs'). Without one
it uses torch's global generator, which is what training (seeded by ``course_lib.training.train``)
and the reparameterization exercise rely on; nothing here reseeds the global generator.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from course_lib.autoencoder import IMAGE_SHAPE, conv_decoder, conv_encoder
from course_lib.likelihoods import (
    LIKELIHOODS,
    bernoulli_log_likelihood,
    binarize,
    continuous_bernoulli_log_likelihood,
    continuous_bernoulli_mean,
    gaussian_log_likelihood,
)
from course_lib.pixelcnn import MaskedConv2d
from course_lib.runtime import tqdm
from course_lib.validation import (
    LOG_2PI,
    check_choice,
    check_finite,
    check_images,
    check_points,
    check_positive_int,
    check_same_shape,
)

# --------------------------------------------------------------------------- the latent Gaussian

def standard_normal_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise eps ~ N(0, I) with the shape, dtype and device of ``x``.

    Without ``generator`` this is ``torch.randn_like(x)`` (torch's global generator); with one,
    the numbers are drawn on the generator's device and moved to ``x``'s, so a CPU generator
    gives the same noise on every device.

    Example:
        >>> a = standard_normal_like(torch.zeros(2, 3), torch.Generator().manual_seed(0))
        >>> bool(torch.equal(a, torch.randn(2, 3, generator=torch.Generator().manual_seed(0))))
        True
    """
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Book equation (vae-reparam): a sample z = mu + sigma * eps of N(mu, diag sigma^2), sigma = exp(logvar/2).

    The randomness sits in ``eps ~ N(0, I)``, so z is a differentiable function of mu and logvar.

    Args:
        mu: means, shape (N, D) (any shape works).
        logvar: log-variances log sigma^2, same shape as ``mu``.
        eps: optional standard-normal noise of the same shape; drawn by
            ``standard_normal_like(mu, generator)`` when ``None``.
        generator: a ``torch.Generator`` for the noise; ``None`` uses torch's global generator
            (``torch.randn_like(mu)``).

    Returns:
        z, same shape as ``mu``.

    Raises:
        ValueError: if the shapes of ``mu``, ``logvar`` (and ``eps``) differ.

    Example:
        >>> mu, logvar = torch.tensor([[1.0, -1.0]]), torch.log(torch.tensor([[4.0, 1.0]]))
        >>> reparameterize(mu, logvar, eps=torch.tensor([[0.5, 2.0]]))  # 1 + 2 * 0.5, -1 + 1 * 2
        tensor([[2., 1.]])
    """
    check_same_shape(mu, logvar, ("mu", "logvar"))
    if eps is None:
        eps = standard_normal_like(mu, generator)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps must have the shape of mu {tuple(mu.shape)}, got {tuple(eps.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Book equation (vae-kl-gauss), one term per latent dimension: 1/2 (mu^2 + sigma^2 - 1 - log sigma^2).

    Args:
        mu, logvar: shape (N, D).

    Returns:
        Tensor of shape (N, D), every entry >= 0 (0 exactly when mu = 0 and logvar = 0).

    Raises:
        ValueError: if the shapes differ or are not 2-D.

    Example:
        >>> gaussian_kl_per_dim(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
        tensor([[0.0000, 0.5000]])
    """
    check_same_shape(mu, logvar, ("mu", "logvar"))
    if mu.ndim != 2:
        raise ValueError(f"mu and logvar must have shape (N, D), got {tuple(mu.shape)}")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Book equation (vae-kl-gauss): KL(N(mu, diag exp(logvar)) || N(0, I)), summed over latent dimensions.

    KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j), in nats.

    Args:
        mu: posterior means, shape (N, D).
        logvar: posterior log-variances, shape (N, D).

    Returns:
        Tensor of shape (N,): one KL per example, >= 0.

    Raises:
        ValueError: if the shapes differ or are not (N, D), or ``mu`` or ``logvar`` holds NaN or inf
            (a diverged encoder: the KL would be NaN). The check reads the device once; the training
            objective ``ELBOObjective`` uses ``gaussian_kl_per_dim``, which does not check.

    Example:
        >>> gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]]))  # 0.5 + (2 - 1 - ln 2) / 2
        tensor([0.6534])
    """
    kl = gaussian_kl_per_dim(mu, logvar)
    check_finite(mu, "mu")
    check_finite(logvar, "logvar")
    return kl.sum(dim=1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension (log q(z|x) or, with zeros, log p(z)).

    Args:
        z: points, shape (..., D); mu, logvar broadcast against it.

    Returns:
        Tensor of shape z.shape[:-1].

    Example:
        >>> gaussian_log_density(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))  # -log(2 pi)/2
        tensor([-0.9189])
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


# --------------------------------------------------------------------------- models

class VAE(nn.Module):
    """Base class: a Gaussian encoder q(z|x) (vae-encoder), the prior N(0, I), a decoder likelihood.

    Subclasses set ``self.encoder`` (x -> (N, 2 * latent_dim): mu then logvar) and
    ``self.decoder`` (z -> (N, 1, 28, 28) raw outputs: logits, or the pre-sigmoid Gaussian mean).

    Args:
        latent_dim: size of z.
        likelihood: ``"bernoulli"`` (binarized images), ``"continuous_bernoulli"`` or
            ``"gaussian"`` (grey levels).
        decoder_logvar: for ``"gaussian"``: ``None`` learns one log sigma^2 shared by all pixels,
            a float fixes it.
    """

    def __init__(self, latent_dim: int, likelihood: str = "bernoulli", decoder_logvar: float | None = None):
        super().__init__()
        check_positive_int(latent_dim, "latent_dim")
        check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        if likelihood == "gaussian":
            if decoder_logvar is None:
                self.decoder_logvar = nn.Parameter(torch.zeros(()))
            else:
                self.register_buffer("decoder_logvar", torch.tensor(float(decoder_logvar)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, 28, 28) images in [0, 1] -> (mu, logvar) of q(z|x), each (N, latent_dim).

        Raises:
            ValueError: as ``course_lib.validation.check_images`` (shape, dtype, range).
        """
        check_images(x, "x", shape=IMAGE_SHAPE)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) codes -> (N, 1, 28, 28) raw decoder outputs (logits)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def mean_image(self, out: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) from the raw decoder output, in [0, 1]."""
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_mean(out).clamp(0, 1)
        return torch.sigmoid(out)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) codes -> (N, 1, 28, 28) images: the mean of p(x|z), in [0, 1]."""
        return self.mean_image(self.decoder_output(z))

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, shape (N,), from the raw decoder output ``out``."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        if self.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_log_likelihood(out, x)
        return gaussian_log_likelihood(torch.sigmoid(out), x, self.decoder_logvar)

    def log_likelihood_at(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, shape (N,), for codes z (N, latent_dim) and images x (N, 1, 28, 28)."""
        return self.log_likelihood(self.decoder_output(z), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction at the posterior mean: decode(mu(x)), images in [0, 1]."""
        return self.decode(self.encode(x)[0])

    def prior_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes z ~ N(0, I), (n, latent_dim), on the model's device."""
        check_positive_int(n, "n")
        return torch.randn(n, self.latent_dim, generator=generator).to(next(self.parameters()).device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior N(0, I): (n, 1, 28, 28) mean images."""
        return self.decode(self.prior_codes(n, generator))


class ConvVAE(VAE):
    """Convolutional VAE: the autoencoder's ``conv_encoder`` (with 2 * latent_dim outputs) and ``conv_decoder``.

    Example:
        >>> model = ConvVAE(latent_dim=2)
        >>> mu, logvar = model.encode(torch.rand(3, 1, 28, 28))
        >>> mu.shape, model.decode(mu).shape
        (torch.Size([3, 2]), torch.Size([3, 1, 28, 28]))
    """

    def __init__(self, latent_dim: int = 2, channels: int = 32, likelihood: str = "bernoulli",
                 decoder_logvar: float | None = None):
        super().__init__(latent_dim, likelihood, decoder_logvar)
        self.encoder = conv_encoder(2 * latent_dim, channels)
        self.decoder = conv_decoder(latent_dim, channels)


class MLPVAE(VAE):
    """Fully connected VAE: 784 -> hidden -> 2 * latent_dim, and back.

    Example:
        >>> model = MLPVAE(latent_dim=4, hidden=32)
        >>> model(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(self, latent_dim: int = 2, hidden: int = 400, likelihood: str = "bernoulli",
                 decoder_logvar: float | None = None):
        super().__init__(latent_dim, likelihood, decoder_logvar)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 784),
                                     nn.Unflatten(1, IMAGE_SHAPE))


class PixelCNNVAE(MLPVAE):
    """A VAE with an autoregressive decoder, book equation (vae-autoregressive):

        p(x|z) = prod_i Bernoulli(x_i; sigmoid(g_i(z) + h_i(x_<i, g(z)))),

    where g is ``MLPVAE``'s decoder (a 28x28 logit map from z alone) and h a small PixelCNN (van den
    Oord et al. 2016): masked convolutions (``course_lib.pixelcnn.MaskedConv2d``) over the binary pixels
    above and to the left of pixel i, in raster order, plus g(z) as an unmasked input. The first layer
    sees ``reach`` rows above pixel i and ``reach`` columns on either side (and the pixels to its left
    on its own row); each block adds one row and one column. ``reach=0`` drops h and is exactly
    ``MLPVAE``. The more of x_<i the decoder sees, the less it needs z: posterior
    collapse by a powerful decoder (Chen et al. 2017, the Variational Lossy Autoencoder).

    Args:
        latent_dim, hidden: as ``MLPVAE`` (Bernoulli likelihood, binary images).
        reach: rows above (and columns to each side) that the first masked convolution sees, >= 0.
        channels: width of the PixelCNN. blocks: its residual blocks of 2x3 masked convolutions.

    Example:
        >>> model = PixelCNNVAE(latent_dim=2, hidden=16, reach=3, channels=4, blocks=1)
        >>> x = binarize(torch.rand(2, 1, 28, 28))
        >>> model.log_likelihood_at(torch.zeros(2, 2), x).shape, model.sample(1, steps=3).shape
        (torch.Size([2]), torch.Size([1, 1, 28, 28]))
    """

    def __init__(self, latent_dim: int = 16, hidden: int = 256, reach: int = 7, channels: int = 16, blocks: int = 2):
        super().__init__(latent_dim, hidden)
        check_positive_int(reach, "reach", minimum=0)
        self.reach = reach
        if reach > 0:
            self.first = MaskedConv2d(1, channels, (reach + 1, 2 * reach + 1), "A")
            self.condition = nn.Conv2d(1, channels, 1)  # g(z) depends on z only: no mask needed
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.ReLU(), MaskedConv2d(channels, channels, (2, 3), "B"), nn.ReLU(),
                              nn.Conv2d(channels, channels, 1))
                for _ in range(blocks)
            )
            self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, 1, 1))

    def autoregressive_logits(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(x_i | x_<i, z) for every pixel at once (teacher forcing): (N, 1, 28, 28)."""
        g = self.decoder_output(z)
        if self.reach == 0:
            return g
        if x.shape != g.shape:
            raise ValueError(f"x must have shape {tuple(g.shape)}, got {tuple(x.shape)}")
        h = self.first(x) + self.condition(g)
        for block in self.blocks:
            h = h + block(h)
        return g + self.out(h)

    def log_likelihood_at(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) = sum_i log p(x_i | x_<i, z) per image, shape (N,); x binary."""
        return bernoulli_log_likelihood(self.autoregressive_logits(z, x), x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) when ``reach == 0`` (then pixels are independent given z)."""
        if self.reach > 0:
            raise NotImplementedError("an autoregressive decoder has no closed-form mean image; use sample_given(z)")
        return super().decode(z)

    @torch.no_grad()
    def sample_given(self, z: torch.Tensor, generator: torch.Generator | None = None,
                     steps: int | None = None) -> torch.Tensor:
        """Draw x ~ p(x|z) pixel by pixel in raster order: (N, 1, 28, 28) binary images.

        ``steps`` stops after that many pixels (the rest stay 0), for quick checks.
        """
        x = torch.zeros(z.shape[0], *IMAGE_SHAPE, device=z.device)
        positions = [(i, j) for i in range(IMAGE_SHAPE[1]) for j in range(IMAGE_SHAPE[2])][:steps]
        for i, j in positions:
            p = torch.sigmoid(self.autoregressive_logits(z, x)[:, 0, i, j]).cpu()
            x[:, 0, i, j] = torch.bernoulli(p, generator=generator).to(z.device)
        return x

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """Draw z ~ N(0, I), then x ~ p(x|z): (n, 1, 28, 28) binary images."""
        return self.sample_given(self.prior_codes(n, generator), generator, steps)


# --------------------------------------------------------------------------- losses

def negative_elbo(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Book equation (vae-loss): the negative ELBO of a Bernoulli VAE, one z sample, mean over the batch.

    loss = (1/N) sum_n [ -log p(x_n | z_n) + KL(q(z|x_n) || N(0, I)) ], with log p the Bernoulli
    log-likelihood (vae-bernoulli) summed over pixels and the KL (vae-kl-gauss) summed over
    latent dimensions: nats per image.

    Args:
        logits: decoder logits at z_n ~ q(z|x_n), shape (N, ...).
        x: binary images, same shape.
        mu, logvar: the encoder's outputs, shape (N, D).

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if the shapes disagree.

    Warns:
        UserWarning: when ``x`` holds grey levels (a value other than 0 and 1). The Bernoulli
            likelihood is a probability of binary pixels; on grey levels its value is no
            log-likelihood (it is not normalised: book page ``vae_failure_modes``). Binarize
            ``x`` (``course_lib.likelihoods.binarize``), or, for grey levels, use a model with
            the continuous Bernoulli or the Gaussian likelihood (``ELBOObjective``), which take
            grey levels legitimately. Checking costs one read from the device per call.

    Example:
        >>> negative_elbo(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 1), torch.zeros(2, 1))  # 3 log 2 + 0
        tensor(2.0794)
    """
    if len(logits) != len(mu):
        raise ValueError(f"logits and mu must have the same batch size, got {len(logits)} and {len(mu)}")
    check_same_shape(logits, x, ("logits", "x"))
    if bool(((x != 0) & (x != 1)).any()):
        warnings.warn(
            "negative_elbo: x has grey levels (values other than 0 and 1), but the Bernoulli likelihood "
            "(vae-bernoulli) is a probability of binary pixels: on grey levels the loss is not a negative "
            "ELBO. Binarize x first (course_lib.likelihoods.binarize), or use the continuous Bernoulli or "
            "Gaussian likelihood for grey levels.",
            UserWarning, stacklevel=2,
        )
    return (-bernoulli_log_likelihood(logits, x) + gaussian_kl(mu, logvar)).mean()


@dataclass
class ELBOObjective:
    """The training objective (vae-loss) for ``course_lib.training.train``, with the beta-VAE and free-bits knobs.

    loss = (1/N) sum_n [ -log p(x_n|z_n) + beta * KL_n ], z_n = reparameterize(mu, logvar) (one sample).
    With ``free_bits = tau > 0`` (Kingma et al. 2016, (free-bits)) the KL term becomes
    sum_j max(tau, mean over the batch of KL_j): dimensions below tau nats get no pull towards
    the prior. ``beta`` may be changed between epochs (KL annealing).

    Args:
        beta: weight of the KL term (1 gives the ELBO, (beta-vae)).
        free_bits: nats per latent dimension, >= 0.
        binarize: draw a fresh binarization of each batch (dynamic binarization) before use.
        generator: a ``torch.Generator`` for the noise (z and the binarization); ``None`` uses
            torch's global generator, which ``course_lib.training.train`` seeds.

    Returns (when called as ``objective(model, x)``):
        ``{"loss", "recon", "kl"}``: the loss minimised, -log p(x|z) and KL(q || p(z)),
        each the mean over the batch of per-image values in nats; recon + kl is the negative ELBO.

    Example:
        >>> objective = ELBOObjective(binarize=True, generator=torch.Generator().manual_seed(0))
        >>> terms = objective(ConvVAE(2), torch.rand(4, 1, 28, 28))
        >>> sorted(terms), bool(terms["loss"] > 0)
        (['kl', 'loss', 'recon'], True)
    """

    beta: float = 1.0
    free_bits: float = 0.0
    binarize: bool = False
    generator: torch.Generator | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not (isinstance(self.beta, (int, float)) and self.beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {self.beta!r}")
        if not (isinstance(self.free_bits, (int, float)) and self.free_bits >= 0):
            raise ValueError(f"free_bits must be a number >= 0, got {self.free_bits!r}")

    def __call__(self, model: VAE, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.binarize:
            x = binarize(x, self.generator)
        mu, logvar = model.encode(x)
        z = reparameterize(mu, logvar, generator=self.generator)
        recon = -model.log_likelihood_at(z, x).mean()
        kl_dims = gaussian_kl_per_dim(mu, logvar)
        kl = kl_dims.sum(dim=1).mean()
        kl_term = kl_dims.mean(dim=0).clamp(min=self.free_bits).sum() if self.free_bits > 0 else kl
        return {"loss": recon + self.beta * kl_term, "recon": recon, "kl": kl}


# --------------------------------------------------------------------------- evaluation

def iwae_bound(log_w: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Book equation (iwae-bound): L_k = log (1/k) sum_i w_i = logsumexp_i(log w_i) - log k.

    With k = 1 it is the one-sample ELBO; its expectation increases with k towards log p(x)
    (Burda, Grosse and Salakhutdinov 2016). logsumexp keeps it finite when the log-weights are
    around -1000 nats, where exp underflows.

    Layout: ``log_w[i, n]`` is the log-weight of sample i of example n, so the samples run
    along dim 0 and the examples along dim 1, as ``log_importance_weights`` returns them. A
    transposed (N, k) tensor is a valid (k', N') tensor too, so its shape alone cannot reveal
    the mistake: pass ``k`` to have the layout checked.

    Args:
        log_w: log importance weights log p(x, z_i) - log q(z_i|x), shape (k, N): k samples per example.
        k: the number of samples, when the caller knows it: ``log_w.shape[0]`` must equal it.

    Returns:
        Tensor of shape (N,).

    Raises:
        ValueError: if ``log_w`` is not a 2-D floating tensor with k >= 1 rows, or if ``k`` is
            given and ``log_w.shape[0] != k`` (the message says so when ``log_w`` is (N, k),
            i.e. transposed).

    Example:
        >>> iwae_bound(torch.log(torch.tensor([[1.0], [3.0]])))  # log((1 + 3) / 2)
        tensor([0.6931])
        >>> iwae_bound(torch.zeros(3, 2), k=2)
        Traceback (most recent call last):
        ...
        ValueError: log_w has shape (3, 2): the k = 2 samples run along dim 1, but iwae_bound expects ... pass log_w.T
    """
    if not isinstance(log_w, torch.Tensor) or log_w.ndim != 2 or log_w.shape[0] < 1 or not log_w.is_floating_point():
        got = tuple(log_w.shape) if isinstance(log_w, torch.Tensor) else type(log_w).__name__
        raise ValueError(f"log_w must be a floating tensor of shape (k, N) with k >= 1, got {got}")
    if k is not None:
        check_positive_int(k, "k")
        if log_w.shape[0] != k:
            if log_w.shape[1] == k:
                raise ValueError(f"log_w has shape {tuple(log_w.shape)}: the k = {k} samples run along dim 1, but "
                                 "iwae_bound expects shape (k, N) with the samples along dim 0; pass log_w.T")
            raise ValueError(f"log_w must have shape (k, N) with k = {k}, got {tuple(log_w.shape)}")
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


@torch.no_grad()
def log_importance_weights(model: VAE, x: torch.Tensor, k: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x): shape (k, N).

    ``generator`` draws the noise of the samples (``None``: torch's global generator).

    Example:
        >>> log_importance_weights(ConvVAE(2), binarize(torch.rand(3, 1, 28, 28)), k=5).shape
        torch.Size([5, 3])
    """
    check_positive_int(k, "k")
    mu, logvar = model.encode(x)
    z = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape), generator=generator)  # (k, N, D)
    x_k = x.expand(k, *x.shape).reshape(-1, *x.shape[1:])
    log_px_z = model.log_likelihood_at(z.reshape(-1, mu.shape[1]), x_k).view(k, -1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
    log_qz = gaussian_log_density(z, mu, logvar)
    return log_px_z + log_pz - log_qz


@torch.no_grad()
def iwae_log_likelihood(model: VAE, x: torch.Tensor, k: int = 1000, max_images: int = 4096,
                        progress: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """The IWAE estimate (iwae-bound) of log p(x) for each image, with k samples: shape (N,).

    The k samples are drawn in chunks so that at most ``max_images`` decoded images are in memory.
    Each chunk's logsumexp is combined exactly: the result equals ``iwae_bound`` on all k weights.

    Args:
        model: a trained VAE (put in eval mode by the caller).
        x: images, shape (N, 1, 28, 28) (binarized for a Bernoulli model).
        k: importance samples per image.
        max_images: memory bound, N_chunk * k_chunk decoded images.
        progress: a tqdm bar over the batches.
        generator: draws the samples' noise (``None``: torch's global generator).

    Example:
        >>> iwae_log_likelihood(ConvVAE(2), binarize(torch.rand(2, 1, 28, 28)), k=10).shape
        torch.Size([2])
    """
    check_positive_int(k, "k")
    check_positive_int(max_images, "max_images")
    device = next(model.parameters()).device
    k_chunk = min(k, max_images)
    n_chunk = max(1, max_images // k_chunk)
    results = []
    for start in tqdm(range(0, len(x), n_chunk), desc=f"IWAE k={k}", disable=not progress, leave=False):
        xb = x[start:start + n_chunk].to(device)
        lse, done = None, 0
        while done < k:
            m = min(k_chunk, k - done)
            part = torch.logsumexp(log_importance_weights(model, xb, m, generator), dim=0)
            lse = part if lse is None else torch.logaddexp(lse, part)
            done += m
        results.append((lse - math.log(k)).cpu())
    return torch.cat(results)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Book equation (active-units): the number of latent dimensions j with Var_x(E_q[z_j|x]) > threshold.

    (Burda, Grosse and Salakhutdinov 2016.) A dimension whose posterior mean does not change
    with x carries no information about x: it has collapsed to the prior.

    Args:
        mu: posterior means over a data set, shape (N, D), N >= 2.
        threshold: the activity threshold (0.01 in the paper).

    Returns:
        ``(count, variances)``: the int number of active units and the (D,) variances.

    Raises:
        ValueError: if ``mu`` is not (N, D) with N >= 2.

    Example:
        >>> mu = torch.stack([torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.01])])
        >>> active_units(mu)
        (1, tensor([5.0000e-01, 5.0000e-05]))
    """
    check_points(mu, "mu")
    if mu.shape[0] < 2:
        raise ValueError(f"mu must have shape (N, D) with N >= 2, got {tuple(mu.shape)}")
    variances = mu.var(dim=0)
    return int((variances > threshold).sum()), variances


@torch.no_grad()
def evaluate_vae(model: VAE, x: torch.Tensor, x_grey: torch.Tensor | None = None, k: int = 1000,
                 n_iwae: int | None = None, batch_size: int = 500, progress: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """Test metrics of a trained VAE, in nats per image: the table of the book's VAE chapter.

    Args:
        model: the VAE (eval mode is set here and restored).
        x: test images as the model's likelihood sees them (the fixed binarization for Bernoulli).
        x_grey: the grey-level originals, for the reconstruction PSNR (defaults to ``x``).
        k: IWAE samples.
        n_iwae: estimate the IWAE NLL on the first ``n_iwae`` images only (it costs k decoder passes
            per image); ``None`` uses all.
        batch_size: images per forward pass.
        progress: a tqdm bar over the IWAE batches.
        seed: seeds the noise: each of the three estimates (the ELBO on ``x``, the IWAE NLL, the
            ELBO on the IWAE subset) draws from its own CPU ``torch.Generator`` seeded with it, so
            the metrics repeat on every device and torch's global generator is left as it was.

    Returns:
        ``{"neg_elbo", "recon", "kl", "iwae_nll", "iwae_k", "iwae_images", "neg_elbo_iwae_images",
        "psnr_db", "active_units"}``: negative ELBO and its parts averaged over ``x``; the IWAE NLL
        estimate and, for comparison, the negative ELBO on the same ``n_iwae`` images; the PSNR of
        decode(mu(x)) against ``x_grey``; the active units.

    Raises:
        ValueError: if ``k``, ``batch_size`` or ``n_iwae`` is not a positive int, or ``seed`` is negative.

    Example:
        >>> x = torch.rand(6, 1, 28, 28)
        >>> m = evaluate_vae(MLPVAE(2, hidden=8), binarize(x), x_grey=x, k=3, n_iwae=2)
        >>> m["iwae_k"], m["iwae_images"], m["neg_elbo"] > 0
        (3, 2, True)
    """
    from course_lib.metrics import psnr  # local import: metrics does not depend on the VAE
    from course_lib.training import evaluate

    check_positive_int(k, "k")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(seed, "seed", minimum=0)
    if n_iwae is not None:
        check_positive_int(n_iwae, "n_iwae")

    def generator() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    was_training = model.training
    model.eval()
    try:
        terms = evaluate(model, ELBOObjective(generator=generator()), x, batch_size=batch_size)
        x_sub = x if n_iwae is None else x[:n_iwae]
        iwae = iwae_log_likelihood(model, x_sub, k=k, progress=progress, generator=generator())
        elbo_sub = evaluate(model, ELBOObjective(generator=generator()), x_sub, batch_size=batch_size)
        device = next(model.parameters()).device
        x_hat, mus = [], []
        for s in range(0, len(x), batch_size):
            mu, _ = model.encode(x[s:s + batch_size].to(device))
            mus.append(mu.cpu())
            x_hat.append(model.decode(mu).cpu())
    finally:
        model.train(was_training)
    x_grey = x if x_grey is None else x_grey
    return {
        "neg_elbo": terms["recon"] + terms["kl"], "recon": terms["recon"], "kl": terms["kl"],
        "iwae_nll": float(-iwae.mean()), "iwae_k": k, "iwae_images": len(x_sub),
        "neg_elbo_iwae_images": elbo_sub["recon"] + elbo_sub["kl"],
        "psnr_db": float(psnr(torch.cat(x_hat), x_grey)), "active_units": active_units(torch.cat(mus))[0],
    }
