"""Save and load trained models, with a SHA-256 manifest so a corrupt file is caught.

The course ships small pretrained checkpoints in ``course_lib/pretrained/``; each is trained
by ``scripts/train_checkpoints.py`` from a seed, and ``manifest.json`` records its hash,
the model class and its arguments, the training recipe and the measured test metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from pathlib import Path

import torch
from torch import nn

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
MANIFEST = PRETRAINED_DIR / "manifest.json"


class ChecksumError(RuntimeError):
    """A checkpoint's bytes do not match the hash recorded for it."""


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **info) -> str:
    """Write ``model``'s weights and ``info`` (plain data: numbers, strings, lists, dicts).

    Args:
        path: destination ``.pt`` file.
        model: the trained model; its class and ``init_kwargs`` (if given in ``info``) let
            ``load_pretrained`` rebuild it.
        **info: e.g. ``init_kwargs={...}``, ``history={...}``, ``metrics={...}``.

    Returns:
        The file's SHA-256, to record in a manifest.
    """
    cls = type(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"state_dict": state, "model_class": f"{cls.__module__}:{cls.__qualname__}", **info}
    torch.save(payload, path)
    return sha256_of(path)


def load_checkpoint(path: str | os.PathLike, expected_sha256: str | None = None) -> dict:
    """Read a checkpoint safely (``torch.load(weights_only=True)``), checking its hash first.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ChecksumError: if ``expected_sha256`` is given and the file's hash differs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train it with scripts/train_checkpoints.py")
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256:
            raise ChecksumError(
                f"checkpoint {path} has SHA-256 {actual}, but the manifest records {expected_sha256}: "
                "the file is corrupt or was retrained without updating the manifest. "
                "Restore it (git checkout) or retrain with scripts/train_checkpoints.py."
            )
    return torch.load(path, map_location="cpu", weights_only=True)


def read_manifest(manifest: str | os.PathLike = MANIFEST) -> dict:
    """The manifest as a dict: {checkpoint name: {"file", "sha256", ...}}."""
    manifest = Path(manifest)
    return json.loads(manifest.read_text()) if manifest.is_file() else {}


def register_checkpoint(name: str, path: str | os.PathLike, sha256: str, manifest=MANIFEST, **entry) -> None:
    """Record (or replace) ``name`` in the manifest, with the file's hash and ``entry``.

    A lock file serialises the read-modify-write, so trainings that finish together keep both entries.
    """
    manifest = Path(manifest)
    with file_lock(manifest.with_suffix(".lock")):
        data = read_manifest(manifest)
        data[name] = {"file": Path(path).name, "sha256": sha256, **entry}
        manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive lock on ``path`` (created if missing) for the block, so that two trainings
    writing the manifest at once do not lose an entry. POSIX uses ``fcntl.flock``, Windows
    ``msvcrt.locking``: both are imported here, not at module level, so course_lib imports everywhere."""
    with open(path, "a+b") as handle:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # retries for about 10 s, then raises OSError
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def load_pretrained(name: str, device: torch.device | str = "cpu", manifest=MANIFEST) -> tuple[nn.Module, dict]:
    """Rebuild a shipped model and load its verified weights.

    Args:
        name: a key of the manifest, e.g. ``"autoencoder_latent2"``.
        device: where to put the model.

    Returns:
        ``(model, checkpoint)``: the model in eval mode, and the checkpoint dict (its
        ``history``, ``metrics`` and ``init_kwargs``).

    Raises:
        KeyError: if ``name`` is not in the manifest (the message lists the names).
        ChecksumError: if the file does not match its recorded hash.
    """
    entries = read_manifest(manifest)
    if name not in entries:
        raise KeyError(f"no pretrained checkpoint {name!r}; available: {sorted(entries)}")
    entry = entries[name]
    ckpt = load_checkpoint(Path(manifest).parent / entry["file"], entry["sha256"])
    module_name, class_name = ckpt["model_class"].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls(**ckpt.get("init_kwargs", {}))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt
