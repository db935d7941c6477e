"""Face detectors behind one small interface, created by name.

>>> from facekeypoints.detectors import create_detector
>>> boxes, scores = create_detector("haar").detect(rgb)
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

__all__ = [
    "BoxCalibration",
    "FaceDetector",
    "HaarDetector",
    "available_detectors",
    "box_iou",
    "create_detector",
    "empty_detections",
    "register",
]
