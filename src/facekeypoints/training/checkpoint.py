"""Atomic checkpoints (write to a temporary file, then rename) and loading with checks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..errors import ModelError


def save_atomic(obj: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint written by :func:`save_atomic`; one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "arch" not in ckpt:
        raise ModelError(f"{path}: not a facekeypoints checkpoint")
    return ckpt


def load_weights(model: torch.nn.Module, ckpt: dict, source: str, key: str = "model") -> None:
    """Load ``ckpt[key]`` into ``model``, refusing a checkpoint of another architecture."""
    arch = getattr(model, "arch", None)
    if ckpt.get("arch") != arch:
        raise ModelError(f"{source}: checkpoint is for architecture {ckpt.get('arch')!r}, not {arch!r}")
    try:
        model.load_state_dict(ckpt[key])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"{source}: weights do not fit architecture {arch!r} ({first})") from None
