"""The face detector interface, the name registry, and the box calibration.

A detector takes an RGB uint8 image and returns ``(boxes, scores)``: boxes are
(N, 4) float32 ``x0, y0, x1, y1`` in image pixels (origin at the centre of the
top-left pixel), scores (N,) float32 in [0, 1] (how face-like the detector found the
region; 0.5 is where its own false detections start to be rare), both sorted by decreasing
score. A detector built with ``min_face`` (pixels) never reports a face whose keypoint box
(below) is narrower than that, whatever its own way of searching (:meth:`FaceDetector.drop_small`). Every
detector draws its boxes its own way (Haar's box covers the forehead, a learned
detector's may not), so each also maps its boxes to the "gt" keypoint box, the
tight box around the 68 landmarks (:func:`facekeypoints.geometry.keypoint_box`),
which is what the landmark model's crop rule expects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..errors import InputError


class FaceDetector(ABC):
    """A face detector, created by name with :func:`create_detector`."""

    #: The name it is registered under.
    name: str = ""
    #: CPU threads one ``detect`` call may use (None: the detector library's own default). A server
    #: or video reader that runs several detections at once gives each a share of the CPUs.
    threads: int | None = None

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Find faces in an RGB uint8 (H, W, 3) image.

        Returns (N, 4) float32 boxes ``x0, y0, x1, y1`` in pixels and (N,)
        float32 scores in [0, 1] (higher is more confident), sorted by decreasing score.
        """

    def candidates(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`detect`, but down to ``min_score``, below the detector's own threshold where it can
        (the pipeline reads such unsure candidates and keeps them only when their landmarks fit well).
        A detector without such a band returns its own detections."""
        return self.detect(rgb)

    def to_keypoint_box(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) boxes of this detector to (N, 4) "gt" keypoint boxes."""
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()

    def drop_small(
        self, boxes: np.ndarray, scores: np.ndarray, min_face: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keep the detections whose keypoint box is at least ``min_face`` pixels wide (None: all):
        the one meaning of ``min_face`` for every detector."""
        if min_face is None or len(boxes) == 0:
            return boxes, scores
        kb = self.to_keypoint_box(boxes)
        keep = (kb[:, 2] - kb[:, 0]) >= float(min_face)
        return boxes[keep], scores[keep]

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.detect(rgb)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def empty_detections() -> tuple[np.ndarray, np.ndarray]:
    """``(boxes, scores)`` for no faces: shapes (0, 4) and (0,)."""
    return np.zeros((0, 4), dtype=np.float32), np.zeros((0,), dtype=np.float32)


@dataclass(frozen=True)
class BoxCalibration:
    """Per-axis map from a detector's box to the keypoint box.

    With ``s`` the detector box's longer side and ``(cx, cy)`` its centre, the
    keypoint box has centre ``(cx + dx * s, cy + dy * s)`` and size
    ``(sx * s, sy * s)``.
    """

    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N, 4) detector boxes to (N, 4) float32 keypoint boxes."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        cx = (b[:, 0] + b[:, 2]) / 2.0 + self.dx * side
        cy = (b[:, 1] + b[:, 3]) / 2.0 + self.dy * side
        hw, hh = self.sx * side / 2.0, self.sy * side / 2.0
        return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1).astype(np.float32)

    @classmethod
    def fit(cls, detector_boxes: np.ndarray, keypoint_boxes: np.ndarray) -> BoxCalibration:
        """Robust (median) fit from matched pairs of (N, 4) boxes."""
        d = np.asarray(detector_boxes, dtype=np.float64).reshape(-1, 4)
        k = np.asarray(keypoint_boxes, dtype=np.float64).reshape(-1, 4)
        if len(d) == 0 or len(d) != len(k):
            raise ValueError("need the same, non-zero number of detector and keypoint boxes")
        side = np.maximum(d[:, 2] - d[:, 0], d[:, 3] - d[:, 1])
        dx = ((k[:, 0] + k[:, 2]) - (d[:, 0] + d[:, 2])) / 2.0 / side
        dy = ((k[:, 1] + k[:, 3]) - (d[:, 1] + d[:, 3])) / 2.0 / side
        sx = (k[:, 2] - k[:, 0]) / side
        sy = (k[:, 3] - k[:, 1]) / side
        return cls(*(float(np.median(v)) for v in (dx, dy, sx, sy)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of two sets of ``x0, y0, x1, y1`` boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


_REGISTRY: dict[str, Callable[..., FaceDetector]] = {}

T = TypeVar("T", bound=Callable[..., FaceDetector])


def register(name: str) -> Callable[[T], T]:
    """Decorator registering a detector class (or factory) under ``name``."""

    def deco(factory: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"a face detector named {name!r} is already registered")
        _REGISTRY[name] = factory
        if isinstance(factory, type) and not getattr(factory, "name", ""):
            factory.name = name
        return factory

    return deco


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`, sorted."""
    return sorted(_REGISTRY)


def create_detector(name: str, **kwargs) -> FaceDetector:
    """Build the detector registered as ``name``; unknown names raise :class:`InputError`."""
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown face detector {name!r}; valid names: {', '.join(available_detectors()) or '(none)'}"
        ) from None
    return factory(**kwargs)
