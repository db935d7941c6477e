"""Aligned face crops for face-recognition pipelines.

A face is mapped onto a canonical five-point template (the two eye centres, the
nose tip, the two mouth corners) by the least-squares similarity transform
(rotation, uniform scale, shift; no shear, no mirroring), then cut out as a
``size`` x ``size`` RGB crop. The eyes come out level and at the same place in
every crop, whatever the face's position, size and in-plane rotation.

>>> from facekeypoints.align import align_face
>>> crop = align_face(rgb, face.keypoints, size=112)     # (112, 112, 3) RGB uint8
"""

from __future__ import annotations

import cv2
import numpy as np

from .landmarks import LEFT_EYE, RIGHT_EYE

#: The canonical template, as fractions of the crop's side (x right, y down), in the
#: order of :func:`five_points`: the subject's right eye centre (on the image's left),
#: left eye centre, nose tip, right mouth corner, left mouth corner. Symmetric about
#: the vertical centre line; the eyes 0.31 of the side apart, a little above the middle.
TEMPLATE = np.array(
    [
        [0.345, 0.415],
        [0.655, 0.415],
        [0.500, 0.585],
        [0.370, 0.755],
        [0.630, 0.755],
    ],
    dtype=np.float64,
)

#: Weights of the five points in the fit: the eyes count most, as they do for recognition.
WEIGHTS = np.array([2.0, 2.0, 1.0, 1.0, 1.0])

NOSE_TIP = 30
MOUTH_CORNERS = (48, 54)


def five_points(keypoints: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres (right, left), nose tip, mouth corners (right, left) from (68, 2) points."""
    kps = np.asarray(keypoints, dtype=np.float64).reshape(68, 2)
    return np.stack(
        [
            kps[list(RIGHT_EYE)].mean(axis=0),
            kps[list(LEFT_EYE)].mean(axis=0),
            kps[NOSE_TIP],
            kps[MOUTH_CORNERS[0]],
            kps[MOUTH_CORNERS[1]],
        ]
    )


def template_points(size: int) -> np.ndarray:
    """The template's five points in the pixels of a ``size`` x ``size`` crop (pixel-centre origin)."""
    return TEMPLATE * size - 0.5


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, shift) taking ``src`` (N, 2) closest to ``dst`` (N, 2).

    Weighted least squares in closed form (Umeyama, 1991), without reflection.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError("need at least two pairs of points")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s, d = src - mu_s, dst - mu_d
    var_s = float(w @ (s**2).sum(axis=1))
    if var_s <= 1e-12:
        raise ValueError("the source points coincide")
    cov = (d * w[:, None]).T @ s  # 2x2, sum_i w_i d_i s_i^T
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, 1.0 if np.linalg.det(u @ vt) >= 0 else -1.0])
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sig) @ sign)) / var_s
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def alignment_matrix(keypoints: np.ndarray, size: int = 112) -> np.ndarray:
    """2x3 matrix mapping image pixels into the ``size`` x ``size`` aligned crop of a face's (68, 2) points."""
    if int(size) < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    pts = five_points(keypoints)
    if not np.isfinite(pts).all():
        raise ValueError("keypoints are not finite")
    return similarity_transform(pts, template_points(int(size)), WEIGHTS)


def align_face(rgb: np.ndarray, keypoints: np.ndarray, size: int = 112) -> np.ndarray:
    """The face with these (68, 2) ``keypoints`` cut out of RGB ``rgb``, aligned to the template.

    Returns a ``size`` x ``size`` x 3 RGB uint8 crop; parts beyond the image are black.
    A face much larger than the crop is first shrunk with area averaging (no aliasing).
    """
    img = np.asarray(rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    m = alignment_matrix(keypoints, size)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        f = 2.0 * scale  # shrink the picture so the warp itself scales by 0.5
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        # pixel-centre coordinates: x = (x_small + 0.5) / fx - 0.5
        a = m[:, :2] @ np.diag([1.0 / fx, 1.0 / fy])
        m = np.hstack([a, (m[:, :2] @ np.array([0.5 / fx - 0.5, 0.5 / fy - 0.5]) + m[:, 2])[:, None]])
        img = small
    return cv2.warpAffine(
        img, m, (int(size), int(size)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
