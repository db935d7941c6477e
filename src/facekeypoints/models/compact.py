"""Our compact landmark nets: a MobileNetV2-style trunk with a PIP head.

PIP ("pixel-in-pixel") head: on a stride-``s`` grid, each landmark gets a
score map (which cell holds it) and an x/y offset map (where inside that cell,
in cell units). Decoding takes the best cell and adds its offset, or (``window=1``) averages
the cell-plus-offset positions of the 3x3 cells around the best one (moved inward at the grid's
border), weighted by a softmax of their scores divided by ``temperature``, so the result moves
smoothly between cells and a loss on it reaches scores and offsets alike. Training (see
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
        stem: str = "conv",
    ):
        super().__init__()
        self.input_size = input_size
        self.stride = 8
        self.window = window  #: 0: best cell only; 1: softmax-weighted 3x3 cells around it
        self.temperature = temperature  #: the window's softmax runs on scores / temperature (>1: flatter)
        # fused: how many of the stride-4 stage's first blocks are one dense 3x3 conv instead of an
        # inverted residual (cheaper on a CPU where the expanded 48x48 maps cost the most memory traffic).
        # stem "conv": a 3x3 stride-2 conv to w0 channels, then the stride-4 stage halves again;
        # "patch": a 4x4 stride-4 conv straight to w1 channels (no 48x48 map), then the stage at stride 1.
        w0, w1, w2, w3 = widths
        cin = 1 if gray else 3
        if stem == "patch":
            self.stem = nn.Sequential(Normalize(gray=gray), conv_bn(cin, w1, 4, 4, pad=0))  # /4
            self.s4 = stage(w1, w1, depths[0], 1, expand, fused)
        else:
            self.stem = nn.Sequential(Normalize(gray=gray), conv_bn(cin, w0, 3, 2))  # /2
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
        return self.decode_with_scores(raw)[0]

    def decode_with_scores(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(points (N, 68, 2) crop pixels, scores (N, 68) in [0, 1])``.

        A landmark's score is the probability mass, under the softmax over all cells its cell
        classifier was trained with, that lies in the 3x3 cells around its best cell: near 1 when
        the model is sure where the point is, low when its evidence is spread over the face (an
        occluded or ambiguous point, a crop that holds no face)."""
        _, _, h, w = raw.shape
        scores = raw[:, :68].reshape(-1, 68, h * w)
        offsets = raw[:, 68:].reshape(-1, 2, 68, h * w)
        idx = scores.argmax(dim=2, keepdim=True)  # (N, 68, 1)
        cx = idx % w
        cy = torch.div(idx - cx, w, rounding_mode="trunc")  # exact here; one ONNX node (a floor division is several)
        s = float(self.stride)
        prob = torch.softmax(scores, dim=2)
        # the 3x3 cells around the best one, moved inward at the grid's border (as the window below)
        bx, by = cx.clamp(1, w - 2), cy.clamp(1, h - 2)
        near = torch.arange(-1, 2, device=raw.device)
        ny3, nx3 = torch.meshgrid(near, near, indexing="ij")
        cells3 = (by + ny3.reshape(1, 1, -1)) * w + bx + nx3.reshape(1, 1, -1)
        confidence = torch.gather(prob, 2, cells3).sum(2)
        if not self.window:
            ox = torch.gather(offsets[:, 0], 2, idx)
            oy = torch.gather(offsets[:, 1], 2, idx)
            # Cell (i, j) covers crop pixels [j*s - 0.5, (j+1)*s - 0.5) in x (pixel-centre origin).
            pts = torch.stack([(cx.to(raw.dtype) + ox), (cy.to(raw.dtype) + oy)], dim=2).squeeze(3) * s - 0.5
            return pts, confidence
        # The window is centred on the best cell, moved inward when that cell is on the grid's border so
        # that the whole window lies inside (it still holds the best cell). Under the "gt" crops fewer than
        # 1 point in 1000 has its best cell on the border, and moving the window there changed no score
        # (bench/results/architecture_sweep.md); it saves masking out the cells outside the grid.
        r = self.window
        cx, cy = cx.clamp(r, w - 1 - r), cy.clamp(r, h - 1 - r)
        steps = torch.arange(-r, r + 1, device=raw.device)
        dy, dx = torch.meshgrid(steps, steps, indexing="ij")
        nx = cx + dx.reshape(1, 1, -1)  # (N, 68, K) the window's cells
        ny = cy + dy.reshape(1, 1, -1)
        cells = ny * w + nx
        weight = torch.softmax(torch.gather(scores, 2, cells) / self.temperature, dim=2)
        x = ((nx.to(raw.dtype) + torch.gather(offsets[:, 0], 2, cells)) * weight).sum(2)
        y = ((ny.to(raw.dtype) + torch.gather(offsets[:, 1], 2, cells)) * weight).sum(2)
        return torch.stack([x, y], dim=2) * s - 0.5, confidence


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


@register("pip-s4")
def pip_s4() -> nn.Module:
    """Candidate (not bundled): a 4x4 stride-4 "patchify" stem, one inverted residual at stride 4, depths
    5 and 5 at strides 8 and 16, the 64-wide head and T = 2 decode (bench/results/architecture_sweep.md)."""
    return PIPNet(96, depths=(1, 5, 5), window=1, head_width=64, temperature=2.0, stem="patch")


@register("pip-w")
def pip_w() -> nn.Module:
    """96x96 RGB: pip-s3's depths (2, 5, 4, first stride-4 block dense) with wider stride-4/8/16 stages
    (32, 64, 128 channels) and a 96-wide head, T = 2 decode: 517 k parameters, about 1.5x pip-s2's time.
    On 300-W's training faces pip-s2 fits hardly better than it does held-out photos (3.62 % against
    3.88 % NME_io), so it is short of capacity, not of data (bench/results/architecture_sweep.md)."""
    return PIPNet(96, widths=(16, 32, 64, 128), depths=(2, 5, 4), window=1, head_width=96, temperature=2.0, fused=1)


@register("pip-w112")
def pip_w112() -> nn.Module:
    """The bundled model v9's: ``pip-w`` at 112x112 input (the same 517 k parameters, about 1.3x its time
    per model run). At 96x96 a held-out real face's points were off by about 1.2 input pixels, so the
    crop's resolution could bind; at 112 the held-out error fell 3.85 -> 3.75 % on 300-W photos
    (bench/results/architecture_sweep.md)."""
    return PIPNet(112, widths=(16, 32, 64, 128), depths=(2, 5, 4), window=1, head_width=96, temperature=2.0, fused=1)


@register("pip-m")
def pip_m() -> nn.Module:
    """Wider/deeper trunk, 112x112 input."""
    return PIPNet(112, widths=(16, 32, 64, 128), depths=(2, 4, 3), expand=4)
