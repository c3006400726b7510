"""A small Fashion-MNIST classifier: the course's offline, in-domain feature extractor for FID and IS.

FID and the Inception Score are usually computed with an ImageNet InceptionV3 (book equations (fid),
(inception-score)); its weights cannot always be downloaded, and ImageNet features are a poor judge of
28x28 grey clothes. The course therefore ships a classifier trained on Fashion-MNIST
(``scripts/train_checkpoints.py fashion_classifier``): its penultimate features give a *domain FID*
and its softmax a *domain IS*. Numbers from it are comparable only with numbers from the same
checkpoint; they are not the FID/IS of papers.

Every extractor (this one and ``course_lib.inception.InceptionV3``) offers the same interface:
``features(images) -> (N, D)`` and ``probs(images) -> (N, K)``, both float64 CPU tensors (float64
work happens on the CPU: Apple's MPS has none), computed in batches without gradients from images
on any device.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.runtime import as_device, float64_cpu, full_precision
from course_lib.training import train
from course_lib.validation import check_choice, check_images, check_positive_int

FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # mean and std of the training pixels


class FashionClassifier(nn.Module):
    """Conv(32)-BN-ReLU-pool, Conv(64)-BN-ReLU-pool, Linear(3136 -> feature_dim)-ReLU, Linear(-> 10).

    Args:
        feature_dim: width of the penultimate layer (the FID features).
        num_classes: 10 for Fashion-MNIST.

    Shapes:
        ``forward(x)``: x of shape (N, 1, 28, 28) in [0, 1]; returns logits (N, num_classes).

    Example:
        >>> model = FashionClassifier().eval()
        >>> x = torch.rand(5, 1, 28, 28)
        >>> model.features(x).shape, model.probs(x).shape, round(float(model.probs(x).sum(1)[0]), 6)
        (torch.Size([5, 128]), torch.Size([5, 10]), 1.0)
    """

    def __init__(self, feature_dim: int = 128, num_classes: int = 10):
        super().__init__()
        self.feature_dim, self.num_classes = feature_dim, num_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(feature_dim, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, feature_dim), with gradients; x in [0, 1]."""
        return self.body((x - FASHION_MEAN) / FASHION_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def features(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Penultimate features for FID: (N, feature_dim) float64; see ``extract``."""
        return extract(self, images, "features", batch_size)

    def probs(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Class probabilities p(y|x) for IS: (N, num_classes) float64, rows sum to 1; see ``extract``."""
        return extract(self, images, "probs", batch_size)

    def features_and_probs(self, images: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features(images), probs(images))`` in one pass over the images."""
        return extract(self, images, "both", batch_size)


EXTRACT_WHAT = ("features", "logits", "probs", "both")


@torch.no_grad()
def extract(model: FashionClassifier, images: torch.Tensor, what: str = "features",
            batch_size: int = 500) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Run the classifier in eval mode over ``images`` in batches.

    Args:
        model: a ``FashionClassifier`` (its device is used).
        images: (N, 1, 28, 28) in [0, 1], on any device.
        what: ``"features"`` (penultimate, (N, feature_dim)), ``"logits"`` or ``"probs"`` ((N, 10)), or
            ``"both"``: the tuple (features, probs) from one pass.
        batch_size: images per forward pass.

    Returns:
        A float64 CPU tensor (a tuple of two for ``"both"``): the network runs in float32 on its
        device (even inside a bf16 autocast region), each batch's output is then moved to the CPU in
        float64 (softmax included).

    Raises:
        ValueError: for a wrong shape, an empty batch, NaN/inf, values outside [0, 1], an unknown
            ``what`` or a ``batch_size`` that is not a positive int.

    Example:
        >>> extract(FashionClassifier(), torch.zeros(3, 1, 28, 28), "logits").shape
        torch.Size([3, 10])
    """
    check_choice(what, "what", EXTRACT_WHAT)
    check_images(images, "images", shape=(1, 28, 28))
    check_positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    feats, outs = [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device, torch.float32)
        with full_precision(device):  # features for a measurement: float32 even under bf16 autocast
            h = model.embed(x)
            logits = model.head(h) if what != "features" else None
        if what in ("features", "both"):
            feats.append(float64_cpu(h))
        if logits is not None:
            logits = float64_cpu(logits)  # float64 only on the CPU (MPS has none)
            outs.append(logits if what == "logits" else torch.softmax(logits, dim=1))
    model.train(was_training)
    if what == "both":
        return torch.cat(feats), torch.cat(outs)
    return torch.cat(feats if what == "features" else outs)


def classification_objective(model: FashionClassifier, batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """``training.train``'s objective: the cross-entropy to minimise, and the batch's accuracy (logged).

    Args:
        model: the classifier.
        batch: ``(images, labels)``, images (B, 1, 28, 28) in [0, 1], int64 labels (B,).

    Returns:
        ``{"loss": mean cross-entropy, "accuracy": fraction of correct argmax predictions}``, 0-dim tensors.

    Example:
        >>> x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
        >>> sorted(classification_objective(FashionClassifier().eval(), (x, y)))
        ['accuracy', 'loss']
    """
    x, y = batch
    logits = model(x)
    return {"loss": nn.functional.cross_entropy(logits, y),
            "accuracy": (logits.detach().argmax(1) == y).float().mean()}


def train_classifier(model: FashionClassifier, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 4,
                     lr: float = 2e-3, batch_size: int = 128, seed: int = 0,
                     x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
                     device: str | torch.device = "cpu", progress: bool = False) -> dict[str, list[float]]:
    """Train with Adam on the cross-entropy, the learning rate decayed per step by a cosine to 0.

    The loop is ``course_lib.training.train`` (tuple data ``(x, y)``, ``lr_schedule="cosine"``), which
    seeds the global RNGs with ``seed`` as it documents. It runs in float32 (no mixed precision).
    The model is left in eval mode.

    Args:
        model: the classifier, trained in place.
        x, y: images (N, 1, 28, 28) in [0, 1] and int64 labels (N,).
        epochs, lr, batch_size, seed: the recipe.
        x_val, y_val: optional validation set, evaluated after each epoch.
        device: where to train, a str or torch.device.
        progress: show ``training.train``'s progress bars.

    Returns:
        History, one value per epoch: ``train_loss``, ``train_accuracy`` (the running accuracy over the
        epoch's batches), ``val_loss`` and ``val_accuracy`` when a validation set is given, and
        ``epoch_seconds``.

    Raises:
        ValueError: if x and y (or x_val and y_val) have different lengths, only one of x_val and
            y_val is given, x is not a batch of images in [0, 1], or the recipe is invalid.
    """
    check_images(x, "x", shape=(1, 28, 28))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    if (x_val is None) != (y_val is None):
        raise ValueError("x_val and y_val must be given together")
    val_data = None
    if x_val is not None:
        check_images(x_val, "x_val", shape=(1, 28, 28))
        if x_val.shape[0] != y_val.shape[0]:
            raise ValueError(f"x_val and y_val must have the same length, got {x_val.shape[0]} and {y_val.shape[0]}")
        val_data = (x_val, y_val)
    history = train(model, classification_objective, (x, y), epochs=epochs, lr=lr, batch_size=batch_size,
                    val_data=val_data, lr_schedule="cosine", device=as_device(device), amp=False, seed=seed,
                    progress=progress)
    model.eval()
    return history


def accuracy(model: FashionClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` whose most probable class is ``y``.

    Example:
        >>> accuracy(FashionClassifier(), torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)) in (0.0, 1.0)
        True
    """
    logits = extract(model, x, "logits")
    return float((logits.argmax(1) == y.cpu()).double().mean())


def load_fashion_classifier(device: str | torch.device = "cpu") -> FashionClassifier:
    """The shipped ``fashion_classifier`` checkpoint (hash-checked), in eval mode, on ``device`` (a str or
    torch.device)."""
    from course_lib.checkpoints import load_pretrained

    model, _ = load_pretrained("fashion_classifier", as_device(device))
    return model
