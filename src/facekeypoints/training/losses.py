"""Training losses: small swappable functions of (raw model output, target keypoints).

Target keypoints are (N, 68, 2) crop pixels, x then y.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..landmarks import JAW


def wing_loss(diff: torch.Tensor, w: float = 10.0, eps: float = 2.0, reduce: bool = True) -> torch.Tensor:
    """Wing loss (Feng et al. 2018) of absolute differences ``diff`` (any shape): the mean, or each
    element's when ``reduce`` is false."""
    a = diff.abs()
    c = w - w * math.log(1.0 + w / eps)
    each = torch.where(a < w, w * torch.log1p(a / eps), a - c)
    return each.mean() if reduce else each


def regression_loss(
    model, raw: torch.Tensor, target: torch.Tensor, sample_weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict]:
    """Wing loss on keypoints measured in crop pixels (scaled to a 100 px crop); ``sample_weights``
    (N, 68) weighs each point of each crop (default 1)."""
    pred = model.decode(raw)
    diff = (pred - target) * (100.0 / model.input_size)
    if sample_weights is None:
        loss = wing_loss(diff)
    else:
        loss = (wing_loss(diff, reduce=False).sum(dim=2) * sample_weights).mean() / 2.0
    return loss, {"wing": float(loss.detach())}


_NEIGHBOURS = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def soft_cell_targets(u: torch.Tensor, v: torch.Tensor, h: int, w: int, sigma: float) -> torch.Tensor:
    """(N*68, h*w) target distribution over cells: a Gaussian of ``sigma`` cells around the
    continuous cell coordinates ``u``, ``v`` (N, 68), evaluated at the cell centres."""
    cx = torch.arange(w, dtype=u.dtype, device=u.device) + 0.5
    cy = torch.arange(h, dtype=u.dtype, device=u.device) + 0.5
    gx = -((cx.view(1, 1, w) - u.unsqueeze(2)) ** 2) / (2 * sigma**2)  # (N, 68, w)
    gy = -((cy.view(1, 1, h) - v.unsqueeze(2)) ** 2) / (2 * sigma**2)  # (N, 68, h)
    logits = gy.unsqueeze(3) + gx.unsqueeze(2)  # (N, 68, h, w)
    return torch.softmax(logits.reshape(-1, h * w), dim=1)


def pip_loss(
    model,
    raw: torch.Tensor,
    target: torch.Tensor,
    offset_weight: float = 5.0,
    point_weight: float = 0.0,
    label_sigma: float = 0.0,
    neighbour_weight: float = 0.25,
    jaw_weight: float = 1.0,
    sample_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """Cell classification (softmax over the grid) + L1 offsets in the 3x3 cells around the truth.

    ``label_sigma`` > 0 replaces the one-hot cell label by a Gaussian of that many cells around
    the true point. ``neighbour_weight`` weighs the offsets of the 8 cells around the true one
    against the true cell's. ``point_weight`` adds an L1 loss on the decoded points, in cell units
    (crop pixels / stride). ``jaw_weight`` weighs the jaw points' terms against the other points' (the
    68 weights keep a mean of 1). ``sample_weights`` (N, 68) further weighs each point of each crop
    (``--data-jaw-weights``: a source whose jaw labels are not learned has 0 there).
    """
    n, _, h, w = raw.shape
    point_w = None
    if jaw_weight != 1.0:
        point_w = raw.new_ones(68)
        point_w[list(JAW)] = jaw_weight
        point_w = (point_w / point_w.mean()).expand(n, 68)
    if sample_weights is not None and not bool((sample_weights == 1).all()):
        sw = sample_weights.to(raw.dtype)
        point_w = sw if point_w is None else point_w * sw
    s = float(model.stride)
    u = (target[..., 0] + 0.5) / s  # continuous cell coordinates
    v = (target[..., 1] + 0.5) / s
    j = u.floor().clamp(0, w - 1).long()
    i = v.floor().clamp(0, h - 1).long()
    scores = raw[:, :68].reshape(n * 68, h * w)
    cell_target = soft_cell_targets(u, v, h, w, label_sigma) if label_sigma > 0 else (i * w + j).reshape(-1)
    if point_w is None:
        ce = F.cross_entropy(scores, cell_target)
    else:
        ce = (F.cross_entropy(scores, cell_target, reduction="none").reshape(n, 68) * point_w).mean()
    offsets = raw[:, 68:].reshape(n, 2, 68, h * w)
    l1_total = raw.new_zeros(())
    weight_total = 0.0
    for dx, dy in _NEIGHBOURS:
        jj, ii = j + dx, i + dy
        valid = ((jj >= 0) & (jj < w) & (ii >= 0) & (ii < h)).to(raw.dtype)
        idx = (ii.clamp(0, h - 1) * w + jj.clamp(0, w - 1)).unsqueeze(2)
        ox = torch.gather(offsets[:, 0], 2, idx).squeeze(2)
        oy = torch.gather(offsets[:, 1], 2, idx).squeeze(2)
        err = (ox - (u - jj.to(raw.dtype))).abs() + (oy - (v - ii.to(raw.dtype))).abs()
        if point_w is not None:
            err = err * point_w
        wt = 1.0 if (dx, dy) == (0, 0) else neighbour_weight
        l1_total = l1_total + wt * (err * valid).sum() / valid.sum().clamp(min=1.0)
        weight_total += wt
    l1 = l1_total / weight_total
    loss = ce + offset_weight * l1
    parts = {"ce": float(ce.detach()), "offset_l1": float(l1.detach())}
    if point_weight:
        point_err = (model.decode(raw) - target).abs().sum(dim=2)
        point = (point_err if point_w is None else point_err * point_w).mean() / s
        loss = loss + point_weight * point
        parts["point_l1"] = float(point.detach())
    return loss, parts


def loss_for(model, **pip_weights: float):
    """The loss function matching ``model.head``.

    ``pip_weights`` (``offset_weight``, ``point_weight``, ``label_sigma``, ``neighbour_weight``, ``jaw_weight``) go to
    :func:`pip_loss`, whose signature holds their defaults; the regression head takes none.
    """
    if model.head == "pip":
        return functools.partial(pip_loss, **pip_weights)
    return regression_loss
