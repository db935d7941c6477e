"""Small building blocks shared by the architectures (all ``nn.Sequential``-based)."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(
    cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True, pad: int | None = None
) -> nn.Sequential:
    """Conv -> BatchNorm (-> ReLU6); padding ``k // 2`` unless ``pad`` says otherwise."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2 if pad is None else pad, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4):
        super().__init__()
        mid = cin * expand
        self.block = nn.Sequential(
            conv_bn(cin, mid, 1),
            conv_bn(mid, mid, 3, stride, groups=mid),
            conv_bn(mid, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def stage(cin: int, cout: int, n: int, stride: int, expand: int, fused: int = 0) -> nn.Sequential:
    """``n`` blocks; the first may change width and stride. The first ``fused`` of them are a
    dense 3x3 conv (+BN, ReLU6), the rest MobileNetV2 inverted residuals."""
    blocks: list[nn.Module] = []
    for k in range(n):
        c, s = (cin, stride) if k == 0 else (cout, 1)
        blocks.append(conv_bn(c, cout, 3, s) if k < fused else InvertedResidual(c, cout, s, expand))
    return nn.Sequential(*blocks)


class Normalize(nn.Module):
    """Maps float RGB in [0, 255] (N, 3, H, W) to roughly zero mean, unit spread."""

    def __init__(self, mean: float = 127.5, std: float = 64.0, gray: bool = False):
        super().__init__()
        self.mean, self.std, self.gray = mean, std, gray

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gray:
            x = x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114
        return (x - self.mean) / self.std
