"""Landmark conventions: where each data set's annotators put the same 68 points.

The output of this package follows **iBUG 300-W** (what dlib, 300-W and menpo use).
The Udacity facial keypoints labels follow the same 68-point scheme but are offset
from it: their nose group sits lower, every point a little to the image's right and
the brows a little higher. The offset is stored as a table of (68, 2) values in the
**face frame** of a set of points:

* origin: the midpoint of the outer eye corners (points 36 and 45),
* x axis: from point 36 to point 45 (the image's right on an upright face), y axis:
  x rotated by +90 degrees (down the face in image coordinates),
* unit: the distance between the outer eye corners (the NME_io normaliser).

``points_in_udacity = from_face_frame(to_face_frame(points_in_ibug) + UDACITY_OFFSET)``,
with the frame taken from the iBUG points themselves. Because the offset is expressed
relative to the face, it holds at any position, scale and roll.

The table ships in ``conventions.json`` beside this module; ``bench/convention_offset.py``
measured it (how, and on which faces, is written in the file).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import InputError
from .landmarks import NUM_LANDMARKS, OUTER_EYE_CORNERS

#: Conventions the package can answer in; the first is the default output.
CONVENTIONS = ("ibug", "udacity")

TABLE_PATH = Path(__file__).resolve().parent / "conventions.json"


def check_convention(name: str) -> str:
    """``name`` if it is a known convention, else a one-line :class:`InputError`."""
    if name not in CONVENTIONS:
        raise InputError(f"unknown landmark convention {name!r}; valid: {', '.join(CONVENTIONS)}")
    return name


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin (N, 2), rotation (N, 2, 2), scale (N,))`` of the face frame of (N, 68, 2) points.

    ``rotation`` rows are the frame's x and y axes in image pixels; ``scale`` is the eye-corner
    distance in pixels (never below 1e-6)."""
    pts = np.asarray(points, np.float64)
    a, b = pts[:, OUTER_EYE_CORNERS[0]], pts[:, OUTER_EYE_CORNERS[1]]
    origin = (a + b) / 2.0
    d = b - a
    scale = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
    ex = d / scale[:, None]
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)
    return origin, np.stack([ex, ey], axis=1), scale


def to_face_frame(points: np.ndarray, frame_of: np.ndarray | None = None) -> np.ndarray:
    """(N, 68, 2) image pixels -> face-frame units, in the frame of ``frame_of`` (default: the points)."""
    pts = np.asarray(points, np.float64)
    origin, rot, scale = face_frame(pts if frame_of is None else frame_of)
    return np.einsum("nij,nkj->nki", rot, pts - origin[:, None]) / scale[:, None, None]


def from_face_frame(coords: np.ndarray, frame_of: np.ndarray) -> np.ndarray:
    """Face-frame units (N, 68, 2) -> image pixels, in the frame of ``frame_of`` (N, 68, 2)."""
    origin, rot, scale = face_frame(frame_of)
    c = np.asarray(coords, np.float64) * scale[:, None, None]
    return np.einsum("nji,nkj->nki", rot, c) + origin[:, None]


def shift_in_face_frame(points: np.ndarray, offset: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """``points`` (N, 68, 2) or (68, 2) pixels moved by ``sign * offset`` (68, 2 face-frame units),
    in the frame of the points themselves. Returns float32 of the input's shape."""
    pts = np.asarray(points, np.float32)
    flat = pts.reshape(-1, NUM_LANDMARKS, 2)
    if len(flat) == 0:
        return pts.copy()
    frame = to_face_frame(flat)
    out = from_face_frame(frame + sign * np.asarray(offset, np.float64)[None], flat)
    return out.astype(np.float32).reshape(pts.shape)


def measure_offset(pred: np.ndarray, truth: np.ndarray, trim: float = 0.1, frame: str = "truth") -> np.ndarray:
    """The mean (68, 2) face-frame difference ``pred - truth`` over N faces, each point's x and y
    trimmed of the ``trim`` share of faces at either end (robust to the few failed faces).
    The frame of each face is its truth's, or with ``frame="pred"`` its prediction's (what a
    correction applied to predictions, whose truth is unknown, is measured in)."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if frame not in ("truth", "pred"):
        raise ValueError(f"frame must be 'truth' or 'pred', got {frame!r}")
    of = truth if frame == "truth" else pred
    diff = to_face_frame(pred, of) - to_face_frame(truth, of)
    diff.sort(axis=0)
    k = int(len(diff) * trim)
    kept = diff[k : len(diff) - k] if len(diff) - 2 * k > 0 else diff
    return kept.mean(axis=0).astype(np.float32)


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(TABLE_PATH.read_text(encoding="utf-8"))


def offset_from_ibug(convention: str) -> np.ndarray:
    """(68, 2) face-frame offset that takes iBUG points to ``convention`` (zeros for "ibug")."""
    check_convention(convention)
    if convention == "ibug":
        return np.zeros((NUM_LANDMARKS, 2), np.float32)
    return np.asarray(_table()["offsets"][convention], np.float32).reshape(NUM_LANDMARKS, 2)


def convert(points: np.ndarray, source: str, target: str) -> np.ndarray:
    """``points`` (N, 68, 2) or (68, 2) pixels in convention ``source`` -> ``target``.

    The offsets are defined in the frame of the iBUG points, so going to iBUG inverts the
    shift exactly (a few fixed-point steps: the frame moves a little with the points), and
    ``convert(convert(p, a, b), b, a)`` gives ``p`` back to well under 0.01 pixel."""
    check_convention(target)
    pts = np.asarray(points, np.float32)
    if source == target:
        return pts.copy()
    ibug = pts
    if source != "ibug":
        off = offset_from_ibug(source)
        ibug = shift_in_face_frame(pts, off, sign=-1.0)
        for _ in range(4):
            ibug = ibug + (pts - shift_in_face_frame(ibug, off))
    return ibug if target == "ibug" else shift_in_face_frame(ibug, offset_from_ibug(target))
