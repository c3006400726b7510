"""The VQ-VAE of the VQ-VAE chapter: a codebook of K vectors, nearest-code quantization, the
straight-through estimator, the VQ loss, codebook health (perplexity, dead codes, EMA updates,
restarts). The autoregressive prior over the grid of codes is ``course_lib.pixelcnn.CodePrior``.

Book equations (book/vqvae.md):

- (vq-quantize) k(z) = argmin_k ||z - e_k||^2, z_q = e_{k(z)};
- (vq-straight-through) z_q = z_e + sg[e - z_e]: forward value e, gradient passed to z_e unchanged;
- (vq-loss) L = ||x - x_hat||^2 + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 (van den Oord et al. 2017, eq. 3);
- (vq-perplexity) exp(-sum_k p_k log p_k), p_k the frequency of code k;
- (vq-ema) N_k <- g N_k + (1 - g) n_k, m_k <- g m_k + (1 - g) sum_{z: k(z) = k} z, e_k = m_k / N_k;
- (vq-prior) p(k_1, ..., k_L) = prod_i p(k_i | k_<i): ``course_lib.pixelcnn``.

Mixed precision: the nearest-code search and the EMA statistics run in float32 whatever the
autocast state (``course_lib.runtime.full_precision``): in bfloat16, ||z||^2 - 2 z.e + ||e||^2
loses the small differences between nearby codes and picks wrong ones, and running sums drift.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.autoencoder import IMAGE_SHAPE, apply_in_batches
from course_lib.pixelcnn import (
    CodePrior,  # noqa: F401  the shipped prior checkpoint names its class "course_lib.vq:CodePrior"
    check_code_indices,
)
from course_lib.runtime import full_precision
from course_lib.validation import check_choice, check_images, check_positive_int

CODEBOOK_MODES = ("plain", "ema")


# --------------------------------------------------------------------------- quantization
def nearest_code(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Book equation (vq-quantize): the index of the nearest code, argmin_k ||z - e_k||^2.

    The squared distances of all vectors to all codes come from one matrix product,
    ||z||^2 - 2 z.e_k + ||e_k||^2, with no Python loop over vectors or codes. The search runs in
    float32 with autocast off (bfloat16 inputs are cast up): in bfloat16 the differences between
    nearby codes are lost in the rounding of the large terms ||z||^2 and 2 z.e_k.

    Args:
        z_e: encoder outputs, shape (..., d).
        codebook: the K code vectors, shape (K, d).

    Returns:
        Long tensor of shape (...), values in {0, ..., K - 1}.

    Raises:
        ValueError: if ``codebook`` is not 2-D, or the last dimension of ``z_e`` is not d.

    Example:
        >>> codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
        >>> nearest_code(torch.tensor([[0.9, 0.8], [-1.5, 0.1], [0.1, -0.2]]), codebook)
        tensor([1, 2, 0])
    """
    _check_codebook(z_e, codebook)
    with full_precision(z_e.device):
        flat = z_e.detach().reshape(-1, z_e.shape[-1]).float()
        e = codebook.detach().float()
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)
        return distances.argmin(dim=1).reshape(z_e.shape[:-1])


def straight_through(z_e: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Book equation (vq-straight-through): z_q = z_e + sg[e - z_e].

    In the forward pass z_q equals e; in the backward pass the stop-gradient sg (``detach``)
    makes dz_q/dz_e the identity, so the decoder's gradient reaches the encoder unchanged
    (Bengio et al. 2013), and none reaches the codebook through this path.

    Args:
        z_e: encoder outputs, shape (..., d).
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
        z_e: encoder outputs, shape (..., d).
        codebook: shape (K, d).

    Returns:
        ``(z_q, indices)``: z_q of shape (..., d) equal to ``codebook[indices]`` in value, whose
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
        z_e: encoder outputs, shape (N, ..., d).
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
        z_e: encoder outputs, shape (N, ..., d).
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
    check_code_indices(indices, num_codes)
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
        code_dim: d.
        mode: ``"plain"`` or ``"ema"``.
        beta: commitment weight of (vq-loss).
        decay: gamma of (vq-ema).
        eps: Laplace smoothing of the EMA counts: N_k becomes (N_k + eps) / (n + K eps) * n with
            n = sum_k N_k, so a code whose count has decayed to 0 gets e_k = m_k / (a small
            positive number), not 0 / 0.
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
        check_positive_int(num_codes, "num_codes")
        check_positive_int(code_dim, "code_dim")
        check_choice(mode, "mode", CODEBOOK_MODES)
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(f"decay must be a number in [0, 1), got {decay!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"eps must be a number >= 0, got {eps!r}")
        check_positive_int(restart_after, "restart_after", minimum=0)
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
        """Quantize z_e of shape (N, ..., d).

        Returns:
            ``(z_q, indices, {"codebook": ..., "commitment": ...})``: the straight-through z_q
            (N, ..., d), the indices (N, ...), and the two terms of (vq-loss) (unweighted).
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

        n_k counts the vectors of the batch assigned to code k; before dividing, N_k is
        Laplace-smoothed, (N_k + eps) / (n + K eps) * n with n = sum_k N_k, so that a code whose
        count has decayed to 0 gives a finite e_k. A code that no vector chose keeps (nearly) its
        value: m_k and N_k decay together. The statistics are float32 sums computed with autocast
        off, whatever the dtype of ``z_e``.
        """
        if self.mode != "ema":
            raise ValueError(f"ema_update needs mode='ema', this quantizer has mode={self.mode!r}")
        with full_precision(z_e.device):
            flat = z_e.detach().reshape(-1, self.code_dim).float()
            one_hot = F.one_hot(indices.reshape(-1), self.num_codes).float()
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
    (28 -> 14 -> 7), then a 1x1 convolution to d channels: z_e of shape (N, 7, 7, d). Each of the
    49 vectors is quantized to one of K codes. Decoder: the mirror image, ending in a sigmoid.

    Args:
        num_codes: K. code_dim: d. channels: width of the first convolution.
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
        """(N, 1, 28, 28) images in [0, 1] -> z_e, (N, 7, 7, d) continuous encoder outputs.

        Raises:
            ValueError: as ``course_lib.validation.check_images`` (shape, dtype, range).
        """
        check_images(x, "x", shape=IMAGE_SHAPE)
        return self.encoder(x).permute(0, 2, 3, 1)

    @torch.no_grad()
    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images -> (N, 7, 7) code indices (no codebook update)."""
        return nearest_code(self.encode(x), self.quantizer.codebook)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7, d) quantized vectors -> (N, 1, 28, 28) images in [0, 1]."""
        return torch.sigmoid(self.decoder(z_q.permute(0, 3, 1, 2)))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7) code indices -> (N, 1, 28, 28) images in [0, 1]."""
        check_code_indices(indices, self.num_codes)
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


# --------------------------------------------------------------------------- validation helpers
def _check_codebook(z_e: torch.Tensor, codebook: torch.Tensor) -> None:
    if not isinstance(codebook, torch.Tensor) or codebook.ndim != 2:
        raise ValueError(f"codebook must have shape (K, D), got {getattr(codebook, 'shape', type(codebook))}")
    if not isinstance(z_e, torch.Tensor) or z_e.ndim < 1 or z_e.shape[-1] != codebook.shape[1]:
        raise ValueError(f"z_e must have shape (..., {codebook.shape[1]}) to match the codebook, "
                         f"got {tuple(getattr(z_e, 'shape', ()))}")


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
