"""The "seed" baseline: the Udacity project's LeNet-like regressor.

4 x (conv + ReLU + maxpool) with dropout, 2 linear layers, 224x224 grayscale
input, 136 outputs (about 9.4M parameters). Kept so we can show how far we moved.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .blocks import Normalize


class SeedNet(nn.Module):
    head = "regression"
    input_size = 224

    def __init__(self):
        super().__init__()

        def block(cin: int, cout: int, k: int, p: float) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(p))

        self.features = nn.Sequential(
            Normalize(gray=True),
            block(1, 32, 5, 0.1),  # 220 -> 110
            block(32, 64, 3, 0.2),  # 108 -> 54
            block(64, 128, 3, 0.3),  # 52 -> 26
            block(128, 256, 3, 0.4),  # 24 -> 12
        )
        self.regressor = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 12 * 12, 244),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(244, 136),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.regressor(self.features(x))

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Outputs are keypoints normalised as (p - S/2) / (S/4)."""
        s = float(self.input_size)
        return raw.view(-1, 68, 2) * (s / 4.0) + (s - 1) / 2.0


@register("seed")
def seed() -> nn.Module:
    return SeedNet()
