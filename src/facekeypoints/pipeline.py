"""FaceKeypointDetector: face detector -> square crops -> ONNX model -> keypoints in image pixels.

With ``refine`` (the default) a second pass re-crops each face from the first
pass's landmarks, rotated so the eyes are level, and predicts again: the result
then depends little on the face detector's box convention. With ``flip`` the
last pass also reads the mirrored crop and averages the two answers (test-time
flip: a little more accurate, one more model run per face), after adding the
model's mirror offset to the mirrored answer (:mod:`facekeypoints.training.mirror`);
a model whose offset is unknown skips the mirrored crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .detectors import FaceDetector, create_detector
from .geometry import apply_affine, box_crop_matrix, invert_affine, keypoints_crop_matrix, warp
from .image_io import ImageLike, load_image
from .landmarks import flip_keypoints
from .pose import head_pose
from .runtime import KeypointModel


@dataclass
class Face:
    """One face: ``box`` (x0, y0, x1, y1) and ``keypoints`` (68, 2) in image pixels, x then y.

    ``pose``: (yaw, pitch, roll) in degrees (signs in :mod:`facekeypoints.pose`), or None.
    ``track_id``: the face's id across video frames (:mod:`facekeypoints.video`), else None.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    pose: tuple[float, float, float] | None = None
    track_id: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict: box, score, keypoints (68 [x, y] pairs, pixels), plus any extra fields."""
        d = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": [[round(float(x), 2), round(float(y), 2)] for x, y in self.keypoints],
        }
        if self.pose is not None:
            d["pose"] = {k: round(float(v), 2) for k, v in zip(("yaw", "pitch", "roll"), self.pose)}
        if self.track_id is not None:
            d["track_id"] = int(self.track_id)
        d.update(self.extra)
        return d


class FaceKeypointDetector:
    """Find faces and place 68 landmarks on each.

    >>> detector = FaceKeypointDetector()           # bundled model, YuNet face detector, CPU
    >>> faces = detector("photo.jpg")                # list[Face], possibly empty
    >>> kps = detector.keypoints(rgb, boxes)         # (N, 68, 2) for your own boxes

    ``model`` is a path to an exported ``.onnx`` (with its ``.json``) or None for
    the bundled one; ``detector`` a registered face-detector name or object.
    ``refine``: a second pass re-cropped from the first pass's landmarks, eyes levelled.
    ``flip``: the last pass also reads the mirrored crop and averages (one more model
    run per face; off for a model whose metadata has no mirror offset).
    ``threads``: ONNX Runtime threads (None: its default).
    """

    def __init__(
        self,
        model: str | Path | KeypointModel | None = None,
        detector: str | FaceDetector = "yunet",
        refine: bool = True,
        threads: int | None = None,
        flip: bool = True,
    ):
        self.model = model if isinstance(model, KeypointModel) else KeypointModel(model, threads=threads)
        self._detector_spec = detector
        self._detector: FaceDetector | None = detector if not isinstance(detector, str) else None
        self.refine = refine
        self.flip = flip and self.model.mirror_offset is not None

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = create_detector(self._detector_spec)
        return self._detector

    def model_info(self) -> dict:
        """Name, version and input size of the landmark model, and the face detector's name."""
        name = getattr(self._detector, "name", self._detector_spec if isinstance(self._detector_spec, str) else "?")
        return {
            "name": self.model.name,
            "version": self.model.version,
            "input_size": self.model.input_size,
            "detector": name,
            "refine": self.refine,
            "flip": self.flip,
        }

    def __call__(self, image: ImageLike) -> list[Face]:
        """Detect every face in ``image`` (path, bytes or RGB uint8 array) and place its landmarks."""
        rgb = load_image(image)
        boxes, scores = self.detector.detect(rgb)
        if len(boxes) == 0:
            return []
        kps = self.keypoints(rgb, self.detector.to_keypoint_box(boxes))
        size = (rgb.shape[1], rgb.shape[0])
        return [
            Face(np.asarray(b, np.float32), float(s), k, pose=head_pose(k, size)) for b, s, k in zip(boxes, scores, kps)
        ]

    def _predict(self, rgb: np.ndarray, matrices: list[np.ndarray], flip: bool = False) -> np.ndarray:
        size = self.model.input_size
        crops = np.stack([warp(rgb, m, size) for m in matrices])
        if flip:  # the mirrored crops in the same batch; their points mirrored back and re-indexed
            both = self.model.predict(np.concatenate([crops, crops[:, :, ::-1]]))
            mirrored = flip_keypoints(both[len(crops) :], size) + self.model.mirror_offset
            pred = (both[: len(crops)] + mirrored) / 2.0
        else:
            pred = self.model.predict(crops)
        return np.stack([apply_affine(p, invert_affine(m)) for p, m in zip(pred, matrices)])

    def keypoints(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Landmarks for caller-given face boxes, no detection.

        ``rgb``: RGB uint8 (H, W, 3). ``boxes``: (N, 4) x0, y0, x1, y1 in pixels, in the
        "keypoint box" convention (the tight box around a face's 68 points); boxes from
        another detector should go through its ``to_keypoint_box`` first (``refine``
        makes the result tolerant to the difference). Returns (N, 68, 2) float32 pixels.
        """
        rgb = load_image(rgb) if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3) else rgb
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 68, 2), np.float32)
        rule, size = self.model.crop_rule, self.model.input_size
        kps = self._predict(rgb, [box_crop_matrix(b, rule, size) for b in boxes], flip=self.flip and not self.refine)
        if self.refine:
            kps = self._predict(rgb, [keypoints_crop_matrix(k, rule, size) for k in kps], flip=self.flip)
        return kps.astype(np.float32)
