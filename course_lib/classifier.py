"""A small Fashion-MNIST classifier: the course's offline, in-domain feature extractor for FID and IS.

FID and the Inception Score are usually computed with an ImageNet InceptionV3 (book equations (fid),
(inception-score)); its weights cannot always be downloaded, and ImageNet features are a poor judge of
28x28 grey clothes. The course therefore ships a classifier trained on Fashion-MNIST
(``scripts/train_checkpoints.py fashion_classifier``): its penultimate features give a *domain FID*
and its softmax a *domain IS*. Numbers from it are comparable only with numbers from the same
checkpoint; they are not the FID/IS of papers.

Every extractor (this one and ``course_lib.fid.InceptionV3``) offers the same interface:
``features(images) -> (N, D)`` and ``probs(images) -> (N, K)``, both float64 on the CPU, computed in
batches without gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.metrics import check_images

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


@torch.no_grad()
def extract(model: FashionClassifier, images: torch.Tensor, what: str = "features",
            batch_size: int = 500) -> torch.Tensor:
    """Run the classifier in eval mode over ``images`` in batches.

    Args:
        model: a ``FashionClassifier`` (its device is used).
        images: (N, 1, 28, 28) in [0, 1], on any device.
        what: ``"features"`` (penultimate, (N, feature_dim)), ``"logits"`` or ``"probs"`` ((N, 10)), or
            ``"both"``: the tuple (features, probs) from one pass.
        batch_size: images per forward pass.

    Returns:
        float64 tensor on the CPU (a tuple of two for ``"both"``).

    Raises:
        ValueError: for a wrong shape, NaN/inf, values outside [0, 1] or an unknown ``what``.

    Example:
        >>> extract(FashionClassifier(), torch.zeros(3, 1, 28, 28), "logits").shape
        torch.Size([3, 10])
    """
    if what not in ("features", "logits", "probs", "both"):
        raise ValueError(f"what must be 'features', 'logits', 'probs' or 'both', got {what!r}")
    check_images(images, "images", shape=(1, 28, 28))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    feats, outs = [], []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device, torch.float32)
        h = model.embed(x)
        if what in ("features", "both"):
            feats.append(h.double().cpu())
        if what != "features":
            logits = model.head(h).double()
            outs.append((logits if what == "logits" else torch.softmax(logits, dim=1)).cpu())
    model.train(was_training)
    if what == "both":
        return torch.cat(feats), torch.cat(outs)
    return torch.cat(feats if what == "features" else outs)


def train_classifier(model: FashionClassifier, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 4,
                     lr: float = 2e-3, batch_size: int = 128, seed: int = 0,
                     x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
                     device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Train with Adam on the cross-entropy, the learning rate decayed by a cosine to 0.

    Args:
        model: the classifier, trained in place.
        x, y: images (N, 1, 28, 28) in [0, 1] and int64 labels (N,).
        epochs, lr, batch_size, seed: the recipe.
        x_val, y_val: optional validation set, evaluated after each epoch.
        device: where to train.

    Returns:
        History: ``train_loss``, ``train_accuracy`` (and ``val_accuracy``) per epoch.

    Raises:
        ValueError: if x and y have different lengths.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((x.shape[0] + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history: dict[str, list[float]] = {"train_loss": [], "train_accuracy": []}
    for _ in range(epochs):
        model.train()
        order = torch.randperm(x.shape[0], generator=g)
        total, correct, count = 0.0, 0, 0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            count += len(idx)
        history["train_loss"].append(total / count)
        history["train_accuracy"].append(correct / count)
        if x_val is not None and y_val is not None:
            history.setdefault("val_accuracy", []).append(accuracy(model, x_val, y_val))
    model.eval()
    return history


def accuracy(model: FashionClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` whose most probable class is ``y``."""
    logits = extract(model, x, "logits")
    return float((logits.argmax(1) == y.cpu()).double().mean())


def load_fashion_classifier(device: torch.device | str = "cpu") -> FashionClassifier:
    """The shipped ``fashion_classifier`` checkpoint (hash-checked), in eval mode."""
    from course_lib.checkpoints import load_pretrained

    model, _ = load_pretrained("fashion_classifier", device)
    return model
