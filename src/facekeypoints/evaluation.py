"""Landmark accuracy: NME, the cumulative error distribution (CED), FR and AUC.

Everything here is plain numpy on ``(N, 68, 2)`` pixel arrays, x then y.

Protocol (see DESIGN.md, "Evaluation protocol"):

* NME_io of a face: mean over the 68 points of ``|pred - gt|`` divided by the
  distance between the ground truth's outer eye corners (points 36 and 45).
  The functions return fractions; :func:`summarize` reports percent.
* CED(t): the fraction of faces whose NME is at most ``t``, sampled on
  ``[0, t_max]`` in steps of 1e-4.
* FR@t = 1 - CED(t); AUC@t = (integral of CED over ``[0, t]``) / t, by the
  trapezoid rule on the same grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import InputError
from .geometry import keypoint_box
from .landmarks import GROUPS, OUTER_EYE_CORNERS

#: Step of the CED grid.
CED_STEP = 1e-4

#: Thresholds at which FR and AUC are reported.
REPORT_THRESHOLDS = (0.08, 0.10)

#: Default edges (pixels) of the face-size buckets: longer side of the gt keypoint box.
#: Close to the quartiles of the Udacity test faces (25/50/75 %: 59, 77, 104 px; range 34-217).
BOX_SIZE_BINS = (0.0, 60.0, 80.0, 110.0, math.inf)

#: Human-readable name of the normaliser, stored in reports.
NORMALISATION = "outer eye corners (points 36 and 45) of the ground truth"


def _as_faces(points: np.ndarray, name: str) -> np.ndarray:
    """``(N, P, 2)`` float64 from ``(N, P, 2)`` or a single ``(P, 2)`` face."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise InputError(f"{name}: expected (N, 68, 2) keypoints, got shape {arr.shape}")
    return arr


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_faces(pred, "pred"), _as_faces(gt, "gt")
    if p.shape != g.shape:
        raise InputError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    return p, g


def eye_distance(gt: np.ndarray) -> np.ndarray:
    """``(N,)`` distance between the outer eye corners of each ground-truth face."""
    g = _as_faces(gt, "gt")
    a, b = OUTER_EYE_CORNERS
    d = np.linalg.norm(g[:, a] - g[:, b], axis=-1)
    if (d <= 0).any() or not np.isfinite(d).all():
        bad = int(np.flatnonzero(~(d > 0) | ~np.isfinite(d))[0])
        raise InputError(f"gt face {bad}: outer eye corners coincide, NME is undefined")
    return d


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N, 68)`` per-point errors, each divided by its face's eye distance."""
    p, g = _check_pair(pred, gt)
    return np.linalg.norm(p - g, axis=-1) / eye_distance(g)[:, None]


def nme_io(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(N,)`` NME of each face, normalised by the gt outer-eye-corner distance (a fraction)."""
    return point_errors(pred, gt).mean(axis=1)


def ced(errors: np.ndarray, max_error: float = 0.10, step: float = CED_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: ``(thresholds, fractions)``.

    ``thresholds`` runs from 0 to ``max_error`` in steps of ``step`` (both ends
    included); ``fractions[i]`` is the share of faces with error <= ``thresholds[i]``.
    A NaN or infinite error (e.g. a missed face) never counts as within a threshold.
    """
    errs = np.asarray(errors, dtype=np.float64).ravel()
    if errs.size == 0:
        raise InputError("no errors to build a CED from")
    n_steps = max(1, round(max_error / step))
    thresholds = np.linspace(0.0, max_error, n_steps + 1)
    finite = np.sort(errs[np.isfinite(errs)])
    fractions = np.searchsorted(finite, thresholds, side="right") / errs.size
    return thresholds, fractions


def fr_auc(errors: np.ndarray, threshold: float = 0.10, step: float = CED_STEP) -> tuple[float, float]:
    """``(FR, AUC)`` at ``threshold``, both fractions in [0, 1].

    FR = 1 - CED(threshold); AUC = trapezoid integral of the CED over
    ``[0, threshold]`` divided by ``threshold``.
    """
    t, f = ced(errors, max_error=threshold, step=step)
    fr = 1.0 - f[-1]
    area = float(np.sum((f[1:] + f[:-1]) / 2.0 * np.diff(t)))
    return float(fr), area / threshold


def group_nme(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Mean NME (fraction) of each landmark group in :data:`landmarks.GROUPS`."""
    errs = point_errors(pred, gt)
    return {name: float(errs[:, list(idx)].mean()) for name, idx in GROUPS.items()}


def box_size(gt: np.ndarray) -> np.ndarray:
    """``(N,)`` longer side (pixels) of each face's gt keypoint box."""
    box = keypoint_box(_as_faces(gt, "gt")).astype(np.float64)
    return np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])


def nme_by_box_size(errors: np.ndarray, gt: np.ndarray, bins: Sequence[float] = BOX_SIZE_BINS) -> list[dict]:
    """Mean error per face-size bucket ``[lo, hi)``, size = longer side of the gt keypoint box.

    Returns ``[{"range": [lo, hi], "count": n, "nme_mean": mean or None}]``; an
    infinite upper edge is written as ``None`` so the result is valid JSON.
    """
    errs = np.asarray(errors, dtype=np.float64).ravel()
    sizes = box_size(gt)
    if sizes.shape != errs.shape:
        raise InputError(f"{errs.size} errors but {sizes.size} gt faces")
    rows = []
    for lo, hi in itertools.pairwise(bins):
        inside = (sizes >= lo) & (sizes < hi)
        rows.append(
            {
                "range": [float(lo), None if math.isinf(hi) else float(hi)],
                "count": int(inside.sum()),
                "nme_mean": float(errs[inside].mean()) if inside.any() else None,
            }
        )
    return rows


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100.0 * float(x), 4)


def summarize(
    pred: np.ndarray,
    gt: np.ndarray,
    protocol: str = "gt",
    thresholds: Sequence[float] = REPORT_THRESHOLDS,
    bins: Sequence[float] = BOX_SIZE_BINS,
) -> dict:
    """A JSON-serialisable accuracy report. All errors, FR and AUC are in percent.

    Keys: ``protocol``, ``normalisation``, ``units``, ``n_faces``, ``nme_mean``,
    ``nme_median``, ``fr_08``/``auc_08`` and ``fr_10``/``auc_10`` (one pair per
    threshold, named by its hundredths), ``groups`` (group -> mean NME) and
    ``by_box_size`` (see :func:`nme_by_box_size`). With no faces the numbers are ``None``.
    """
    report: dict = {
        "protocol": protocol,
        "normalisation": NORMALISATION,
        "units": "percent",
        "n_faces": 0,
        "nme_mean": None,
        "nme_median": None,
    }
    p, g = _check_pair(pred, gt)
    n = len(g)
    errs = nme_io(p, g)
    report["n_faces"] = n
    if n:
        report["nme_mean"] = _pct(errs.mean())
        report["nme_median"] = _pct(np.median(errs))
    for t in thresholds:
        key = f"{round(t * 100):02d}"
        fr, auc = fr_auc(errs, t) if n else (None, None)
        report[f"fr_{key}"] = _pct(fr)
        report[f"auc_{key}"] = _pct(auc)
    groups = group_nme(p, g) if n else dict.fromkeys(GROUPS)
    report["groups"] = {k: _pct(v) for k, v in groups.items()}
    rows = nme_by_box_size(errs, g, bins)
    report["by_box_size"] = [dict(r, nme_mean=_pct(r["nme_mean"])) for r in rows]
    return report


def plot_ced(
    curves: Mapping[str, np.ndarray],
    path: str | Path,
    max_error: float = 0.10,
    title: str | None = None,
) -> Path:
    """Write a PNG of the CED of each ``label -> per-face errors`` curve.

    x is NME in percent, y the fraction of faces; each legend entry shows the
    curve's AUC@``max_error`` in percent. Uses matplotlib's Agg canvas directly
    (no pyplot state, no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, errors in curves.items():
        errs = np.asarray(errors, dtype=np.float64).ravel()
        if errs.size == 0:
            ax.plot([], [], label=f"{label} (no faces)")
            continue
        t, f = ced(errs, max_error=max_error)
        _, auc = fr_auc(errs, max_error)
        ax.plot(t * 100.0, f, label=f"{label} (AUC@{max_error:.2f} = {auc * 100:.1f}%, n = {errs.size})")
    ax.set_xlim(0.0, max_error * 100.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("NME (% of outer-eye-corner distance)")
    ax.set_ylabel("fraction of faces")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Cumulative error distribution")
    if curves:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``(..., 4)`` (x0, y0, x1, y1), broadcast.

    For all pairs of ``(N, 4)`` and ``(M, 4)`` boxes use ``iou(a[:, None], b[None])``.
    Degenerate (zero-area) boxes give 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = ix * iy
    area_a = np.clip(a[..., 2] - a[..., 0], 0.0, None) * np.clip(a[..., 3] - a[..., 1], 0.0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0.0, None) * np.clip(b[..., 3] - b[..., 1], 0.0, None)
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_detections(det_boxes: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = 0.3) -> np.ndarray:
    """Greedy one-to-one matching of detections to ground-truth boxes by IoU.

    Pairs are taken in order of decreasing IoU; a pair is kept when both boxes
    are still free and its IoU is at least ``iou_threshold``. Returns an
    ``(M,)`` int array: for each gt box the index of its detection, or -1.
    """
    det = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    match = np.full(len(gt), -1, dtype=np.int64)
    if len(det) == 0 or len(gt) == 0:
        return match
    overlaps = iou(det[:, None], gt[None])  # (D, M)
    used = np.zeros(len(det), dtype=bool)
    # Stable sort on -IoU: ties go to the lower detection index, then the lower gt index.
    for flat in np.argsort(-overlaps, axis=None, kind="stable"):
        d, g = divmod(int(flat), len(gt))
        if overlaps[d, g] < iou_threshold:
            break
        if used[d] or match[g] >= 0:
            continue
        used[d] = True
        match[g] = d
    return match
