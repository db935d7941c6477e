"""Our compact landmark nets: a MobileNetV2-style trunk with a PIP head.

PIP ("pixel-in-pixel") head: on a stride-``s`` grid, each landmark gets a
score map (which cell holds it) and an x/y offset map (where inside that cell,
in cell units). Decoding takes the best cell and adds its offset; training
(see ``training/losses.py``) uses a softmax over cells and an L1 loss on
offsets in a 3x3 neighbourhood of the true cell, so a neighbouring argmax still
lands close.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .blocks import Normalize, conv_bn, stage


class PIPNet(nn.Module):
    head = "pip"

    def __init__(self, input_size: int = 96, widths=(16, 24, 48, 96), depths=(2, 3, 2), expand: int = 3, gray=False):
        super().__init__()
        self.input_size = input_size
        self.stride = 8
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(Normalize(gray=gray), conv_bn(1 if gray else 3, w0, 3, 2))  # /2
        self.s4 = stage(w0, w1, depths[0], 2, expand)  # /4
        self.s8 = stage(w1, w2, depths[1], 2, expand)  # /8
        self.s16 = stage(w2, w3, depths[2], 2, expand)  # /16
        self.lateral = conv_bn(w3, w2, 1)
        self.fuse = nn.Sequential(conv_bn(w2, w2, 3, groups=w2), conv_bn(w2, w2 * 2, 1))
        self.head_out = nn.Conv2d(w2 * 2, 68 * 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s4(self.stem(x))
        f8 = self.s8(x)
        f16 = self.s16(f8)
        up = F.interpolate(self.lateral(f16), scale_factor=2.0, mode="nearest")
        return self.head_out(self.fuse(f8 + up))  # (N, 204, H, W): 68 scores, 68 dx, 68 dy

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        n, _, h, w = raw.shape
        scores = raw[:, :68].reshape(n, 68, h * w)
        offsets = raw[:, 68:].reshape(n, 2, 68, h * w)
        idx = scores.argmax(dim=2, keepdim=True)  # (N, 68, 1)
        ox = torch.gather(offsets[:, 0], 2, idx).squeeze(2)
        oy = torch.gather(offsets[:, 1], 2, idx).squeeze(2)
        idx = idx.squeeze(2)
        cx = (idx % w).to(raw.dtype)
        cy = torch.div(idx, w, rounding_mode="floor").to(raw.dtype)
        s = float(self.stride)
        # Cell (i, j) covers crop pixels [j*s - 0.5, (j+1)*s - 0.5) in x (pixel-centre origin).
        x = (cx + ox) * s - 0.5
        y = (cy + oy) * s - 0.5
        return torch.stack([x, y], dim=2)


@register("pip-s")
def pip_s() -> nn.Module:
    """~96x96 RGB, stride-8 PIP head."""
    return PIPNet(96)


@register("pip-m")
def pip_m() -> nn.Module:
    """Wider/deeper trunk, 112x112 input."""
    return PIPNet(112, widths=(16, 32, 64, 128), depths=(2, 4, 3), expand=4)
