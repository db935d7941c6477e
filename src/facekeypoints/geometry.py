"""Box <-> crop similarity transforms and point mapping.

All coordinates are pixels, x then y, with the origin at the centre of the
top-left pixel (OpenCV's convention). An affine matrix ``M`` is 2x3 and maps
a column ``(x, y, 1)`` in the source frame to the destination frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import OUTER_EYE_CORNERS


@dataclass(frozen=True)
class CropRule:
    """How a face box becomes the model's square input crop.

    The "gt" box of a face is the tight axis-aligned box around its 68 points
    (:func:`keypoint_box`). The crop is a square centred on the box centre
    (moved down by ``offset_y`` box sides) whose side is ``scale`` times the
    box's longer side.
    """

    scale: float = 1.25
    offset_y: float = 0.0

    def to_dict(self) -> dict:
        return {"box": "keypoints-tight", "scale": self.scale, "offset_y": self.offset_y}

    @classmethod
    def from_dict(cls, d: dict) -> CropRule:
        return cls(scale=float(d["scale"]), offset_y=float(d.get("offset_y", 0.0)))


def keypoint_box(keypoints: np.ndarray) -> np.ndarray:
    """The "gt" box rule: tight box (x0, y0, x1, y1) around (..., 68, 2) points."""
    kps = np.asarray(keypoints, dtype=np.float32)
    return np.concatenate([kps.min(axis=-2), kps.max(axis=-2)], axis=-1)


def crop_matrix(center: tuple[float, float], side: float, size: int, angle: float = 0.0) -> np.ndarray:
    """Affine matrix mapping image pixels into a ``size`` x ``size`` crop.

    The crop covers a square of ``side`` image pixels centred on ``center``,
    rotated by ``angle`` radians (the image direction that becomes the crop's
    +x axis; positive turns from +x towards +y, clockwise on screen).
    """
    s = size / float(side)
    a = frame_rotation(angle) * s
    half = (size - 1) / 2.0
    t = np.array([half, half]) - a @ np.asarray(center, dtype=np.float64)
    return np.hstack([a, t[:, None]])


def box_crop_matrix(box: np.ndarray, rule: CropRule, size: int, angle: float = 0.0) -> np.ndarray:
    """Crop matrix for a face box (x0, y0, x1, y1) under ``rule``."""
    x0, y0, x1, y1 = [float(v) for v in box]
    side = max(x1 - x0, y1 - y0, 1.0)
    center = ((x0 + x1) / 2.0, (y0 + y1) / 2.0 + rule.offset_y * side)
    return crop_matrix(center, side * rule.scale, size, angle)


def eye_angle(keypoints: np.ndarray) -> float:
    """Angle (radians) of the line from the right outer eye corner to the left one."""
    a, b = OUTER_EYE_CORNERS
    d = np.asarray(keypoints[b], dtype=np.float64) - np.asarray(keypoints[a], dtype=np.float64)
    return float(np.arctan2(d[1], d[0]))


def frame_rotation(angle: float) -> np.ndarray:
    """2x2 matrix taking image directions into a frame rotated by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s], [-s, c]])


def rotated_keypoint_box(keypoints: np.ndarray, angle: float, rule: CropRule) -> tuple[np.ndarray, float]:
    """Centre (image pixels) and side of the crop-rule box measured in a frame rotated by ``angle``.

    The box is the tight box of the points in that frame (its longer side), its centre moved
    down that frame's y axis by ``rule.offset_y`` sides.
    """
    rot = frame_rotation(angle)
    p = np.asarray(keypoints, dtype=np.float64) @ rot.T
    lo, hi = p.min(axis=0), p.max(axis=0)
    side = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    mid = (lo + hi) / 2.0 + np.array([0.0, rule.offset_y * side])
    return rot.T @ mid, side


def keypoints_crop_matrix(keypoints: np.ndarray, rule: CropRule, size: int, level: bool = True) -> np.ndarray:
    """Crop matrix from a face's 68 points (the re-crop of a second pass).

    With ``level`` the crop is rotated so the eye line is horizontal and the box
    is measured in that rotated frame; otherwise it is the plain "gt" box rule.
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    angle = eye_angle(kps) if level else 0.0
    center, side = rotated_keypoint_box(kps, angle, rule)
    return crop_matrix((center[0], center[1]), side * rule.scale, size, angle)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (..., 2) points with a 2x3 matrix; returns float32."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


#: Crops that shrink the image below this many output pixels per input pixel are area-averaged
#: first (see :func:`warp`); above it a bilinear warp alone aliases little.
MIN_DIRECT_SCALE = 0.7


def warp(
    image: np.ndarray,
    matrix: np.ndarray,
    size: int,
    border: int = cv2.BORDER_REPLICATE,
    min_direct_scale: float = MIN_DIRECT_SCALE,
) -> np.ndarray:
    """Cut the ``size`` x ``size`` crop described by ``matrix`` out of ``image``.

    A bilinear warp that shrinks a large face a lot samples only a few of its pixels, so fine
    detail aliases into noise. When ``matrix`` maps fewer than ``min_direct_scale`` output pixels
    onto each source pixel, the region the crop covers is first reduced to the crop's own scale
    with area averaging (``cv2.INTER_AREA``), then warped. ``min_direct_scale=0`` turns this off.
    """
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    h, w = image.shape[:2]
    if 0.0 < scale < min_direct_scale:
        corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
        inv = invert_affine(m)
        src = corners @ inv[:, :2].T + inv[:, 2]  # the crop's footprint in the image (float64, unlike apply_affine)
        pad = 2.0 / scale
        x0 = max(0, int(np.floor(src[:, 0].min() - pad)))
        x1 = min(w, int(np.ceil(src[:, 0].max() + pad)))
        y0 = max(0, int(np.floor(src[:, 1].min() - pad)))
        y1 = min(h, int(np.ceil(src[:, 1].max() + pad)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = cv2.resize(image[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / (x1 - x0), nh / (y1 - y0)
            # a pixel q of ``small`` is source pixel (q + 0.5) / f - 0.5 + origin (pixel-centre convention)
            back = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5], [0, 0, 1]])
            image, m = small, m @ back
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
