"""One training loop for every chapter: tqdm progress, per-epoch history, optional validation.

A chapter supplies ``objective(model, batch) -> dict`` whose ``"loss"`` entry is minimised;
every other entry (a VAE's reconstruction and KL terms, a VQ-VAE's perplexity) is logged.
A batch is a tensor, or a tuple of tensors when the data is (e.g. images and labels).
A game with two losses (a GAN) passes its own ``update`` step; the loop stays the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from course_lib.runtime import as_device, autocast, float64_cpu, seed_everything, tqdm
from course_lib.validation import check_choice, check_positive, check_positive_int

History = dict[str, list[float]]
Data = torch.Tensor | tuple[torch.Tensor, ...]
Objective = Callable[[nn.Module, Data], dict[str, torch.Tensor]]
LR_SCHEDULES = (None, "cosine")
POSTFIX_EVERY = 25  # steps between progress-bar updates: reading the loss waits for the device


def batches(data: Data, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
    """Yield mini-batches of the rows of ``data`` (a tensor or a tuple of equal-length tensors),
    in a random order when ``shuffle``."""
    order = torch.randperm(_length(data), generator=generator) if shuffle else torch.arange(_length(data))
    for start in range(0, _length(data), batch_size):
        rows = order[start:start + batch_size]
        yield tuple(part[rows] for part in data) if isinstance(data, tuple) else data[rows]


def to_device(batch: Data, device: str | torch.device) -> Data:
    """``batch`` (a tensor or a tuple of tensors) on ``device``."""
    device = as_device(device)
    if isinstance(batch, tuple):
        return tuple(part.to(device, non_blocking=True) for part in batch)
    return batch.to(device, non_blocking=True)


def _length(data: Data) -> int:
    return len(data[0]) if isinstance(data, tuple) else len(data)


def _check_data(data, name: str) -> None:
    parts = data if isinstance(data, tuple) else (data,)
    if not parts or not all(isinstance(part, torch.Tensor) for part in parts):
        raise ValueError(f"{name} must be a tensor or a tuple of tensors, got {type(data).__name__}")
    if len({len(part) for part in parts}) != 1:
        raise ValueError(f"{name}'s tensors must have the same length, got {[len(part) for part in parts]}")
    if len(parts[0]) == 0:
        raise ValueError(f"{name} is empty")


def train(
    model: nn.Module,
    objective: Objective,
    train_data: Data,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    val_data: Data | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule: str | None = None,
    update: Callable[[nn.Module, Data], dict[str, torch.Tensor]] | None = None,
    device: str | torch.device | None = None,
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
        train_data: tensor of training examples, shape (N, ...) (e.g. images (N, 1, 28, 28)),
            or a tuple of such tensors of equal length (e.g. images and labels).
        epochs: number of passes over ``train_data``.
        lr: Adam's learning rate (ignored when ``optimizer`` is given).
        batch_size: examples per step.
        val_data: optional held-out tensor, evaluated (no gradient, eval mode) after each epoch.
        optimizer: a ready optimizer, to continue training or use another method.
        lr_schedule: ``None`` (constant) or ``"cosine"``: the learning rate decays along a cosine
            to 0 over all steps (Loshchilov and Hutter 2017), large steps first, then small ones.
        update: a custom step ``update(model, batch) -> {name: scalar}`` that does its own
            backward passes and optimizer steps, for a game of two losses such as a GAN's; the
            loop then uses neither ``objective`` nor an optimizer of its own for training
            (``objective`` still scores ``val_data``).
        device: where to train, a str or torch.device; ``None`` picks ``get_device()``.
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
        ValueError: if ``epochs`` or ``batch_size`` is not a positive int, ``lr`` is not positive,
            ``lr_schedule`` is unknown, or the data is empty or of unequal lengths.
    """
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive(lr, "lr")
    check_choice(lr_schedule, "lr_schedule", LR_SCHEDULES)
    _check_data(train_data, "train_data")
    if val_data is not None:
        _check_data(val_data, "val_data")
    device = as_device(device)
    generator = seed_everything(seed)
    model.to(device)
    n = _length(train_data)
    steps_per_epoch = -(-n // batch_size)
    if update is None:
        optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
        scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
                     if lr_schedule == "cosine" else None)
        update = _objective_step(objective, optimizer, scheduler, device, amp)
    history = history if history is not None else {}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        sums: dict[str, list[torch.Tensor]] = {}
        steps = tqdm(
            batches(train_data, batch_size, shuffle=True, generator=generator),
            total=steps_per_epoch, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False,
        )
        for i, batch in enumerate(steps):
            terms = update(model, to_device(batch, device))
            _accumulate(sums, terms, _length(batch))
            if progress and i % POSTFIX_EVERY == 0 and "loss" in terms:
                steps.set_postfix(loss=f"{float(terms['loss'].detach()):.3f}")
        for name, total in sums.items():  # one read from the device per epoch
            history.setdefault(f"train_{name}", []).append(_total(total) / n)
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


def _objective_step(objective: Objective, optimizer, scheduler, device: torch.device, amp: bool):
    """The usual step: minimise ``objective(model, batch)["loss"]`` by one optimizer step."""

    def step(model: nn.Module, batch: Data) -> dict[str, torch.Tensor]:
        with autocast(device, amp):
            terms = objective(model, batch)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return terms

    return step


_CHUNK_RESERVED = ("epochs", "optimizer", "history", "seed", "lr_schedule", "update")


def train_in_chunks(
    model: nn.Module,
    objective: Objective,
    data: Data,
    *,
    chunk_size: int,
    passes: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    **train_kwargs,
) -> History:
    """``train`` over successive chunks of ``chunk_size`` shuffled examples: one history entry per chunk.

    Each pass shuffles ``data`` (a generator seeded with ``seed``) and cuts it into
    ``len(data) // chunk_size`` chunks (the last ``len(data) % chunk_size`` examples of the shuffle
    sit that pass out); each chunk is one epoch of :func:`train` with one shared Adam optimizer. So
    the run is a single training whose history is logged every ``chunk_size`` examples instead of
    once per pass: a short run still shows how a quantity (a codebook's usage) evolves.

    Args:
        model, objective: as :func:`train`.
        data: the training examples, a tensor or a tuple of equal-length tensors.
        chunk_size: examples per chunk, an int in [1, len(data)].
        passes: number of passes over ``data``.
        lr: Adam's learning rate. batch_size: examples per step.
        seed: seeds the shuffles; chunk i (counted from 0 over all passes) trains with ``seed + i``.
        **train_kwargs: passed to :func:`train` (``val_data``, ``device``, ``amp``, ``on_epoch_end``,
            ``progress``); not ``epochs``, ``optimizer``, ``history``, ``seed``, ``lr_schedule`` or
            ``update``, which this function sets or does not support.

    Returns:
        The history, ``passes * (len(data) // chunk_size)`` values per entry, one per chunk.

    Raises:
        ValueError: if ``chunk_size`` is not an int in [1, len(data)], ``passes`` is not a positive
            int, ``train_kwargs`` names an argument listed above, or as :func:`train`.

    Example:
        >>> model = nn.Linear(1, 1)
        >>> def objective(m, batch):
        ...     return {"loss": (m(batch[:, :1]) - batch[:, 1:]).pow(2).mean()}
        >>> data = torch.linspace(0, 1, 10).repeat(2, 1).T  # y = x
        >>> history = train_in_chunks(model, objective, data, chunk_size=4, passes=3, progress=False, device="cpu")
        >>> len(history["train_loss"])  # 3 passes of 10 // 4 = 2 chunks
        6
    """
    _check_data(data, "data")
    n = _length(data)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= n:
        raise ValueError(f"chunk_size must be an int in [1, {n}] (the length of data), got {chunk_size!r}")
    check_positive_int(passes, "passes")
    reserved = sorted(set(train_kwargs) & set(_CHUNK_RESERVED))
    if reserved:
        raise ValueError(f"train_in_chunks sets or does not support {reserved}; pass only other arguments of train")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history: History = {}
    step = 0
    for _ in range(passes):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - chunk_size + 1, chunk_size):
            rows = order[start:start + chunk_size]
            chunk = tuple(part[rows] for part in data) if isinstance(data, tuple) else data[rows]
            train(model, objective, chunk, epochs=1, optimizer=optimizer, batch_size=batch_size, seed=seed + step,
                  history=history, **train_kwargs)
            step += 1
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module, objective: Objective, data: Data, *, batch_size: int = 500,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Average each entry of ``objective`` over ``data`` (eval mode, no gradient).

    Returns:
        ``{name: mean over examples}`` (batches are weighted by their size, so the last,
        smaller batch counts exactly as much as its examples).
    """
    _check_data(data, "data")
    device = as_device(device, default=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    sums: dict[str, list[torch.Tensor]] = {}
    for batch in batches(data, batch_size, shuffle=False):
        _accumulate(sums, objective(model, to_device(batch, device)), _length(batch))
    model.train(was_training)
    return {name: _total(total) / _length(data) for name, total in sums.items()}


def _accumulate(sums: dict[str, list[torch.Tensor]], terms: dict[str, torch.Tensor], n: int) -> None:
    """Keep ``n`` times each scalar term, still on the device: no synchronisation per step."""
    for name, value in terms.items():
        sums.setdefault(name, []).append(torch.as_tensor(value).detach().reshape(()).float() * n)


def _total(values: list[torch.Tensor]) -> float:
    """The sum of the kept terms, read once, added in float64 on the CPU."""
    return float(float64_cpu(torch.stack(values)).sum())
