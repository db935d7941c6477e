"""Privacy filters: blur or pixelate the face region of every face.

The face region is the convex hull of the jaw (0-16) and brow (17-26) points,
grown outwards by ``margin`` times the face's size (the longer side of the
box around those points). Pixels outside the regions are never changed.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..landmarks import JAW, LEFT_BROW, RIGHT_BROW
from .base import Filter

REGION_POINTS = np.array(JAW + RIGHT_BROW + LEFT_BROW)

_SHIFT = 4  # sub-pixel bits for cv2.fillPoly
_SUPERSAMPLE = 4  # coverage of the region's edge pixels in steps of 1/16
_DIRECTIONS = 48  # directions sampled when growing the hull by a disk


def face_region(keypoints: np.ndarray, margin: float = 0.12) -> np.ndarray:
    """Convex polygon (P, 2) in image pixels covering one face: jaw and brows, grown by a margin.

    The hull is grown by a disk of radius ``margin * size`` (size: longer side of the
    points' box), so every point of the region lies within that distance of the hull.
    """
    pts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)[REGION_POINTS]
    size = float((pts.max(axis=0) - pts.min(axis=0)).max())
    r = max(0.0, margin) * size
    t = np.linspace(0.0, 2.0 * np.pi, _DIRECTIONS, endpoint=False)
    disk = np.c_[np.cos(t), np.sin(t)] * r
    grown = (pts[:, None, :] + disk[None]).reshape(-1, 2)
    return cv2.convexHull(grown.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def region_box(polygon: np.ndarray, shape: tuple[int, ...], pad: float = 0.0) -> tuple[int, int, int, int] | None:
    """Integer box (x0, y0, x1, y1), end-exclusive, around ``polygon`` grown by ``pad``, clipped to the image."""
    h, w = shape[:2]
    lo = np.floor(polygon.min(axis=0) - pad - 1)
    hi = np.ceil(polygon.max(axis=0) + pad + 2)
    x0, y0 = (int(v) for v in np.clip(lo, 0, [w, h]))
    x1, y1 = (int(v) for v in np.clip(hi, 0, [w, h]))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def region_mask(polygon: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Coverage in [0, 1] (float32) of ``polygon`` over the pixels of ``box``.

    The polygon is filled without antialiasing at ``_SUPERSAMPLE`` times the resolution
    and averaged down: a pixel gets a non-zero weight only if the polygon covers part
    of it (OpenCV's own antialiased fill bleeds well over a pixel past the edge).
    """
    x0, y0, x1, y1 = box
    k = _SUPERSAMPLE
    mask = np.zeros(((y1 - y0) * k, (x1 - x0) * k), np.uint8)
    # pixel centres: image x -> supersampled (x - x0 + 0.5) * k - 0.5
    pts = ((polygon - [x0, y0] + 0.5) * k - 0.5) * (1 << _SHIFT)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    small = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) * (1.0 / 255.0)


def face_mask(shape: tuple[int, ...], faces, margin: float = 0.12) -> np.ndarray:
    """Coverage (H, W) float32 in [0, 1] of the union of the faces' regions."""
    from .base import face_keypoints

    out = np.zeros(shape[:2], np.float32)
    for kps in face_keypoints(faces):
        if not np.isfinite(kps).all():
            continue
        poly = face_region(kps, margin)
        box = region_box(poly, shape)
        if box is not None:
            x0, y0, x1, y1 = box
            np.maximum(out[y0:y1, x0:x1], region_mask(poly, box), out=out[y0:y1, x0:x1])
    return out


def _blend(canvas: np.ndarray, box, mask: np.ndarray, effect: np.ndarray) -> None:
    """Write ``effect`` into ``canvas[box]`` where ``mask`` > 0 (weighted by it); elsewhere leave it alone."""
    x0, y0, x1, y1 = box
    roi = canvas[y0:y1, x0:x1]
    m = mask[..., None]
    mixed = roi.astype(np.float32)
    mixed += (effect - mixed) * m
    np.copyto(roi, np.clip(mixed + 0.5, 0, 255).astype(np.uint8), where=m > 0)


class _RegionFilter(Filter):
    """A privacy filter: an effect computed over each face region, blended in only inside it."""

    margin: float

    def effect(self, canvas: np.ndarray, poly: np.ndarray, size: float, box) -> np.ndarray:
        """The replacement pixels for ``canvas[box]`` (float32), given the region polygon and face size."""
        raise NotImplementedError

    def draw(self, canvas: np.ndarray, keypoints: np.ndarray) -> None:
        poly = face_region(keypoints, self.margin)
        size = float((poly.max(axis=0) - poly.min(axis=0)).max())
        box = region_box(poly, canvas.shape)
        if box is None or size < 2.0:
            return
        _blend(canvas, box, region_mask(poly, box), self.effect(canvas, poly, size, box))


class Blur(_RegionFilter):
    """Gaussian blur of the face region; ``strength`` is sigma as a fraction of the face size."""

    def __init__(self, margin: float = 0.12, strength: float = 0.08, name: str = "blur"):
        self.margin, self.strength, self.name = margin, strength, name

    def effect(self, canvas: np.ndarray, poly: np.ndarray, size: float, box) -> np.ndarray:
        sigma = max(1.0, self.strength * size)
        ctx = region_box(poly, canvas.shape, pad=3.0 * sigma)  # blur with real neighbours where there are some
        cx0, cy0, cx1, cy1 = ctx
        blurred = _fast_blur(canvas[cy0:cy1, cx0:cx1], sigma)
        x0, y0, x1, y1 = box
        return blurred[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0].astype(np.float32)


def _fast_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large ``sigma``, done on a downscaled copy (cost independent of sigma)."""
    h, w = img.shape[:2]
    f = max(1.0, sigma / 3.0)
    if f > 1.0:
        sw, sh = max(1, math.ceil(w / f)), max(1, math.ceil(h / f))
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


class Pixelate(_RegionFilter):
    """Mosaic of the face region: about ``blocks`` square blocks across the face.

    Blocks sit on a grid fixed to the image (not to the face), so in a video the
    mosaic does not crawl as the face moves.
    """

    def __init__(self, margin: float = 0.12, blocks: int = 10, name: str = "pixelate"):
        self.margin, self.blocks, self.name = margin, blocks, name

    def effect(self, canvas: np.ndarray, poly: np.ndarray, size: float, box) -> np.ndarray:
        b = max(2, int(round(size / max(1, self.blocks))))
        x0, y0, x1, y1 = box
        h, w = canvas.shape[:2]
        gx0, gy0 = (x0 // b) * b, (y0 // b) * b
        gx1, gy1 = min(w, -(-x1 // b) * b), min(h, -(-y1 // b) * b)
        region = canvas[gy0:gy1, gx0:gx1].astype(np.float64)
        rows, cols = np.arange(0, gy1 - gy0, b), np.arange(0, gx1 - gx0, b)
        sums = np.add.reduceat(np.add.reduceat(region, rows, axis=0), cols, axis=1)
        counts = np.outer(np.diff(np.r_[rows, gy1 - gy0]), np.diff(np.r_[cols, gx1 - gx0]))
        means = sums / counts[..., None]
        ri, ci = (np.arange(y0, y1) - gy0) // b, (np.arange(x0, x1) - gx0) // b
        return means[np.ix_(ri, ci)].astype(np.float32)
