"""Overlays: an RGBA picture placed on each face by a least-squares similarity fit.

An :class:`Overlay` is a picture plus :class:`Anchor` pairs, each tying a point
of the picture (pixels, x then y, origin at the centre of the top-left pixel)
to a landmark or to the mean of several landmarks. For every face the
similarity transform (uniform scale, rotation, translation) that best maps the
anchor points onto their landmarks in the least-squares sense is fitted, and
the picture is warped with it and alpha-blended onto the image, clipped at the
image border. Built-in overlays and custom pictures share this one code path.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..image_io import MAX_PIXELS
from ..landmarks import NUM_LANDMARKS, mean_face
from .base import Filter

#: Keys a spec may have, and keys an anchor may have.
SPEC_KEYS = ("image", "anchors", "name")
ANCHOR_KEYS = ("point", "landmarks")

LANDMARK_RANGES = "0-67 (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67)"


@dataclass(frozen=True)
class Anchor:
    """A point of the overlay picture and the landmark(s) it goes to (their mean when several)."""

    point: tuple[float, float]
    landmarks: tuple[int, ...]


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (scale, rotation, translation; no reflection).

    ``src`` and ``dst`` are (K, 2) matching points, K >= 2. Returns the 2x3 matrix
    ``[[a, -b, tx], [b, a, ty]]`` minimising the summed squared distance between
    the mapped ``src`` and ``dst``. Raises ``ValueError`` when ``src`` points coincide.
    """
    s = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(s) != len(d) or len(s) < 2:
        raise ValueError("need at least 2 matching point pairs")
    sc, dc = s.mean(axis=0), d.mean(axis=0)
    s0, d0 = s - sc, d - dc
    denom = float((s0**2).sum())
    if denom <= 1e-12:
        raise ValueError("the source points coincide")
    a = float((s0[:, 0] * d0[:, 0] + s0[:, 1] * d0[:, 1]).sum()) / denom
    b = float((s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0]).sum()) / denom
    rot = np.array([[a, -b], [b, a]])
    t = dc - rot @ sc
    return np.hstack([rot, t[:, None]])


def _premultiply(rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba.copy()
    out[..., :3] = np.clip(rgba[..., :3].astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
    return out


def _as3x3(m: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(m, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])


class Overlay(Filter):
    """An RGBA picture tied to landmarks by two or more anchors.

    ``rgba`` is uint8 (H, W, 4), *not* premultiplied (as stored in a PNG). Rendering
    is cached: the picture is premultiplied once and downscaled copies (halving each
    time) are made on demand, so placing it on small faces stays cheap and smooth.
    """

    #: Fitted to an upright face, an overlay turned more than this (degrees) gets :attr:`warning`.
    MAX_TURN_DEG = 90.0

    def __init__(self, rgba: np.ndarray, anchors: Sequence[Anchor], name: str = "overlay", source: str | None = None):
        """``source``: the spec file (or other origin) named in errors and warnings (default: ``name``)."""
        self.name = name
        where = source or name
        rgba = np.asarray(rgba)
        if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
            raise InputError(f"{where}: overlay picture must be RGBA uint8 (H, W, 4), got {rgba.dtype} {rgba.shape}")
        self.anchors = tuple(_check_anchor(a, i, where) for i, a in enumerate(anchors, 1))
        if len(self.anchors) < 2:
            raise InputError(f"{where}: an overlay needs at least 2 anchors, got {len(self.anchors)}")
        self.points = np.array([a.point for a in self.anchors], dtype=np.float64)
        if float(((self.points - self.points.mean(axis=0)) ** 2).sum()) <= 1e-12:
            raise InputError(f"{where}: all anchor points are the same point; give at least 2 different points")
        self._groups = [np.array(a.landmarks, dtype=np.int64) for a in self.anchors]
        # on an upright reference face: anchors whose landmarks all meet in one place cannot place
        # anything (the picture would never be drawn), and a fit turned upside down is a swapped pair
        upright = self.targets(mean_face())
        if float(((upright - upright.mean(axis=0)) ** 2).sum()) <= 1e-9:
            raise InputError(
                f"{where}: the anchors' landmarks all average to the same point of the face "
                "(e.g. two anchors on the same landmarks); give anchors on different parts of the face"
            )
        m = fit_similarity(self.points, upright)
        turn = math.degrees(math.atan2(m[1, 0], m[0, 0]))
        #: None, or a one-line warning that the fitted picture is turned more than 90 degrees from the face
        self.warning: str | None = None
        if abs(turn) > self.MAX_TURN_DEG:
            self.warning = (
                f"{where}: on an upright face the overlay comes out turned {abs(turn):.0f} degrees "
                "(left and right anchors swapped, or the picture upside down?)"
            )
        self.size = (rgba.shape[1], rgba.shape[0])  # width, height
        self._levels: list[np.ndarray] = [np.ascontiguousarray(_premultiply(rgba))]
        self._lock = threading.Lock()  # one overlay may serve several threads (a web server, a video pipeline)

    # --- placement -------------------------------------------------------------------------

    def targets(self, keypoints: np.ndarray) -> np.ndarray:
        """(K, 2) landmark targets of the anchors for one face's (68, 2) keypoints."""
        kps = np.asarray(keypoints, dtype=np.float64).reshape(NUM_LANDMARKS, 2)
        return np.stack([kps[g].mean(axis=0) for g in self._groups])

    def matrix(self, keypoints: np.ndarray) -> np.ndarray | None:
        """2x3 matrix from picture pixels to image pixels for one face (None: unusable face)."""
        dst = self.targets(keypoints)
        if not np.isfinite(dst).all():
            return None
        m = fit_similarity(self.points, dst)
        scale = math.hypot(m[0, 0], m[1, 0])
        if not (np.isfinite(m).all() and scale > 1e-6):
            return None
        return m

    def _level(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached copy downscaled ``index`` times by 2 and the 3x3 map from picture to it (None: too small)."""
        with self._lock:
            while len(self._levels) <= index:
                prev = self._levels[-1]
                h, w = prev.shape[:2]
                if min(h, w) < 4:
                    return None
                self._levels.append(cv2.resize(prev, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA))
            level = self._levels[index]
        kx, ky = level.shape[1] / self.size[0], level.shape[0] / self.size[1]
        # cv2.resize maps pixel centres: x' = (x + 0.5) * k - 0.5
        to_level = np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])
        return level, to_level

    def draw(self, canvas: np.ndarray, keypoints: np.ndarray) -> None:
        m = self.matrix(keypoints)
        if m is not None:
            self.composite(canvas, m)

    def _warp(self, index: int, matrix: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
        found = self._level(index)
        if found is None:
            return None
        level, to_level = found
        x0, y0, x1, y1 = box
        m = (_as3x3(matrix) @ np.linalg.inv(to_level))[:2]  # level pixels -> image pixels
        m[:, 2] -= (x0, y0)
        return cv2.warpAffine(
            level, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    def composite(self, canvas: np.ndarray, matrix: np.ndarray) -> None:
        """Alpha-blend the picture onto ``canvas`` (RGB uint8, in place) through ``matrix`` (picture -> image).

        When shrinking, the two cached sizes around the needed scale are warped and mixed
        by how close each is (like trilinear mipmapping), so a face whose size drifts in
        a video never sees the overlay's sharpness jump.
        """
        h, w = canvas.shape[:2]
        pw, ph = self.size
        corners = np.array([[-0.5, -0.5], [pw - 0.5, -0.5], [-0.5, ph - 0.5], [pw - 0.5, ph - 0.5]])
        mapped = corners @ matrix[:, :2].T + matrix[:, 2]
        lo = np.clip(np.floor(mapped.min(axis=0)), 0, [w, h]).astype(int)
        hi = np.clip(np.ceil(mapped.max(axis=0)) + 1, 0, [w, h]).astype(int)
        box = (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
        if box[2] <= box[0] or box[3] <= box[1]:
            return  # entirely outside the image
        scale = math.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2])))
        depth = max(0.0, -math.log2(scale)) if scale > 0 else 0.0
        index, frac = int(depth), depth - int(depth)
        warped = self._warp(index, matrix, box)
        if warped is None:  # smaller than the smallest copy: use the smallest
            index, frac = len(self._levels) - 1, 0.0
            warped = self._warp(index, matrix, box)
        if frac > 1e-3:
            finer = warped
            coarser = self._warp(index + 1, matrix, box)
            if coarser is not None:
                warped = finer.astype(np.float32) * (1.0 - frac) + coarser.astype(np.float32) * frac
        alpha = warped[..., 3]
        if not alpha.any():
            return
        x0, y0, x1, y1 = box
        roi = canvas[y0:y1, x0:x1]
        a = alpha.astype(np.float32)[..., None] * (1.0 / 255.0)
        out = roi.astype(np.float32) * (1.0 - a) + warped[..., :3].astype(np.float32)
        roi[...] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _check_anchor(anchor, index: int, name: str) -> Anchor:
    if isinstance(anchor, Anchor):
        point, landmarks = anchor.point, anchor.landmarks
    elif isinstance(anchor, Mapping):
        unknown = sorted(set(anchor) - set(ANCHOR_KEYS))
        if unknown:
            raise InputError(
                f"{name}: anchor {index} has unknown key '{unknown[0]}'; valid keys: {', '.join(ANCHOR_KEYS)}"
            )
        if "point" not in anchor or "landmarks" not in anchor:
            raise InputError(f'{name}: anchor {index} needs "point": [x, y] and "landmarks": [indices 0-67]')
        point, landmarks = anchor["point"], anchor["landmarks"]
    else:
        raise InputError(f'{name}: anchor {index} must be an object {{"point": [x, y], "landmarks": [...]}}')
    try:
        xy = tuple(float(v) for v in point)
    except (TypeError, ValueError):
        xy = ()
    if len(xy) != 2 or not all(math.isfinite(v) for v in xy) or isinstance(point, (str, bytes)):
        raise InputError(f"{name}: anchor {index}: point must be [x, y], two numbers in picture pixels; got {point!r}")
    if isinstance(landmarks, (int, np.integer)) and not isinstance(landmarks, bool):
        landmarks = [landmarks]
    if isinstance(landmarks, (str, bytes)) or not isinstance(landmarks, (Sequence, np.ndarray)) or len(landmarks) == 0:
        raise InputError(
            f"{name}: anchor {index}: landmarks must be an index or a non-empty list of indices {LANDMARK_RANGES}"
        )
    idx = []
    for v in landmarks:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputError(f"{name}: anchor {index}: landmark {v!r} is not an integer; valid: {LANDMARK_RANGES}")
        if not 0 <= int(v) < NUM_LANDMARKS:
            raise InputError(f"{name}: anchor {index}: landmark {int(v)} is out of range; valid: {LANDMARK_RANGES}")
        idx.append(int(v))
    return Anchor(xy, tuple(idx))


# --- pictures and spec files -----------------------------------------------------------------


def read_rgba(path: str | os.PathLike) -> np.ndarray:
    """Read an overlay picture with transparency as RGBA uint8; a clear error if it has no alpha."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such overlay picture" if not path.exists() else f"{path}: not a file")
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable picture")
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels != 4:
        raise InputError(
            f"{path}: overlay picture has no alpha channel ({channels} channel{'s' if channels > 1 else ''});"
            " use a PNG (or WebP, TIFF) with transparency, RGBA"
        )
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise InputError(f"{path}: picture is {img.shape[1]}x{img.shape[0]}, over the size limit")
    if img.dtype == np.uint16:
        img = (img / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {img.dtype}; use an 8-bit RGBA PNG")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def overlay_from_spec(spec: Mapping, base_dir: str | os.PathLike | None = None, source: str = "spec") -> Overlay:
    """Build an :class:`Overlay` from a spec mapping (the parsed JSON, or a dict made in Python).

    ``spec["image"]`` is a picture path (relative paths are resolved against ``base_dir``,
    the spec file's folder; the current folder by default) or, from Python, an RGBA array.
    """
    if not isinstance(spec, Mapping):
        raise InputError(f'{source}: an overlay spec must be a JSON object {{"image": ..., "anchors": [...]}}')
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown key '{unknown[0]}'; valid keys: {', '.join(SPEC_KEYS)}")
    if "image" not in spec or "anchors" not in spec:
        missing = "image" if "image" not in spec else "anchors"
        raise InputError(f'{source}: missing "{missing}"; a spec needs "image" (an RGBA picture) and "anchors"')
    anchors = spec["anchors"]
    if isinstance(anchors, (str, bytes, Mapping)) or not isinstance(anchors, Sequence):
        raise InputError(f'{source}: "anchors" must be a list of {{"point": [x, y], "landmarks": [...]}} objects')
    if len(anchors) < 2:
        raise InputError(f"{source}: needs at least 2 anchors, got {len(anchors)}")
    checked = [_check_anchor(a, i, source) for i, a in enumerate(anchors, 1)]  # before reading the picture
    image = spec["image"]
    default_name = Path(source).stem if source != "spec" else "overlay"
    name = str(spec.get("name") or default_name)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 4:
            channels = 1 if image.ndim == 2 else image.shape[-1]
            raise InputError(
                f"{source}: overlay picture has no alpha channel ({channels} channels); give an RGBA (H, W, 4) array"
            )
        rgba = image.astype(np.uint8) if image.dtype != np.uint8 else image
    elif isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        try:
            rgba = read_rgba(path)
        except InputError as exc:  # name the spec file too: the picture's path alone may not say which spec
            raise InputError(f"{source}: {exc}" if source != "spec" else str(exc)) from None
    else:
        raise InputError(f'{source}: "image" must be the path of an RGBA picture')
    overlay = Overlay(rgba, checked, name=name, source=None if source == "spec" else source)
    if overlay.warning:
        warnings.warn(overlay.warning, UserWarning, stacklevel=2)
    return overlay


def load_spec(path: str | os.PathLike) -> Overlay:
    """Read an overlay spec JSON file (see docs/filters.md) and build its :class:`Overlay`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such overlay spec" if not path.exists() else f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    return overlay_from_spec(spec, base_dir=path.parent, source=str(path))
