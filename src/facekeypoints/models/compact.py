"""Our compact landmark nets: a MobileNetV2-style trunk with a PIP head.

PIP ("pixel-in-pixel") head: on a stride-``s`` grid, each landmark gets a
score map (which cell holds it) and an x/y offset map (where inside that cell,
in cell units). Decoding takes the best cell and adds its offset, or (``window=1``) averages
the cell-plus-offset positions of the 3x3 cells around the best one, weighted
by a softmax of their scores divided by ``temperature``, so the result moves smoothly between cells and
a loss on it reaches scores and offsets alike. Training (see
``training/losses.py``) uses a softmax over cells, an L1 loss on offsets in a
3x3 neighbourhood of the true cell, and optionally an L1 loss on the decoded
points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .blocks import Normalize, conv_bn, stage


class PIPNet(nn.Module):
    head = "pip"

    def __init__(
        self,
        input_size: int = 96,
        widths=(16, 24, 48, 96),
        depths=(2, 3, 2),
        expand: int = 3,
        gray=False,
        window: int = 0,
        head_width: int | None = None,
        temperature: float = 1.0,
        fused: int = 0,
    ):
        super().__init__()
        self.input_size = input_size
        self.stride = 8
        self.window = window  #: 0: best cell only; 1: softmax-weighted 3x3 cells around it
        self.temperature = temperature  #: the window's softmax runs on scores / temperature (>1: flatter)
        # fused: how many of the stride-4 stage's first blocks are one dense 3x3 conv instead of an
        # inverted residual (cheaper on a CPU where the expanded 48x48 maps cost the most memory traffic).
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(Normalize(gray=gray), conv_bn(1 if gray else 3, w0, 3, 2))  # /2
        self.s4 = stage(w0, w1, depths[0], 2, expand, fused)  # /4
        self.s8 = stage(w1, w2, depths[1], 2, expand)  # /8
        self.s16 = stage(w2, w3, depths[2], 2, expand)  # /16
        self.lateral = conv_bn(w3, w2, 1)
        hw = head_width or w2 * 2
        self.fuse = nn.Sequential(conv_bn(w2, w2, 3, groups=w2), conv_bn(w2, hw, 1))
        self.head_out = nn.Conv2d(hw, 68 * 3, 1)

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
        cx = idx % w
        cy = torch.div(idx, w, rounding_mode="floor")
        if self.window:
            r = torch.arange(-self.window, self.window + 1, device=raw.device)
            dy, dx = torch.meshgrid(r, r, indexing="ij")
            nx = cx + dx.reshape(1, 1, -1)  # (N, 68, K) neighbouring cells
            ny = cy + dy.reshape(1, 1, -1)
            inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
            cx, cy = nx.clamp(0, w - 1), ny.clamp(0, h - 1)
            idx = cy * w + cx
            logits = torch.gather(scores, 2, idx).masked_fill(~inside, -1e4)
            weight = torch.softmax(logits / self.temperature, dim=2)
        ox = torch.gather(offsets[:, 0], 2, idx)
        oy = torch.gather(offsets[:, 1], 2, idx)
        s = float(self.stride)
        # Cell (i, j) covers crop pixels [j*s - 0.5, (j+1)*s - 0.5) in x (pixel-centre origin).
        x = (cx.to(raw.dtype) + ox) * s - 0.5
        y = (cy.to(raw.dtype) + oy) * s - 0.5
        if self.window:
            return torch.stack([(x * weight).sum(2), (y * weight).sum(2)], dim=2)
        return torch.stack([x.squeeze(2), y.squeeze(2)], dim=2)


@register("pip-s")
def pip_s() -> nn.Module:
    """96x96 RGB, stride-8 PIP head, best-cell decode (the architecture of bundled model v1)."""
    return PIPNet(96)


@register("pip-s2")
def pip_s2() -> nn.Module:
    """96x96 RGB: pip-s's trunk one block deeper at stride 8 and 16, a 64-wide head, the soft 3x3 decode.

    The decode's temperature 2 was chosen on the validation people (bench/results/architecture_sweep.md).
    """
    return PIPNet(96, depths=(2, 4, 3), window=1, head_width=64, temperature=2.0)


@register("pip-s3")
def pip_s3() -> nn.Module:
    """96x96 RGB: pip-s2 with its first stride-4 block a dense 3x3 conv (cheaper on a CPU), one more
    block at stride 8 and at stride 16 (depths 2, 5, 4), the same 64-wide head and T = 2 decode."""
    return PIPNet(96, depths=(2, 5, 4), window=1, head_width=64, temperature=2.0, fused=1)


@register("pip-m")
def pip_m() -> nn.Module:
    """Wider/deeper trunk, 112x112 input."""
    return PIPNet(112, widths=(16, 32, 64, 128), depths=(2, 4, 3), expand=4)
