"""Torch architectures behind a registry: ``create(name)`` builds one by name.

Every model takes float RGB (N, 3, S, S) with values in [0, 255] and exposes
``input_size`` (S), ``head`` ("regression" or "pip"), ``forward`` (raw
outputs, what the loss sees) and ``decode`` (raw outputs -> (N, 68, 2)
keypoints in crop pixels, x then y). :class:`InferenceModel` chains both,
which is what gets exported to ONNX.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

_REGISTRY: dict[str, Callable[[], nn.Module]] = {}


def register(name: str):
    """Decorator registering a model factory under ``name``."""

    def deco(fn: Callable[[], nn.Module]):
        _REGISTRY[name] = fn
        return fn

    return deco


def available() -> list[str]:
    """Names of all registered architectures."""
    return sorted(_REGISTRY)


def create(name: str) -> nn.Module:
    """Build the architecture registered as ``name`` (randomly initialised)."""
    from ..errors import ModelError

    if name not in _REGISTRY:
        raise ModelError(f"unknown architecture {name!r}; valid: {', '.join(available())}")
    model = _REGISTRY[name]()
    model.arch = name
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class InferenceModel(nn.Module):
    """forward + decode: float RGB (N, 3, S, S) in [0, 255] -> (N, 68, 2) crop pixels; with
    ``scores`` (for a model with ``decode_with_scores``: the PIP nets) the pair of that and the
    (N, 68) landmark scores in [0, 1]."""

    def __init__(self, model: nn.Module, scores: bool = False):
        super().__init__()
        self.model = model
        self.scores = scores and can_score(model)

    def forward(self, x: torch.Tensor):
        raw = self.model(x)
        if self.scores:
            return self.model.decode_with_scores(raw)
        return self.model.decode(raw)


def can_score(model: nn.Module) -> bool:
    """Whether ``model`` answers landmark scores (``decode_with_scores``)."""
    return hasattr(model, "decode_with_scores")


from . import compact, seed  # noqa: E402,F401  (registers the architectures)

__all__ = ["register", "create", "available", "count_parameters", "InferenceModel"]
