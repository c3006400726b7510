"""The autoencoder of chapter 1: encoder, latent code, decoder, reconstruction loss.

Book equations: (ae-model) z = f_phi(x), x_hat = g_theta(z); (ae-loss) the reconstruction
loss L(x, x_hat) = ||x - x_hat||^2 summed over pixels and averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.validation import check_images, check_positive_int, check_same_shape

IMAGE_SHAPE = (1, 28, 28)


def conv_encoder(out_features: int, channels: int = 32) -> nn.Sequential:
    """Convolutional encoder for 1x28x28 images: two stride-2 convolutions, then a linear map.

    Shapes: (N, 1, 28, 28) -> (N, channels, 14, 14) -> (N, 2*channels, 7, 7) -> (N, out_features).
    The VAE reuses it with ``out_features = 2 * latent_dim`` (mu and log-variance).
    """
    return nn.Sequential(
        nn.Conv2d(1, channels, kernel_size=4, stride=2, padding=1), nn.ReLU(),  # 28 -> 14
        nn.Conv2d(channels, 2 * channels, kernel_size=4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
        nn.Flatten(),
        nn.Linear(2 * channels * 7 * 7, out_features),
    )


def conv_decoder(latent_dim: int, channels: int = 32) -> nn.Sequential:
    """Mirror of ``conv_encoder``: (N, latent_dim) -> (N, 1, 28, 28) *logits* (no sigmoid).

    Returning logits lets each chapter choose its output: a sigmoid for the autoencoder's
    grey levels, a Bernoulli likelihood for the VAE.
    """
    return nn.Sequential(
        nn.Linear(latent_dim, 2 * channels * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (2 * channels, 7, 7)),
        nn.ConvTranspose2d(2 * channels, channels, kernel_size=4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
        nn.ConvTranspose2d(channels, 1, kernel_size=4, stride=2, padding=1),  # 14 -> 28
    )


class ConvAutoencoder(nn.Module):
    """Deterministic autoencoder, book equation (ae-model): z = f_phi(x), x_hat = g_theta(z).

    Args:
        latent_dim: size of the code z (2 to draw the latent space, 16 for sharper images).
        channels: width of the first convolution.

    Example:
        >>> model = ConvAutoencoder(latent_dim=2)
        >>> x = torch.rand(3, 1, 28, 28)
        >>> model.encode(x).shape, model(x).shape
        (torch.Size([3, 2]), torch.Size([3, 1, 28, 28]))
    """

    def __init__(self, latent_dim: int = 2, channels: int = 32):
        super().__init__()
        check_positive_int(latent_dim, "latent_dim")
        self.latent_dim = latent_dim
        self.encoder = conv_encoder(latent_dim, channels)
        self.decoder = conv_decoder(latent_dim, channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images in [0, 1] -> (N, latent_dim) codes.

        Raises:
            ValueError: as ``course_lib.validation.check_images`` (shape, dtype, range).
        """
        check_images(x, "x", shape=IMAGE_SHAPE)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) codes -> (N, 1, 28, 28) images in [0, 1] (sigmoid output)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Book equation (ae-loss): squared error summed over pixels, averaged over the batch.

    L = (1/N) sum_n ||x_n - x_hat_n||^2. Summing over pixels (not averaging) keeps the loss
    on the scale of one image, the scale the VAE's log-likelihood will have.

    Args:
        x_hat: reconstructions, shape (N, ...).
        x: targets, same shape as ``x_hat``.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if the shapes differ (no silent broadcasting).

    Example:
        >>> x = torch.zeros(2, 1, 2, 2); x_hat = torch.ones(2, 1, 2, 2)
        >>> reconstruction_loss(x_hat, x)
        tensor(4.)
    """
    check_same_shape(x_hat, x, ("x_hat", "x"))
    return (x_hat - x).pow(2).flatten(1).sum(dim=1).mean()


def autoencoder_loss(model: ConvAutoencoder, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Training objective for ``course_lib.training.train``: {"loss": reconstruction loss}."""
    return {"loss": reconstruction_loss(model(x), x)}


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Book equation (conv-size): output length of a convolution, floor((n + 2p - k) / s) + 1.

    Example:
        >>> conv_output_size(28, kernel_size=4, stride=2, padding=1)
        14
    """
    for name, value in (("size", size), ("kernel_size", kernel_size), ("stride", stride)):
        check_positive_int(value, name)
    check_positive_int(padding, "padding", minimum=0)
    if size + 2 * padding < kernel_size:
        raise ValueError(f"kernel_size={kernel_size} is larger than the padded input {size + 2 * padding}")
    return (size + 2 * padding - kernel_size) // stride + 1


def interpolate_codes(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Book equation (ae-interp): z(t) = (1 - t) z0 + t z1 for ``steps`` values of t in [0, 1].

    Args:
        z0, z1: codes of shape (D,).
        steps: number of points, at least 2; the first is z0 and the last z1.

    Returns:
        Tensor of shape (steps, D).

    Example:
        >>> interpolate_codes(torch.tensor([0.0]), torch.tensor([1.0]), 3).squeeze(1)
        tensor([0.0000, 0.5000, 1.0000])
    """
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must be 1-D of equal shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    check_positive_int(steps, "steps", minimum=2)
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).unsqueeze(1)
    return (1 - t) * z0 + t * z1


@torch.no_grad()
def apply_in_batches(model: nn.Module, fn, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``fn(batch)`` over ``images`` in batches, with ``model`` in eval mode and no gradient.

    Each batch is moved to the model's device; the results are concatenated on the CPU and the
    model is put back in the mode it was in.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return torch.cat([fn(images[s:s + batch_size].to(device)).cpu() for s in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def encode_dataset(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Encode (N, 1, 28, 28) images in batches with ``model.encode``; returns (N, D) on the CPU.

    For a VAE, ``encode`` returns the posterior mean mu(x).
    """
    def codes(x):
        out = model.encode(x)
        return out[0] if isinstance(out, tuple) else out

    return apply_in_batches(model, codes, images, batch_size)


def reconstruct_dataset(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Reconstruct (N, 1, 28, 28) images in batches with ``model(x)``; returns images on the CPU."""
    return apply_in_batches(model, model, images, batch_size)
