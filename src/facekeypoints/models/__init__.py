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
    """forward + decode: float RGB (N, 3, S, S) in [0, 255] -> (N, 68, 2) crop pixels."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.model(x))


from . import compact, seed  # noqa: E402,F401  (registers the architectures)

__all__ = ["register", "create", "available", "count_parameters", "InferenceModel"]
