"""Draw landmarks, contours and face boxes on RGB images.

Every function returns a new image and leaves its input untouched. Colours are
RGB tuples; coordinates are pixels with the origin at the centre of the
top-left pixel, drawn with antialiased sub-pixel OpenCV primitives. Line widths
and point sizes grow with the face so small and large faces both read well.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import cv2
import numpy as np

from .landmarks import EDGES

BOX_COLOR = (0, 220, 90)
CONTOUR_COLOR = (0, 200, 255)
POINT_COLOR = (255, 60, 60)

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


class FaceLike(Protocol):
    box: np.ndarray
    score: float
    keypoints: np.ndarray


def _canvas(rgb: np.ndarray) -> np.ndarray:
    img = np.asarray(rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img).copy()


_LIMIT = float(1 << 20)  # keep far-off points inside OpenCV's int32 fixed-point range


def _fixed(xy: np.ndarray) -> tuple[int, int]:
    x, y = (min(max(float(v), -_LIMIT), _LIMIT) for v in xy[:2])
    return round(x * _ONE), round(y * _ONE)


def face_size(face: FaceLike) -> float:
    """A face's scale in pixels: the longer side of its box, else of its points' spread."""
    b = np.asarray(face.box, dtype=np.float64).reshape(4)
    span = b[2:] - b[:2]
    if not (np.isfinite(span).all() and span.max() > 0):
        kps = np.asarray(face.keypoints, dtype=np.float64).reshape(-1, 2)
        kps = kps[np.isfinite(kps).all(axis=1)]
        span = kps.max(axis=0) - kps.min(axis=0) if len(kps) >= 2 else np.ones(2)
    return float(max(span.max(), 1.0))


def _sizes(size: float) -> tuple[int, float]:
    """(line thickness, point radius) for a face ``size`` pixels across."""
    thickness = max(1, round(size / 160.0))
    radius = max(1.0, size / 90.0)
    return thickness, radius


def _draw_points(img: np.ndarray, points: np.ndarray, color, radius: float) -> None:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    r = max(1, round(radius * _ONE))
    for p in pts:
        if np.isfinite(p).all():
            cv2.circle(img, _fixed(p), r, color, thickness=-1, lineType=cv2.LINE_AA, shift=_SHIFT)


def _draw_contours(img: np.ndarray, points: np.ndarray, color, thickness: int) -> None:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    for i, j in EDGES:
        if i < len(pts) and j < len(pts) and np.isfinite(pts[i]).all() and np.isfinite(pts[j]).all():
            cv2.line(img, _fixed(pts[i]), _fixed(pts[j]), color, thickness, lineType=cv2.LINE_AA, shift=_SHIFT)


def _draw_box(img: np.ndarray, box: np.ndarray, color, thickness: int) -> None:
    b = np.asarray(box, dtype=np.float64).reshape(4)
    if np.isfinite(b).all():
        cv2.rectangle(img, _fixed(b[:2]), _fixed(b[2:]), color, thickness, lineType=cv2.LINE_AA, shift=_SHIFT)


def draw_points(
    rgb: np.ndarray, points: np.ndarray, color: tuple[int, int, int] = POINT_COLOR, radius: float | None = None
) -> np.ndarray:
    """Filled dots at (..., 2) ``points``; ``radius`` defaults to one scaled by their spread."""
    img = _canvas(rgb)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if radius is None:
        finite = pts[np.isfinite(pts).all(axis=1)]
        span = float((finite.max(axis=0) - finite.min(axis=0)).max()) if len(finite) >= 2 else 90.0
        radius = _sizes(min(max(span, 1.0), float(np.hypot(*img.shape[:2]))))[1]
    _draw_points(img, pts, color, radius)
    return img


def draw_box(
    rgb: np.ndarray, box: np.ndarray, color: tuple[int, int, int] = BOX_COLOR, thickness: int | None = None
) -> np.ndarray:
    """Rectangle for a box (x0, y0, x1, y1); ``thickness`` defaults to one scaled by its size."""
    img = _canvas(rgb)
    b = np.asarray(box, dtype=np.float64).reshape(4)
    if thickness is None:
        side = max(b[2] - b[0], b[3] - b[1], 1.0) if np.isfinite(b).all() else 1.0
        thickness = _sizes(min(side, float(np.hypot(*img.shape[:2]))))[0]
    _draw_box(img, b, color, thickness)
    return img


def draw_faces(
    rgb: np.ndarray,
    faces: Iterable[FaceLike],
    points: bool = True,
    contours: bool = True,
    boxes: bool = True,
) -> np.ndarray:
    """A copy of ``rgb`` with each face's box, landmark contours and points drawn on it."""
    img = _canvas(rgb)
    diagonal = float(np.hypot(*img.shape[:2]))
    for face in faces:
        thickness, radius = _sizes(min(face_size(face), diagonal))
        if boxes:
            _draw_box(img, face.box, BOX_COLOR, thickness)
        kps = np.asarray(face.keypoints, dtype=np.float64).reshape(-1, 2)
        if contours:
            _draw_contours(img, kps, CONTOUR_COLOR, thickness)
        if points:
            _draw_points(img, kps, POINT_COLOR, radius)
    return img
