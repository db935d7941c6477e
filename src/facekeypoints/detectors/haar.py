"""OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_default.xml``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..image_io import check_image
from .base import BoxCalibration, FaceDetector, empty_detections, register

CASCADE_FILE = "haarcascade_frontalface_default.xml"

#: Haar box -> keypoint box, fitted (medians over 3334 matched faces) on the 3462
#: Udacity TRAINING faces by ``python bench/calibrate_detector.py haar`` with the
#: defaults below; never on the test faces. There it found 96.3% of the faces
#: (calibrated box IoU >= 0.3), median IoU 0.775, 0.021 other boxes per image
#: (min_neighbors=3: 98.3%, 0.045 other boxes per image).
HAAR_CALIBRATION = BoxCalibration(dx=0.0077, dy=0.1667, sx=0.8636, sy=0.8333)


def cascade_path() -> Path:
    """Path of the frontal-face cascade bundled with opencv-python."""
    root = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not root:
        raise ModelError("this OpenCV build has no bundled Haar cascades (cv2.data.haarcascades); reinstall opencv")
    path = Path(root) / CASCADE_FILE
    if not path.is_file():
        raise ModelError(f"{path}: Haar cascade file not found; reinstall opencv-python-headless<5")
    return path


#: The cascade's last-stage weight (unbounded) is squashed to [0, 1] by a logistic centred here:
#: weight 4 -> score 0.5. On the Udacity TRAINING faces half of the boxes that are no annotated face
#: weigh under 4, against 3 % of the faces; in the_beatles.jpg a drum and a jacket weigh 2.9 and 3.4.
HAAR_WEIGHT_AT_HALF = 4.0


def haar_score(weights: np.ndarray) -> np.ndarray:
    """Cascade weights -> scores in [0, 1] (0.5 at :data:`HAAR_WEIGHT_AT_HALF`, 0.98 at weight 8)."""
    w = np.asarray(weights, dtype=np.float64)
    return (1.0 / (1.0 + np.exp(-(w - HAAR_WEIGHT_AT_HALF)))).astype(np.float32)


@register("haar")
class HaarDetector(FaceDetector):
    """Viola-Jones frontal faces: fast and dependency-free, weak on profiles.

    Runs on a grayscale, histogram-equalised copy, downscaled so its longer
    side is at most ``max_side`` pixels. Faces smaller than ``min_size`` pixels in
    that copy are not looked for; with ``min_face``, faces whose keypoint box is narrower
    than ``min_face`` pixels in the original are neither looked for nor reported. Scores are
    the cascade's last-stage weights squashed to [0, 1] (:func:`haar_score`; 0.5 at weight 4);
    ``min_score`` drops detections under a score.
    """

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
        max_side: int = 1280,
        min_score: float | None = None,
        min_face: float | None = None,
    ):
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError("this OpenCV build has no CascadeClassifier; install opencv-python-headless<5")
        path = cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"{path}: cannot load the Haar cascade (corrupt file?)")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.max_side = int(max_side)
        self.min_score = min_score
        if min_score is not None and not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if min_face is not None and not float(min_face) > 0:
            raise ValueError(f"min_face must be > 0, got {min_face}")
        self.min_face = None if min_face is None else float(min_face)
        self.calibration = HAAR_CALIBRATION

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = check_image(np.asarray(rgb))
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_size = self.min_size
        if self.min_face is not None:  # keypoint-box width -> Haar box side in the searched copy (>= its 24 px window)
            min_size = max(24, int(self.min_face / max(self.calibration.sx, self.calibration.sy) * scale))
        if min(gray.shape) < min_size:
            return empty_detections()
        rects, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_size, min_size),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return empty_detections()
        r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        scores = haar_score(np.asarray(weights, dtype=np.float64).reshape(-1))
        # Haar rects are (x, y, w, h) with integer corners; convert to pixel-centre
        # coordinates of the full-resolution image.
        inv = 1.0 / scale
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], axis=1) * inv - 0.5
        boxes = boxes.astype(np.float32)
        if self.min_score is not None:
            keep = scores >= self.min_score
            boxes, scores = boxes[keep], scores[keep]
        boxes, scores = self.drop_small(boxes, scores, self.min_face)
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order]

    def to_keypoint_box(self, boxes: np.ndarray) -> np.ndarray:
        return self.calibration.apply(boxes)
