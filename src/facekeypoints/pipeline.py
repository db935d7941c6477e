"""FaceKeypointDetector: face detector -> square crops -> ONNX model -> keypoints in image pixels.

With ``refine`` (the default) a second pass re-crops each face from the first
pass's landmarks, rotated so the eyes are level, and predicts again: the result
then depends little on the face detector's box convention. With ``flip`` the
last pass also reads the mirrored crop and averages the two answers (test-time
flip: a little more accurate, one more model run per face), after adding the
model's mirror offset to the mirrored answer (:mod:`facekeypoints.training.mirror`);
a model whose offset is unknown skips the mirrored crop.

Every pass is scored by the model itself (its landmark scores, :mod:`facekeypoints.quality`).
When the first pass looks unsure, a few rotated and widened crops of the same box are read
too and the best-scoring one is kept; and the second pass replaces the first unless it scores
clearly worse (:data:`quality.REFINE_MARGIN`). So a wrong first pass cannot be zoomed into by the second.
Where the second pass is kept and agrees with the first, a quarter of the first reading is mixed
into it (:func:`quality.mix_first_pass`): read anyway, it averages out part of the second's error.
A face whose answer is tilted (its eye line more than :data:`quality.LEVEL_AGAIN_DEG` from level)
is read once more from a crop levelled by that answer: its first crop was not turned with the head.

Output points follow a landmark ``convention`` (:mod:`facekeypoints.conventions`): iBUG 300-W
by default, or the Udacity labels' ``"udacity"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import quality as _quality
from .conventions import check_convention, convert, shift_in_face_frame
from .detectors import FaceDetector, create_detector
from .detectors.base import box_iou
from .errors import InputError
from .geometry import (
    apply_affine,
    box_crop_matrix,
    eye_angle,
    invert_affine,
    keypoint_box,
    keypoints_crop_matrix,
    warp,
)
from .image_io import MAX_PIXELS, ImageLike, load_image
from .landmarks import FLIP_PERMUTATION, flip_keypoints
from .pose import head_pose
from .runtime import KeypointModel

#: What caller-given boxes are: the face detector's boxes (``Face.box``) or the tight box of the 68 points.
BOX_CONVENTIONS = ("detector", "landmarks")
#: Two boxes overlapping by this IoU or more are the same face: an unsure candidate (``unsure_score``) over
#: a face the detector is sure of is not read; readings whose landmarks' boxes overlap so are one face (the
#: passes from a box half over a face, a partly seen neighbour's say, may settle on that face), reported once;
#: and a face found in a turned copy (``turns``) takes the place of the upright reading it overlaps, by their
#: boxes or their landmarks' boxes.
SAME_FACE_IOU = 0.3
#: Quarter turns (counter-clockwise, as :func:`numpy.rot90` counts them) of a photo searched again when it
#: gives no face, or only failed fits, upright: a quarter turn either way, then upside down.
TURNS = (1, 3, 2)


#: OpenCV's rotation for each quarter turn of :data:`TURNS` (counter-clockwise, as :func:`numpy.rot90`)
_ROTATIONS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def turn_image(rgb: np.ndarray, k: int) -> np.ndarray:
    """``np.rot90(rgb, k)`` as a new contiguous picture: the same pixels, by OpenCV's rotate, which copies a
    640x480 photo in about 0.2 ms where numpy's strided copy of the turned view takes about 3 ms."""
    k %= 4
    return rgb.copy() if k == 0 else cv2.rotate(np.ascontiguousarray(rgb), _ROTATIONS[k])


def unturn_points(points: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray:
    """(..., 2) pixel points (x, y) of ``np.rot90(image, k)`` in the pixels of ``image`` itself, whose
    (height, width) is ``shape``."""
    h, w = shape
    p = np.asarray(points, np.float32)
    x, y = p[..., 0], p[..., 1]
    k %= 4
    if k == 1:
        x, y = (w - 1) - y, x
    elif k == 2:
        x, y = (w - 1) - x, (h - 1) - y
    elif k == 3:
        x, y = y, (h - 1) - x
    return np.stack([x, y], axis=-1).astype(np.float32)


def _levelling_turns(keypoints: list[np.ndarray], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The quarter turns (of :data:`TURNS`) whose copies of a photo of ``shape`` show upright the faces among
    ``keypoints`` (each (68, 2) pixels) whose eye line is further than :data:`quality.ROLLED_DEG` from level."""
    turns = []
    for kps in keypoints:
        if abs(np.degrees(eye_angle(kps))) <= _quality.ROLLED_DEG:
            continue
        tilt = {k: abs(np.degrees(eye_angle(unturn_points(kps, -k, shape[:2])))) for k in TURNS}
        best = min(tilt, key=tilt.get)
        if best not in turns:
            turns.append(best)
    return tuple(k for k in TURNS if k in turns)


def _rounded(values: np.ndarray, decimals: int) -> list:
    """``values`` as nested lists of Python floats rounded to ``decimals`` places (numpy's rounding, in one
    call: a tenth of the time of rounding each float, which for 68 points counts in a JSON answer)."""
    return np.round(np.asarray(values, np.float64), decimals).tolist()


@dataclass
class Face:
    """One face: ``box`` (x0, y0, x1, y1) and ``keypoints`` (68, 2) in image pixels, x then y.

    ``score``: the face detector's confidence. ``quality``: how sure the landmark model is of
    the whole fit, in [0, 1] (calibrated: :mod:`facekeypoints.quality` says what a value means);
    ``landmark_scores``: (68,) in [0, 1], one per point. Both None for a model without scores.
    ``pose``: (yaw, pitch, roll) in degrees (signs in :mod:`facekeypoints.pose`), or None.
    ``track_id``: the face's id across video frames (:mod:`facekeypoints.video`), else None.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    pose: tuple[float, float, float] | None = None
    track_id: int | None = None
    landmark_scores: np.ndarray | None = None
    quality: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict: box, score, keypoints (68 [x, y] pairs, pixels), quality and
        landmark_scores (when the model gives them), plus any extra fields."""
        d = {
            "box": _rounded(self.box, 2),
            "score": round(float(self.score), 4),
            "keypoints": _rounded(self.keypoints, 2),
        }
        if self.quality is not None:
            d["quality"] = round(float(self.quality), 4)
        if self.landmark_scores is not None:
            d["landmark_scores"] = _rounded(self.landmark_scores, 3)
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
    >>> kps = detector.keypoints(rgb, boxes)         # (N, 68, 2) for your own boxes (detector's kind)

    ``model`` is a path to an exported ``.onnx`` (with its ``.json``) or None for
    the bundled one; ``detector`` a registered face-detector name or object.
    ``refine``: a second pass re-cropped from the first pass's landmarks, eyes levelled.
    ``flip``: the last pass also reads the mirrored crop and averages (one more model
    run per face; off for a model whose metadata has no mirror offset).
    ``threads``: ONNX Runtime threads per call, and the face detector's when this builds it from a
    name (None: the CPUs this process may really use, from its affinity mask and cgroup quota:
    :func:`facekeypoints.cpus.available_cpus`).
    ``convention``: landmark convention of the output points, "ibug" (iBUG 300-W, as dlib) or
    "udacity" (the Udacity labels'): :mod:`facekeypoints.conventions`.
    ``rescue``: when the first pass looks unsure, also read rotated and widened crops of the box
    and keep the best-scoring (needs a model with landmark scores).
    ``max_megapixels``: the largest photo (path or encoded bytes) decoded, refused from its header
    before decoding (None: no limit); arrays you pass are never refused for their size.
    ``min_face``: faces narrower than this many pixels (the tight box of their 68 points, about
    ear to ear at eye level) are not reported, whatever the detector (None: its default search).
    ``max_faces``: report at most this many faces, the largest (by box area) first (None: all,
    by decreasing detector score).
    ``providers``: ONNX Runtime execution providers for the landmark model, e.g.
    ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` where installed (default: the CPU).
    ``reject_quality``: a detection the face detector scored under
    :data:`quality.CONFIRM_SCORE` is dropped when its landmark fit's quality is under this
    (default :data:`quality.REJECT_QUALITY`; None keeps every detection).
    ``unsure_score``: the face detector's candidates scored from this up to its own threshold
    (``detector.min_score``) are read too, and reported only when their landmarks fit as a face does
    (quality at least the model's threshold, :attr:`quality.Calibration.threshold`): faces in noisy,
    dark or strongly tilted photos (default :data:`quality.UNSURE_SCORE`; None: the detector's own
    threshold only). Readings whose landmarks land on one face (:data:`SAME_FACE_IOU`; a box half over a
    face may be read as that face) are reported as one face: the best fitting reading, with the box and
    score of the detection whose box fits it best.
    ``turns``: a photo that gives no face upright, or only failed fits (:data:`quality.TURN_BELOW`), is
    searched again turned a quarter turn either way and upside down (:data:`TURNS`): people lying down,
    photos whose orientation was lost; and a face found on its side (:data:`quality.ROLLED_DEG`) is read again
    in the copy that shows it upright, the better fitting reading kept.
    A face found so is reported in the photo's own pixels, with ``extra["turned"]`` (90, 270 or 180:
    the counter-clockwise turn of the copy it was found in).
    """

    def __init__(
        self,
        model: str | Path | KeypointModel | None = None,
        detector: str | FaceDetector = "yunet",
        refine: bool = True,
        threads: int | None = None,
        flip: bool = True,
        convention: str = "ibug",
        rescue: bool = True,
        max_megapixels: float | None = MAX_PIXELS / 1e6,
        min_face: float | None = None,
        max_faces: int | None = None,
        providers: list[str] | None = None,
        reject_quality: float | None = _quality.REJECT_QUALITY,
        unsure_score: float | None = _quality.UNSURE_SCORE,
        turns: bool = True,
    ):
        if min_face is not None and not float(min_face) > 0:
            raise InputError(f"min_face must be a positive number of pixels, got {min_face}")
        if max_faces is not None and not (isinstance(max_faces, int) and max_faces >= 1):
            raise InputError(f"max_faces must be a whole number >= 1, got {max_faces}")
        if isinstance(model, KeypointModel):
            self.model = model
        else:
            self.model = KeypointModel(model, threads=threads, providers=providers)
        self.threads = int(threads) if threads else None  # also bounds the face detector's threads per call
        self.min_face = None if min_face is None else float(min_face)
        self.max_faces = max_faces
        self.reject_quality = reject_quality
        if unsure_score is not None and not 0.0 <= float(unsure_score) <= 1.0:
            raise InputError(f"unsure_score must be in [0, 1] (or None), got {unsure_score}")
        self.unsure_score = None if unsure_score is None or not self.model.has_scores else float(unsure_score)
        self.turns = bool(turns) and self.model.has_scores
        self._detector_spec = detector
        self._detector: FaceDetector | None = detector if not isinstance(detector, str) else None
        self.refine = refine
        self.flip = flip and self.model.mirror_offset is not None
        self.convention = check_convention(convention)
        self.rescue = rescue and self.model.has_scores
        self.calibration = _quality.Calibration.from_metadata(self.model.metadata)
        if max_megapixels is not None and not max_megapixels > 0:
            raise InputError(f"max_megapixels must be positive (or None: no limit), got {max_megapixels}")
        self.max_pixels = None if max_megapixels is None else int(max_megapixels * 1e6)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            kwargs = {} if self.min_face is None else {"min_face": self.min_face}  # searches down to it
            self._detector = create_detector(self._detector_spec, **kwargs)
            self._detector.threads = self.threads  # None: the detector library's default
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
            "convention": self.convention,
            "rescue": self.rescue,
            "unsure_score": self.unsure_score,
            "turns": self.turns,
        }

    def __call__(self, image: ImageLike) -> list[Face]:
        """Detect every face in ``image`` (path, bytes or RGB uint8 array) and place its landmarks.

        With ``turns``, a photo that gives no face upright, or only failed fits (quality under
        :data:`quality.TURN_BELOW`), is searched again turned by a quarter turn either way and upside
        down; a face found there whose landmarks fit well (quality at least the model's threshold) is
        reported in the photo's own pixels, in place of the failed fit of the same face upright, and so is one
        that fits better than that failed fit without fitting well, or, where nothing was found upright, one
        the detector is sure of (:meth:`_turned_faces`). Otherwise a face whose answer's eye line is more than
        :data:`quality.ROLLED_DEG` from level is read again in the copy that shows it closest to upright, and
        the better fitting reading is kept."""
        rgb = load_image(image, self.max_pixels)
        faces = self._faces(rgb)
        if self.turns and not any(f.quality >= _quality.TURN_BELOW for f in faces):  # turns: the model has scores
            faces = self._turned_faces(rgb, faces)
        elif self.turns:
            levelling = _levelling_turns([f.keypoints for f in faces if f.quality >= _quality.TURN_BELOW], rgb.shape)
            if levelling:  # faces on their side: read again in the copies that show them upright
                faces = self._turned_faces(rgb, faces, levelling, add=False)
        if self.max_faces is not None:
            area = [float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])) for f in faces]
            faces = [faces[i] for i in np.argsort(area, kind="stable")[::-1][: self.max_faces]]
        return faces

    def _turned_faces(
        self, rgb: np.ndarray, faces: list[Face], turns: tuple[int, ...] = TURNS, add: bool = True
    ) -> list[Face]:
        """``faces`` (read upright), with the faces of the photo turned by :data:`TURNS` in place of those
        they overlap (:data:`SAME_FACE_IOU`) or beside them: a turned reading is taken when it fits well
        (quality at least the model's threshold), or when it fits better than the failed fits (quality under
        :data:`quality.TURN_BELOW`) it replaces, itself at least that: a face the detector found upside down
        is then read the right way up even when it is hard to read that way too. Where it replaces nothing, such
        a reading adds a face only when the detector is sure of it (score at least its ``min_score``), as an
        upright detection would be reported. Of several readings of one face the best fitting is kept.
        ``turns``: the quarter turns searched; ``add=False``: readings that replace no face are dropped."""
        h, w = rgb.shape[:2]
        size = (w, h)
        own = getattr(self.detector, "min_score", None)  # the detector's own threshold (None: all are sure)
        for k in turns:
            found = self._faces(turn_image(rgb, k))
            for f in found:
                if f.quality < _quality.TURN_BELOW:
                    continue
                kps = unturn_points(f.keypoints, k, (h, w))
                corners = unturn_points(f.box.reshape(2, 2), k, (h, w))
                box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
                same = np.zeros(len(faces), bool)
                if faces:
                    same |= box_iou(box, [g.box for g in faces])[0] >= SAME_FACE_IOU
                    same |= box_iou(keypoint_box(kps), [keypoint_box(g.keypoints) for g in faces])[0] >= SAME_FACE_IOU
                replaced = [g for g, s in zip(faces, same) if s]
                if not replaced and not add:
                    continue
                take = all(g.quality < f.quality for g in replaced)
                if f.quality < self.calibration.threshold:
                    # in place of failed fits (or turned readings); a new face only from a detection the
                    # detector is sure of, as upright (a hard face fits under the threshold either way up)
                    sure = own is None or f.score >= own
                    take = take and (bool(replaced) or sure)
                    take = take and all(g.quality < _quality.TURN_BELOW or "turned" in g.extra for g in replaced)
                if not take:
                    continue
                faces = [g for g, s in zip(faces, same) if not s]
                faces.append(
                    Face(
                        box,
                        f.score,
                        kps,
                        pose=head_pose(kps, size),
                        landmark_scores=f.landmark_scores,
                        quality=f.quality,
                        extra={"turned": int(90 * k)},
                    )
                )
        return faces

    def _faces(self, rgb: np.ndarray) -> list[Face]:
        """The faces found in ``rgb`` as it is, every one that the rules keep (no ``max_faces``)."""
        boxes, scores, unsure = self._detect(rgb)
        if len(boxes) == 0:
            return []
        kps, lm_scores = self.landmarks(rgb, boxes)
        size = (rgb.shape[1], rgb.shape[0])
        quality = [None] * len(boxes) if lm_scores is None else [self.calibration.quality(ls) for ls in lm_scores]
        readings = []
        for i, (s, q) in enumerate(zip(scores, quality)):
            if unsure[i] and (q is None or q < self.calibration.threshold):
                continue  # a candidate under the detector's threshold whose landmarks do not fit a face
            if q is not None and self.reject_quality is not None:
                if s < _quality.CONFIRM_SCORE and q < self.reject_quality:
                    continue  # an unsure detection whose landmarks find no face either
            readings.append(i)
        # Readings whose landmarks land on one face (their boxes overlapping by SAME_FACE_IOU: the passes from a
        # box half over a face, a partly seen neighbour's say, may settle on that face) give one face: the best
        # fitting reading (quality; the detector's score for a model without scores), with the box and score of
        # the detection whose box fits that reading best.
        around = keypoint_box(kps)
        overlap = box_iou(around, around) >= SAME_FACE_IOU  # [reading, reading]
        fit = box_iou(self.detector.to_keypoint_box(boxes), around)  # [detection, reading]
        face_box: dict[int, int] = {}  # kept reading -> the detection that gives the face its box
        for i in sorted(readings, key=lambda j: -(scores[j] if quality[j] is None else quality[j])):
            same = [k for k in face_box if overlap[i, k]]
            if not same:
                face_box[i] = i
            elif fit[i, same[0]] > fit[face_box[same[0]], same[0]]:
                face_box[same[0]] = i
        return [
            Face(
                np.asarray(boxes[d], np.float32),
                float(scores[d]),
                kps[i],
                pose=head_pose(kps[i], size),
                landmark_scores=None if lm_scores is None else lm_scores[i],
                quality=quality[i],
            )
            for i, d in sorted(face_box.items(), key=lambda item: item[1])
        ]

    def _detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(boxes, scores, unsure)``: the detector's faces (at least ``min_face`` wide) and, with
        ``unsure_score``, its candidates from that score up to its own threshold that overlap none of
        them (IoU under :data:`SAME_FACE_IOU`), flagged ``unsure`` (N,) bool."""
        det = self.detector
        own = getattr(det, "min_score", None)
        if self.unsure_score is None or own is None or self.unsure_score >= own:
            boxes, scores = det.drop_small(*det.detect(rgb), self.min_face)  # a detector given as an object
            return boxes, scores, np.zeros(len(boxes), bool)
        boxes, scores = det.drop_small(*det.candidates(rgb, self.unsure_score), self.min_face)
        unsure = scores < own
        keep = ~unsure
        if unsure.any():
            sure = boxes[~unsure]
            overlap = box_iou(boxes[unsure], sure).max(axis=1) if len(sure) else np.zeros(int(unsure.sum()))
            keep[unsure] = overlap < SAME_FACE_IOU
        return boxes[keep], scores[keep], unsure[keep]

    def _predict(
        self, rgb: np.ndarray, matrices: list[np.ndarray], flip: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One model pass over the crops ``matrices`` cut: (N, 68, 2) image pixels in the model's own
        convention, and (N, 68) landmark scores or None."""
        size = self.model.input_size
        crops = np.stack([warp(rgb, m, size) for m in matrices])
        if flip:  # the mirrored crops in the same batch; their points mirrored back and re-indexed
            both, both_scores = self.model.predict_scored(np.concatenate([crops, crops[:, :, ::-1]]))
            n = len(crops)
            mirrored = flip_keypoints(both[n:], size) + self.model.mirror_offset
            pred = (both[:n] + mirrored) / 2.0
            scores = None if both_scores is None else (both_scores[:n] + both_scores[n:][:, FLIP_PERMUTATION]) / 2.0
        else:
            pred, scores = self.model.predict_scored(crops)
        return np.stack([apply_affine(p, invert_affine(m)) for p, m in zip(pred, matrices)]), scores

    def _rescue_crops(self, box: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
        """Crop matrices of :data:`quality.RESCUE_CROPS` around the box's centre and (with
        :data:`quality.RESCUE_RECENTRE`) around the median of an unsure reading's points, which
        finds the face's middle even when their spread is wrong."""
        rule, size = self.model.crop_rule, self.model.input_size
        x0, y0, x1, y1 = (float(v) for v in box)
        half = max(x1 - x0, y1 - y0) / 2.0
        centres = [((x0 + x1) / 2.0, (y0 + y1) / 2.0), tuple(np.median(points, axis=0))]
        mats = []
        for cx, cy in centres[: 1 + _quality.RESCUE_RECENTRE]:
            for angle_deg, widen in _quality.RESCUE_CROPS:
                h = half * widen
                mats.append(
                    box_crop_matrix(np.array([cx - h, cy - h, cx + h, cy + h]), rule, size, np.deg2rad(angle_deg))
                )
        return mats

    def _refined(
        self, rgb: np.ndarray, kps: np.ndarray, scores: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The second pass from ``kps``, with a share of ``kps`` where the two agree (:func:`quality.mix_first_pass`);
        with scores, a face keeps it unless it scores clearly worse than ``kps`` (then ``kps`` alone). Scores are
        the second pass's."""
        rule, size = self.model.crop_rule, self.model.input_size
        k2, s2 = self._predict(rgb, [keypoints_crop_matrix(k, rule, size) for k in kps], flip=self.flip)
        blended = _quality.mix_first_pass(kps, k2)
        if scores is None or s2 is None:
            return blended, s2
        ev = _quality.evidence
        better = ev(_quality.raw_score(s2)) >= ev(_quality.raw_score(scores)) - _quality.REFINE_MARGIN
        return np.where(better[:, None, None], blended, kps), np.where(better[:, None], s2, scores)

    def _level_again(
        self, rgb: np.ndarray, kps: np.ndarray, scores: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One more levelled pass (:meth:`_refined`) for the faces whose answer ``kps`` has its eye line
        more than :data:`quality.LEVEL_AGAIN_DEG` from level: on a tilted head the first crop is not
        turned with the face, so the second is cut from a poorer reading than on an upright one."""
        tilt = np.array([abs(np.degrees(eye_angle(k))) for k in kps])
        again = np.flatnonzero(tilt > _quality.LEVEL_AGAIN_DEG)
        if len(again) == 0:
            return kps, scores
        k3, s3 = self._refined(rgb, kps[again], None if scores is None else scores[again])
        kps = kps.copy()
        kps[again] = k3
        if scores is not None and s3 is not None:
            scores = scores.copy()
            scores[again] = s3
        return kps, scores

    def _less_offset(self, kps: np.ndarray) -> np.ndarray:
        """Answers ``kps`` (N, 68, 2), model's convention) less the offset the default passes' answers carry
        on every face (``output_offset``), when this detector runs those passes (``refine`` and ``flip``): it
        was measured with them, and a single pass, or one without the mirrored read, carries another."""
        if self.refine and self.flip and self.model.output_offset is not None:
            return shift_in_face_frame(kps, self.model.output_offset, sign=-1.0)
        return kps

    def landmarks(
        self, rgb: np.ndarray, boxes: np.ndarray, convention: str | None = None, box: str = "detector"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Landmarks and their scores for caller-given face boxes, no detection.

        Same inputs as :meth:`keypoints`. Returns ``(keypoints (N, 68, 2) float32 image pixels in
        ``convention`` (default: this detector's), landmark scores (N, 68) float32 in [0, 1] or None
        for a model without scores)``.

        Passes: the crop of each box; with ``rescue``, for a face whose first reading scores under
        :data:`quality.RESCUE_BELOW`, the rescue crops too, the best-scoring of them taken further
        beside the first; with ``refine``, a second pass from each reading's points (kept unless it
        scores clearly worse, :data:`quality.REFINE_MARGIN`), and a third for a face whose answer is
        tilted by more than :data:`quality.LEVEL_AGAIN_DEG`. Each face ends with its best-scoring reading,
        less (with ``refine`` and ``flip``, the default passes) the offset their answers carry on every face
        (``output_offset`` of the model's metadata, measured on held-out faces by ``bench/output_bias.py``),
        in ``convention``.
        """
        return self._landmarks(rgb, boxes, convention, box, offset=True)

    def _landmarks(
        self, rgb: np.ndarray, boxes: np.ndarray, convention: str | None, box: str, offset: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`landmarks`; ``offset=False`` leaves the answers as the model gives them (the video tracker
        follows faces with single passes, which carry another offset, and starts its tracks from these)."""
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3):
            rgb = load_image(rgb, self.max_pixels)
        if box not in BOX_CONVENTIONS:
            raise InputError(f"unknown box convention {box!r}; valid: {', '.join(BOX_CONVENTIONS)}")
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if box == "detector" and len(boxes):
            boxes = self.detector.to_keypoint_box(boxes)
        if len(boxes) == 0:
            empty = np.zeros((0, 68), np.float32) if self.model.has_scores else None
            return np.zeros((0, 68, 2), np.float32), empty
        rule, size = self.model.crop_rule, self.model.input_size
        first_flip = self.flip and not self.refine
        kps, scores = self._predict(rgb, [box_crop_matrix(b, rule, size) for b in boxes], flip=first_flip)
        unsure = np.zeros(0, int)
        if self.rescue and scores is not None:
            unsure = np.flatnonzero(_quality.raw_score(scores) < _quality.RESCUE_BELOW)
        if len(unsure):
            per_face = [self._rescue_crops(boxes[i], kps[i]) for i in unsure]
            ck, cs = self._predict(rgb, [m for mats in per_face for m in mats], flip=first_flip)
            n = len(per_face[0])
            best = _quality.raw_score(cs).reshape(len(unsure), n).argmax(axis=1) + np.arange(len(unsure)) * n
            alt_k, alt_s = ck[best], cs[best]
        if self.refine:
            kps, scores = self._refined(rgb, kps, scores)
            if len(unsure):
                alt_k, alt_s = self._refined(rgb, alt_k, alt_s)
        if len(unsure):
            take = _quality.raw_score(alt_s) > _quality.raw_score(scores[unsure])
            kps[unsure[take]], scores[unsure[take]] = alt_k[take], alt_s[take]
        if self.refine:
            kps, scores = self._level_again(rgb, kps, scores)
        if offset:
            kps = self._less_offset(kps)
        kps = convert(kps, self.model.convention, convention or self.convention)
        return kps.astype(np.float32), None if scores is None else scores.astype(np.float32)

    def keypoints(self, rgb: np.ndarray, boxes: np.ndarray, box: str = "detector") -> np.ndarray:
        """Landmarks for caller-given face boxes, no detection.

        ``rgb``: RGB uint8 (H, W, 3). ``boxes``: (N, 4) x0, y0, x1, y1 in pixels. ``box`` says
        what the boxes are: ``"detector"`` (default), boxes as this detector returns them
        (``Face.box``: passing back a face's own box gives the same points as the detection did);
        ``"landmarks"``, the tight box around a face's 68 points (as from
        :func:`facekeypoints.geometry.keypoint_box` of known points). Boxes from another
        detector should go through that detector's ``to_keypoint_box`` and ``box="landmarks"``
        (``refine`` makes the result tolerant to the difference). Returns (N, 68, 2) float32
        pixels, x then y, in this detector's ``convention``.
        """
        return self.landmarks(rgb, boxes, box=box)[0]
