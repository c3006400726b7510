"""One training loop for every chapter: tqdm progress, per-epoch history, optional validation.

A chapter supplies ``objective(model, batch) -> dict`` whose ``"loss"`` entry is minimised;
every other entry (a VAE's reconstruction and KL terms, a VQ-VAE's perplexity) is logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from course_lib.runtime import autocast, get_device, seed_everything, tqdm

History = dict[str, list[float]]
Objective = Callable[[nn.Module, torch.Tensor], dict[str, torch.Tensor]]


def batches(data: torch.Tensor, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
    """Yield mini-batches of the rows of ``data`` (a random order when ``shuffle``)."""
    order = torch.randperm(len(data), generator=generator) if shuffle else torch.arange(len(data))
    for start in range(0, len(data), batch_size):
        yield data[order[start:start + batch_size]]


def train(
    model: nn.Module,
    objective: Objective,
    train_data: torch.Tensor,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    val_data: torch.Tensor | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | None = None,
    amp: bool = True,
    seed: int = 0,
    progress: bool = True,
    history: History | None = None,
    on_epoch_end: Callable[[int, History], None] | None = None,
) -> History:
    """Train ``model`` in place with Adam (Kingma and Ba 2015) and return its history.

    Args:
        model: the network; it is moved to ``device``.
        objective: ``objective(model, x) -> {"loss": scalar, ...}``; other scalar entries are logged.
        train_data: tensor of training examples, shape (N, ...) (e.g. images (N, 1, 28, 28)).
        epochs: number of passes over ``train_data``.
        lr: Adam's learning rate (ignored when ``optimizer`` is given).
        batch_size: examples per step.
        val_data: optional held-out tensor, evaluated (no gradient, eval mode) after each epoch.
        optimizer: a ready optimizer, to continue training or use another method.
        device: where to train; ``None`` picks ``get_device()``.
        amp: bfloat16 mixed precision on CUDA (no effect on CPU/MPS).
        seed: seeds the shuffling and the model's randomness, for repeatable runs.
        progress: show a tqdm bar per epoch.
        history: a history to append to (when continuing a run).
        on_epoch_end: called as ``on_epoch_end(epoch, history)``, e.g. to track codebook usage.

    Returns:
        ``history``: a dict of lists, one value per epoch: ``train_<name>`` for each entry of
        the objective (averaged over examples), ``val_<name>`` when ``val_data`` is given,
        and ``epoch_seconds``.

    Raises:
        ValueError: if ``epochs`` or ``batch_size`` is not a positive int, or the data is empty.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if len(train_data) == 0:
        raise ValueError("train_data is empty")
    device = device or get_device()
    generator = seed_everything(seed)
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history = history if history is not None else {}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        steps = tqdm(
            batches(train_data, batch_size, shuffle=True, generator=generator),
            total=-(-len(train_data) // batch_size), desc=f"epoch {epoch}/{epochs}",
            disable=not progress, leave=False,
        )
        for x in steps:
            x = x.to(device, non_blocking=True)
            with autocast(device, amp):
                terms = objective(model, x)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            _accumulate(sums, terms, len(x))
            steps.set_postfix(loss=f"{terms['loss'].item():.3f}")
        for name, total in sums.items():
            history.setdefault(f"train_{name}", []).append(total / len(train_data))
        if val_data is not None:
            for name, value in evaluate(model, objective, val_data, batch_size=batch_size, device=device).items():
                history.setdefault(f"val_{name}", []).append(value)
        history.setdefault("epoch_seconds", []).append(time.perf_counter() - start)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if progress:
            losses = ", ".join(f"{k.replace('_', ' ')} {v[-1]:.4g}" for k, v in history.items() if k.endswith("loss"))
            tqdm.write(f"epoch {epoch}/{epochs}: {losses} ({history['epoch_seconds'][-1]:.1f} s)")
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module, objective: Objective, data: torch.Tensor, *, batch_size: int = 500,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Average each entry of ``objective`` over ``data`` (eval mode, no gradient).

    Returns:
        ``{name: mean over examples}`` (batches are weighted by their size, so the last,
        smaller batch counts exactly as much as its examples).
    """
    if len(data) == 0:
        raise ValueError("data is empty")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for x in batches(data, batch_size, shuffle=False):
        _accumulate(sums, objective(model, x.to(device)), len(x))
    model.train(was_training)
    return {name: total / len(data) for name, total in sums.items()}


def _accumulate(sums: dict[str, float], terms: dict[str, torch.Tensor], n: int) -> None:
    for name, value in terms.items():
        sums[name] = sums.get(name, 0.0) + float(value.detach()) * n
