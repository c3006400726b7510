"""The VQ-VAE of the VQ-VAE chapter: a codebook of K vectors, nearest-code quantization, the
straight-through estimator, the VQ loss, codebook health (perplexity, dead codes, EMA updates,
restarts), and a small autoregressive prior over the grid of codes.

Book equations (book/vqvae.md):

- (vq-quantize) k(z) = argmin_k ||z - e_k||^2, z_q = e_{k(z)};
- (vq-straight-through) z_q = z_e + sg[e - z_e]: forward value e, gradient passed to z_e unchanged;
- (vq-loss) L = ||x - x_hat||^2 + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 (van den Oord et al. 2017, eq. 3);
- (vq-perplexity) exp(-sum_k p_k log p_k), p_k the frequency of code k;
- (vq-ema) N_k <- g N_k + (1 - g) n_k, m_k <- g m_k + (1 - g) sum_{z: k(z) = k} z, e_k = m_k / N_k;
- (vq-prior) p(k_1, ..., k_L) = prod_i p(k_i | k_<i), trained by maximum likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.autoencoder import apply_in_batches

CODEBOOK_MODES = ("plain", "ema")


# --------------------------------------------------------------------------- quantization
def nearest_code(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Book equation (vq-quantize): the index of the nearest code, argmin_k ||z - e_k||^2.

    The squared distances of all vectors to all codes come from one matrix product,
    ||z||^2 - 2 z.e_k + ||e_k||^2, with no Python loop over vectors or codes.

    Args:
        z_e: encoder outputs, shape (..., D).
        codebook: the K code vectors, shape (K, D).

    Returns:
        Long tensor of shape (...), values in {0, ..., K - 1}.

    Raises:
        ValueError: if ``codebook`` is not 2-D, or the last dimension of ``z_e`` is not D.

    Example:
        >>> codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
        >>> nearest_code(torch.tensor([[0.9, 0.8], [-1.5, 0.1], [0.1, -0.2]]), codebook)
        tensor([1, 2, 0])
    """
    _check_codebook(z_e, codebook)
    flat = z_e.detach().reshape(-1, z_e.shape[-1])
    e = codebook.detach()
    distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)
    return distances.argmin(dim=1).reshape(z_e.shape[:-1])


def straight_through(z_e: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Book equation (vq-straight-through): z_q = z_e + sg[e - z_e].

    In the forward pass z_q equals e; in the backward pass the stop-gradient sg (``detach``)
    makes dz_q/dz_e the identity, so the decoder's gradient reaches the encoder unchanged
    (Bengio et al. 2013), and none reaches the codebook through this path.

    Args:
        z_e: encoder outputs, shape (..., D).
        e: their quantized values, the same shape.

    Returns:
        z_q, the same shape.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> z_e = torch.tensor([0.3], requires_grad=True)
        >>> z_q = straight_through(z_e, torch.tensor([1.0]))
        >>> (3 * z_q).sum().backward()
        >>> z_q.detach(), z_e.grad
        (tensor([1.]), tensor([3.]))
    """
    if z_e.shape != e.shape:
        raise ValueError(f"z_e and e must have the same shape, got {tuple(z_e.shape)} and {tuple(e.shape)}")
    return z_e + (e - z_e).detach()


def quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Equations (vq-quantize) and (vq-straight-through): nearest code, with a straight-through gradient.

    Args:
        z_e: encoder outputs, shape (..., D).
        codebook: shape (K, D).

    Returns:
        ``(z_q, indices)``: z_q of shape (..., D) equal to ``codebook[indices]`` in value, whose
        gradient flows to ``z_e`` (not to the codebook: the codebook learns through
        ``vq_loss`` or the EMA update); indices of shape (...).

    Raises:
        ValueError: as ``nearest_code``.

    Example:
        >>> z_q, idx = quantize(torch.tensor([[0.2, 0.1], [2.0, 1.5]]), torch.tensor([[0.0, 0.0], [2.0, 2.0]]))
        >>> z_q, idx
        (tensor([[0., 0.],
                [2., 2.]]), tensor([0, 1]))
    """
    indices = nearest_code(z_e, codebook)
    return straight_through(z_e, codebook[indices]), indices


def vq_loss_terms(z_e: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of (vq-loss): codebook ||sg[z_e] - e||^2 and commitment ||z_e - sg[e]||^2.

    Squared errors are summed over everything but the first (batch) axis and averaged over the
    batch, like the reconstruction loss (ae-loss), so all terms are per image.

    Args:
        z_e: encoder outputs, shape (N, ..., D).
        e: the selected codes ``codebook[indices]``, the same shape. Pass e itself, *not* the
            straight-through z_q: z_q has no gradient path to the codebook.

    Returns:
        ``(codebook_term, commitment_term)``, two scalars: the first has a gradient only for
        ``e``, the second only for ``z_e``.

    Raises:
        ValueError: if the shapes differ or the tensors have no batch axis.
    """
    if z_e.shape != e.shape:
        raise ValueError(f"z_e and e must have the same shape, got {tuple(z_e.shape)} and {tuple(e.shape)}")
    if z_e.ndim < 2:
        raise ValueError(f"z_e must have shape (N, ..., D), got {tuple(z_e.shape)}")
    codebook_term = (z_e.detach() - e).pow(2).flatten(1).sum(1).mean()
    commitment_term = (z_e - e.detach()).pow(2).flatten(1).sum(1).mean()
    return codebook_term, commitment_term


def vq_loss(z_e: torch.Tensor, e: torch.Tensor, beta: float = 0.25) -> torch.Tensor:
    """Book equation (vq-loss) without its reconstruction term: ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2.

    Args:
        z_e: encoder outputs, shape (N, ..., D).
        e: the selected codes ``codebook[indices]`` (not z_q), the same shape.
        beta: weight of the commitment term (0.25 in van den Oord et al. 2017).

    Returns:
        A scalar: summed over all but the batch axis, averaged over the batch.

    Raises:
        ValueError: if the shapes differ, or ``beta`` is negative.

    Example:
        >>> z_e = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> e = torch.tensor([[0.0, 0.0]], requires_grad=True)
        >>> loss = vq_loss(z_e, e, beta=0.25); loss.backward()
        >>> loss.item(), z_e.grad, e.grad   # the codebook gets 2(e - z_e), the encoder 0.25 * 2(z_e - e)
        (6.25, tensor([[0.5000, 1.0000]]), tensor([[-2., -4.]]))
    """
    if not isinstance(beta, (int, float)) or beta < 0:
        raise ValueError(f"beta must be a non-negative number, got {beta!r}")
    codebook_term, commitment_term = vq_loss_terms(z_e, e)
    return codebook_term + beta * commitment_term


# --------------------------------------------------------------------------- codebook health
def code_usage(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each code is used: a (K,) long tensor of counts.

    Raises:
        ValueError: if ``num_codes`` is not a positive int, or an index is outside [0, K).

    Example:
        >>> code_usage(torch.tensor([0, 2, 2]), 4)
        tensor([1, 0, 2, 0])
    """
    _check_indices(indices, num_codes)
    return torch.bincount(indices.reshape(-1).long(), minlength=num_codes)


def perplexity(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """Book equation (vq-perplexity): exp of the entropy (in nats) of the codes' frequencies.

    It is the number of equally used codes that would give the same entropy: K when all K
    codes are used equally often, 1 when one code is always used. Unused codes add nothing
    (0 log 0 = 0).

    Args:
        indices: code indices of any shape, values in [0, num_codes).
        num_codes: K.

    Returns:
        A float scalar tensor in [1, K].

    Raises:
        ValueError: if ``indices`` is empty or out of range, or ``num_codes`` is not a positive int.

    Example:
        >>> perplexity(torch.tensor([0, 1, 2, 3]), 8), perplexity(torch.tensor([5, 5, 5]), 8)
        (tensor(4.), tensor(1.))
    """
    p = code_usage(indices, num_codes).float()
    p = p / p.sum()
    entropy = -torch.special.xlogy(p, p).sum()
    return entropy.exp()


def dead_codes(indices: torch.Tensor, num_codes: int) -> int:
    """The number of codes that no index uses.

    Example:
        >>> dead_codes(torch.tensor([0, 2, 2]), 4)
        2
    """
    return int((code_usage(indices, num_codes) == 0).sum())


class VectorQuantizer(nn.Module):
    """A codebook of ``num_codes`` vectors of size ``code_dim``, with three ways to keep it healthy.

    - ``mode="plain"``: the codebook is a parameter trained by the codebook term of (vq-loss).
    - ``mode="ema"``: the codebook is a buffer updated by exponential moving averages of the
      vectors assigned to each code, equation (vq-ema) (van den Oord et al. 2017, appendix A.1;
      Razavi et al. 2019); the codebook term is then logged but not trained on.
    - ``restart_after=n`` (either mode): a code that no vector used for ``n`` consecutive
      training steps is re-initialised to a random encoder output of the current batch.

    Updates happen only in training mode (``model.train()``).

    Args:
        num_codes: K.
        code_dim: D.
        mode: ``"plain"`` or ``"ema"``.
        beta: commitment weight of (vq-loss).
        decay: gamma of (vq-ema).
        eps: Laplace smoothing of the EMA counts (avoids dividing by zero).
        restart_after: steps without use before a restart; 0 disables restarts.

    Example:
        >>> vq = VectorQuantizer(num_codes=8, code_dim=4)
        >>> z_q, idx, terms = vq(torch.randn(2, 5, 4))
        >>> z_q.shape, idx.shape, sorted(terms)
        (torch.Size([2, 5, 4]), torch.Size([2, 5]), ['codebook', 'commitment'])
    """

    def __init__(self, num_codes: int, code_dim: int, mode: str = "plain", beta: float = 0.25,
                 decay: float = 0.99, eps: float = 1e-5, restart_after: int = 0):
        super().__init__()
        for name, value in (("num_codes", num_codes), ("code_dim", code_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if mode not in CODEBOOK_MODES:
            raise ValueError(f"mode must be one of {CODEBOOK_MODES}, got {mode!r}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if not isinstance(restart_after, int) or restart_after < 0:
            raise ValueError(f"restart_after must be a non-negative int, got {restart_after!r}")
        self.num_codes, self.code_dim, self.mode = num_codes, code_dim, mode
        self.beta, self.decay, self.eps, self.restart_after = beta, decay, eps, restart_after
        init = torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes)
        if mode == "plain":
            self.codebook = nn.Parameter(init)
        else:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", init.clone())
        self.register_buffer("steps_unused", torch.zeros(num_codes, dtype=torch.long))

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Quantize z_e of shape (N, ..., D).

        Returns:
            ``(z_q, indices, {"codebook": ..., "commitment": ...})``: the straight-through z_q
            (N, ..., D), the indices (N, ...), and the two terms of (vq-loss) (unweighted).
        """
        indices = nearest_code(z_e, self.codebook)
        e = self.codebook[indices]  # a copy: the updates below do not change this step's e
        codebook_term, commitment_term = vq_loss_terms(z_e, e)
        if self.mode == "ema":
            codebook_term = codebook_term.detach()
        if self.training:
            with torch.no_grad():
                if self.mode == "ema":
                    self.ema_update(z_e, indices)
                if self.restart_after:
                    self.restart_dead_codes(z_e, indices)
        return straight_through(z_e, e), indices, {"codebook": codebook_term, "commitment": commitment_term}

    @torch.no_grad()
    def ema_update(self, z_e: torch.Tensor, indices: torch.Tensor) -> None:
        """One step of (vq-ema): N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum z, e_k = m_k / N_k.

        n_k counts the vectors of the batch assigned to code k; N_k is Laplace-smoothed with
        ``eps`` before dividing. A code that no vector chose keeps its value.
        """
        if self.mode != "ema":
            raise ValueError(f"ema_update needs mode='ema', this quantizer has mode={self.mode!r}")
        flat = z_e.detach().reshape(-1, self.code_dim).to(self.ema_sum.dtype)
        one_hot = F.one_hot(indices.reshape(-1), self.num_codes).to(flat.dtype)
        self.ema_count.mul_(self.decay).add_(one_hot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(one_hot.T @ flat, alpha=1 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.num_codes * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))

    @torch.no_grad()
    def restart_dead_codes(self, z_e: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Count steps without use, and move codes unused for ``restart_after`` steps onto random
        encoder outputs of this batch. Returns the indices of the restarted codes."""
        used = code_usage(indices, self.num_codes) > 0
        self.steps_unused.add_(1).masked_fill_(used, 0)
        dead = torch.nonzero(self.steps_unused >= max(self.restart_after, 1)).flatten()
        if len(dead):
            flat = z_e.detach().reshape(-1, self.code_dim)
            pick = torch.randint(len(flat), (len(dead),), device=flat.device)
            new = flat[pick].to(self.codebook.dtype)
            self.codebook.data[dead] = new
            if self.mode == "ema":
                self.ema_sum[dead] = new
                self.ema_count[dead] = 1.0
            self.steps_unused[dead] = 0
        return dead


# --------------------------------------------------------------------------- the VQ-VAE
class VQVAE(nn.Module):
    """A convolutional VQ-VAE for 1x28x28 images with a 7x7 grid of discrete codes.

    Encoder: two stride-2 convolutions as in ``course_lib.autoencoder.conv_encoder``
    (28 -> 14 -> 7), then a 1x1 convolution to D channels: z_e of shape (N, 7, 7, D). Each of the
    49 vectors is quantized to one of K codes. Decoder: the mirror image, ending in a sigmoid.

    Args:
        num_codes: K. code_dim: D. channels: width of the first convolution.
        mode, beta, decay, restart_after: passed to ``VectorQuantizer``.

    Example:
        >>> model = VQVAE(num_codes=16, code_dim=8, channels=8)
        >>> x = torch.rand(2, 1, 28, 28)
        >>> model.encode(x).shape, model.encode_indices(x).shape, model(x).shape
        (torch.Size([2, 7, 7, 8]), torch.Size([2, 7, 7]), torch.Size([2, 1, 28, 28]))
    """

    grid = (7, 7)

    def __init__(self, num_codes: int = 64, code_dim: int = 16, channels: int = 32, mode: str = "plain",
                 beta: float = 0.25, decay: float = 0.99, restart_after: int = 0):
        super().__init__()
        self.num_codes, self.code_dim = num_codes, code_dim
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * c, code_dim, 1),
        )
        self.quantizer = VectorQuantizer(num_codes, code_dim, mode=mode, beta=beta, decay=decay,
                                         restart_after=restart_after)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, 2 * c, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # 14 -> 28
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images -> z_e, (N, 7, 7, D) continuous encoder outputs."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x must have shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.encoder(x).permute(0, 2, 3, 1)

    @torch.no_grad()
    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images -> (N, 7, 7) code indices (no codebook update)."""
        return nearest_code(self.encode(x), self.quantizer.codebook)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7, D) quantized vectors -> (N, 1, 28, 28) images in [0, 1]."""
        return torch.sigmoid(self.decoder(z_q.permute(0, 3, 1, 2)))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7) code indices -> (N, 1, 28, 28) images in [0, 1]."""
        _check_indices(indices, self.num_codes)
        return self.decode(self.quantizer.codebook[indices])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction x_hat of x (N, 1, 28, 28), through the codebook."""
        return self.decode(self.quantizer(self.encode(x))[0])


def vqvae_loss(model: VQVAE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Training objective (vq-loss) for ``course_lib.training.train``.

    Returns:
        ``{"loss", "recon", "codebook", "commitment", "perplexity"}``: loss = recon + codebook +
        beta * commitment (in EMA mode the codebook term is logged but has no gradient); recon is
        the squared error summed over pixels (ae-loss); perplexity (vq-perplexity) of this batch's codes.
    """
    z_e = model.encode(x)
    z_q, indices, terms = model.quantizer(z_e)
    x_hat = model.decode(z_q)
    recon = (x_hat - x).pow(2).flatten(1).sum(1).mean()
    loss = recon + terms["codebook"] + model.quantizer.beta * terms["commitment"]
    return {"loss": loss, "recon": recon, **terms, "perplexity": perplexity(indices, model.num_codes)}


# --------------------------------------------------------------------------- the prior
class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees positions before the centre in raster order (van den Oord et al. 2016).

    The kernel of ``rows`` x ``cols`` (``cols`` odd) covers the ``rows - 1`` rows above the output
    position and its own row, centred on it (the rows below would be masked anyway, so they are
    not computed). On its own row, mask ``"A"`` hides the centre and everything to its right
    (first layer: output i must not see input i); mask ``"B"`` lets the centre through (later
    layers: feature i already depends only on inputs before i).

    Example:
        >>> MaskedConv2d(1, 1, (2, 3), "A").mask
        tensor([[1., 1., 1.],
                [1., 0., 0.]])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], mask_type: str):
        rows, cols = kernel_size
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if rows < 1 or cols < 1 or cols % 2 != 1:
            raise ValueError(f"kernel_size must be (rows >= 1, odd cols), got {kernel_size!r}")
        super().__init__(in_channels, out_channels, (rows, cols))
        mask = torch.ones(rows, cols)
        mask[-1, cols // 2 + (mask_type == "B"):] = 0
        self.register_buffer("mask", mask)
        self.causal_padding = (cols // 2, cols // 2, rows - 1, 0)  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self.causal_padding), self.weight * self.mask, self.bias)


class CodePrior(nn.Module):
    """Book equation (vq-prior): a PixelCNN-style autoregressive model of a grid of code indices.

    The first masked convolution (mask A) spans H rows and 2W-1 columns, so the output at every
    position sees *all* earlier positions of the H x W grid (no blind spot); residual blocks of
    2x3 mask-B convolutions and 1x1 convolutions follow; a 1x1 convolution gives K logits.

    Args:
        num_codes: K. grid: (H, W). embed_dim: size of each code's embedding.
        channels: hidden width. blocks: number of residual blocks.

    Example:
        >>> prior = CodePrior(num_codes=8, grid=(3, 3), channels=16, blocks=1)
        >>> codes = torch.randint(8, (2, 3, 3))
        >>> prior(codes).shape, prior_nll(prior, codes).shape
        (torch.Size([2, 8, 3, 3]), torch.Size([2]))
    """

    def __init__(self, num_codes: int = 64, grid: tuple[int, int] = (7, 7), embed_dim: int = 8,
                 channels: int = 48, blocks: int = 2):
        super().__init__()
        self.num_codes, self.grid = num_codes, tuple(grid)
        self.embed = nn.Embedding(num_codes, embed_dim)
        self.first = MaskedConv2d(embed_dim, channels, (self.grid[0], 2 * self.grid[1] - 1), "A")
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), MaskedConv2d(channels, channels, (2, 3), "B"), nn.ReLU(),
                          nn.Conv2d(channels, channels, 1))
            for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, num_codes, 1))

    def logits_from_embedding(self, h: torch.Tensor) -> torch.Tensor:
        """(N, embed_dim, H, W) embedded codes -> (N, K, H, W) logits of p(k_i | k_<i)."""
        h = self.first(h)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, H, W) code indices -> (N, K, H, W) logits; position i depends only on codes before i."""
        if codes.ndim != 3 or tuple(codes.shape[1:]) != self.grid:
            raise ValueError(f"codes must have shape (N, {self.grid[0]}, {self.grid[1]}), got {tuple(codes.shape)}")
        _check_indices(codes, self.num_codes)
        return self.logits_from_embedding(self.embed(codes).permute(0, 3, 1, 2))

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n grids of codes (N, H, W), one position at a time in raster order."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        device = self.embed.weight.device
        codes = torch.zeros(n, *self.grid, dtype=torch.long, device=device)
        for i in range(self.grid[0]):
            for j in range(self.grid[1]):
                probs = F.softmax(self(codes)[:, :, i, j] / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
        return codes


def prior_nll(prior: CodePrior, codes: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood -log p(codes) in nats, one value per grid: shape (N,).

    Divide by H*W*ln 2 for bits per code; a uniform prior gives log2 K bits per code.
    """
    logits = prior(codes)
    return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(1)


def prior_loss(prior: CodePrior, codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Objective for ``course_lib.training.train`` on grids of codes (N, H, W): mean NLL in nats per
    grid as ``"loss"``, and ``"bits_per_code"``."""
    nll = prior_nll(prior, codes).mean()
    return {"loss": nll, "bits_per_code": nll / (math.prod(prior.grid) * math.log(2))}


# --------------------------------------------------------------------------- validation helpers
def _check_codebook(z_e: torch.Tensor, codebook: torch.Tensor) -> None:
    if not isinstance(codebook, torch.Tensor) or codebook.ndim != 2:
        raise ValueError(f"codebook must have shape (K, D), got {getattr(codebook, 'shape', type(codebook))}")
    if not isinstance(z_e, torch.Tensor) or z_e.ndim < 1 or z_e.shape[-1] != codebook.shape[1]:
        raise ValueError(f"z_e must have shape (..., {codebook.shape[1]}) to match the codebook, "
                         f"got {tuple(getattr(z_e, 'shape', ()))}")


def _check_indices(indices: torch.Tensor, num_codes: int) -> None:
    if not isinstance(num_codes, int) or num_codes < 1:
        raise ValueError(f"num_codes must be a positive int, got {num_codes!r}")
    if not isinstance(indices, torch.Tensor) or indices.dtype.is_floating_point or indices.numel() == 0:
        raise ValueError("indices must be a non-empty integer tensor")
    if indices.min() < 0 or indices.max() >= num_codes:
        low, high = int(indices.min()), int(indices.max())
        raise ValueError(f"indices must be in [0, {num_codes}), got values in [{low}, {high}]")


# --------------------------------------------------------------------------- training helpers
def encode_indices_dataset(model: VQVAE, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Code indices (N, 7, 7) of (N, 1, 28, 28) images, computed in batches, returned on the CPU."""
    return apply_in_batches(model, model.encode_indices, images, batch_size)


def codebook_tracker(model: VQVAE, images: torch.Tensor) -> Callable[[int, dict], None]:
    """An ``on_epoch_end`` callback for ``course_lib.training.train`` that records, on ``images``,
    the codebook's perplexity (vq-perplexity) as ``codebook_perplexity``, the number of unused codes
    as ``dead_codes`` and the usage counts as ``code_usage`` (one list of K counts per epoch)."""

    def track(epoch: int, history: dict) -> None:
        indices = encode_indices_dataset(model, images)
        history.setdefault("codebook_perplexity", []).append(float(perplexity(indices, model.num_codes)))
        history.setdefault("dead_codes", []).append(dead_codes(indices, model.num_codes))
        history.setdefault("code_usage", []).append(code_usage(indices, model.num_codes).tolist())

    return track


def train_in_chunks(model: nn.Module, objective, data: torch.Tensor, *, chunk_size: int, passes: int,
                    lr: float = 1e-3, batch_size: int = 128, seed: int = 0, **train_kwargs) -> dict:
    """``course_lib.training.train`` over successive chunks of ``chunk_size`` shuffled examples, one
    history entry per chunk, so that short trainings still show how the codebook evolves.

    Args:
        passes: number of passes over ``data``; each pass is cut into len(data) // chunk_size chunks.
        **train_kwargs: passed to ``train`` (``val_data``, ``device``, ``on_epoch_end``, ``progress``...).

    Returns:
        The history, one value per chunk.
    """
    from course_lib.training import train

    if not isinstance(chunk_size, int) or not 1 <= chunk_size <= len(data):
        raise ValueError(f"chunk_size must be an int in [1, {len(data)}], got {chunk_size!r}")
    if not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be a positive int, got {passes!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history: dict = {}
    step = 0
    for _ in range(passes):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data) - chunk_size + 1, chunk_size):
            train(model, objective, data[order[start:start + chunk_size]], epochs=1, optimizer=optimizer,
                  batch_size=batch_size, seed=seed + step, history=history, **train_kwargs)
            step += 1
    return history
