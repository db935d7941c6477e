"""Video and webcam: frame sources, landmark tracking with stable face ids, smoothing, writers.

>>> from facekeypoints.video import Tracker, open_video
>>> tracker = Tracker()                                  # bundled model, default face detector
>>> with open_video("clip.mp4") as video:                # or open_video(0) for the first webcam
...     for frame in video:                              # frame.rgb is RGB uint8: converted from OpenCV's BGR
...         faces = tracker.update(frame.rgb, frame.time)  # list[Face] with .track_id and .pose

Tracking: each face's crop for the next frame comes from its current landmarks
(the same re-crop as the detector's refinement pass), and the landmark model runs
once per frame on all tracked faces together. The face detector runs only when
there is no face to track, when a track is lost, and every ``detect_every``
frames to pick up faces that have come into view. A track is lost when its new
landmarks fail a sanity check against the previous ones (box size or position
jumping, points collapsing, the face leaving the frame), or when several rescans
in a row find no face where it is. A face found again where a track was lost a
moment ago gets that track's id back. Landmarks are smoothed by a One Euro filter
(:mod:`facekeypoints.smoothing`) whose speed term is measured in face sizes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .conventions import convert
from .detectors import box_iou
from .errors import InputError
from .geometry import apply_affine, invert_affine, keypoint_box, keypoints_crop_matrix, warp
from .pipeline import Face, FaceKeypointDetector
from .pose import HeadPose, solve_head_pose
from .smoothing import OneEuroFilter, OneEuroParams, face_size

#: Frame rate assumed when a video file does not state a usable one.
DEFAULT_FPS = 30.0

#: Output video containers and the codec written into each.
WRITER_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


# --- sources ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's and FFmpeg's own messages on stderr (they print warnings on a failed open)."""
    try:
        old_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # pragma: no cover - very old OpenCV
        old_level = None
    saved = None
    try:
        try:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            saved = None
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        if old_level is not None:
            cv2.utils.logging.setLogLevel(old_level)


def parse_source(source: str | int | os.PathLike) -> int | Path:
    """A webcam index (an int, or a string of digits) or a file path."""
    if isinstance(source, (int, np.integer)):
        return int(source)
    text = str(source)
    if text.strip().isdigit():
        return int(text.strip())
    return Path(text)


@dataclass
class Frame:
    """One decoded frame: ``index`` (0-based), ``time`` (seconds), ``rgb`` (H, W, 3) RGB uint8."""

    index: int
    time: float
    rgb: np.ndarray


class VideoSource:
    """Frames from a video file or a webcam, as RGB; open with :func:`open_video`.

    Iterating yields :class:`Frame`. A file's times come from its frame rate
    (``index / fps``); a webcam's from the wall clock since the first frame.
    """

    def __init__(self, capture: cv2.VideoCapture, name: str, webcam: bool, first: np.ndarray):
        self._cap = capture
        self.name = name
        self.is_webcam = webcam
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and 0 < fps < 1000 else DEFAULT_FPS
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count: int | None = int(count) if not webcam and np.isfinite(count) and count > 0 else None
        self.height, self.width = first.shape[:2]
        self._first: np.ndarray | None = first
        self._index = 0
        self._t0: float | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the video (or when a webcam stops delivering)."""
        if self._first is not None:
            bgr, self._first = self._first, None
        else:
            if self._cap is None:
                return None
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return None
        rgb = _bgr_to_rgb(bgr)  # OpenCV decodes to BGR; everything past here is RGB
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        t = now - self._t0 if self.is_webcam else self._index / self.fps
        frame = Frame(self._index, t, rgb)
        self._index += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bgr_to_rgb(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def open_video(source: str | int | os.PathLike) -> VideoSource:
    """Open a video file or a webcam (an integer index, e.g. 0) and read its first frame.

    Raises :class:`InputError` with a one-line message naming the source when the
    file is missing, cannot be opened or has no decodable frame, or when the
    webcam does not exist or delivers nothing.
    """
    src = parse_source(source)
    if isinstance(src, int):
        not_opened = "cannot be opened (no such camera, or it is in use)"
        return _capture(src, f"webcam {src}", True, not_opened, "opened but delivered no frame")
    name = str(src)
    if not src.exists():
        raise InputError(f"{name}: no such file")
    if src.is_dir():
        raise InputError(f"{name}: is a directory, not a video")
    if src.stat().st_size == 0:
        raise InputError(f"{name}: empty file (0 bytes)")
    return _capture(
        name, name, False, "cannot be opened as a video (unknown format or damaged file)", "no frame could be decoded"
    )


def _capture(target: str | int, name: str, live: bool, not_opened: str, no_frame: str) -> VideoSource:
    """Open ``target`` with OpenCV and read its first frame; one-line errors naming ``name``."""
    with _quiet_opencv():
        cap = cv2.VideoCapture(target)
        opened = cap.isOpened()
        ok, first = cap.read() if opened else (False, None)
    if not opened:
        cap.release()
        raise InputError(f"{name}: {not_opened}")
    if not ok or first is None:
        cap.release()
        raise InputError(f"{name}: {no_frame}")
    return VideoSource(cap, name, live, first)


# --- writers ----------------------------------------------------------------------------------


class VideoWriter:
    """Writes RGB frames to a video file (mp4v in .mp4/.m4v/.mov, MJPG in .avi/.mkv)."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        codec = WRITER_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise InputError(f"{self.path}: unknown video type; use one of {', '.join(sorted(WRITER_CODECS))}")
        if self.path.parent != Path(""):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot create its folder ({exc.strerror or exc})") from None
        self.size = (int(size[0]), int(size[1]))
        with _quiet_opencv():
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), float(fps), self.size)
        if not self._writer.isOpened():
            raise InputError(f"{self.path}: cannot write a {codec} video there")
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame of the writer's size (converted to OpenCV's BGR here)."""
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def frame_record(index: int, t: float, faces: list[Face], schema: str | None = None) -> dict:
    """One JSON Lines record: ``{"frame": i, "time": t, "faces": [face.to_dict(), ...]}``."""
    rec: dict = {}
    if schema:
        rec["schema"] = schema
    rec.update({"frame": int(index), "time": round(float(t), 4), "faces": [f.to_dict() for f in faces]})
    return rec


def write_jsonl(stream, record: dict) -> None:
    """Write one record as a line of JSON and flush (a stopped run leaves whole lines behind)."""
    stream.write(json.dumps(record, separators=(",", ":")) + "\n")
    stream.flush()


# --- tracking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackerOptions:
    """How :class:`Tracker` follows faces.

    - ``detect_every``: frames between scans for new faces while faces are tracked
      (0: scan only when there is no face or a track is lost).
    - ``rescan_max_side``: those periodic scans look at a copy downscaled so its
      longer side is at most this many pixels (None: full size). Scans with no
      track, or after a loss, always use the full frame.
    - ``max_misses``: a track is dropped after this many scans in a row find no face
      over it (the landmark model alone cannot tell a face from a wall). Before a
      miss counts, the detector looks again at full resolution around the track.
    - ``match_iou``: IoU of keypoint boxes above which a detection is an already
      tracked face, or a lost face come back (then it keeps its id).
    - ``reid_frames``: how long, in frames, a lost track's id can be given back.
    - ``min_face``: faces smaller than this (pixels, longer side of the landmarks'
      box) are lost. ``min_contrast``: so is a face whose crop has a grey-level
      standard deviation below this (a covered camera, a blank frame).
      ``max_scale_change`` and ``min_step_iou``: the largest size ratio and the
      smallest box IoU allowed between consecutive frames.
    - ``max_faces``: most faces tracked at once (None: no limit).
    - ``smoothing``: One Euro settings, None for raw landmarks.
    - ``pose``: compute each face's head pose.
    - ``fps``: frame rate assumed when :meth:`Tracker.update` gets no time.
    """

    detect_every: int = 30
    rescan_max_side: int | None = 480
    max_misses: int = 1
    match_iou: float = 0.3
    reid_frames: int = 30
    min_face: float = 20.0
    min_contrast: float = 4.0
    max_scale_change: float = 1.3
    min_step_iou: float = 0.4
    max_faces: int | None = None
    smoothing: OneEuroParams | None = field(default_factory=OneEuroParams)
    pose: bool = True
    fps: float = DEFAULT_FPS


@dataclass
class Track:
    """One followed face: raw and smoothed landmarks (68, 2), smoother, detector score and misses."""

    id: int
    keypoints: np.ndarray
    smoothed: np.ndarray
    score: float
    smoother: OneEuroFilter | None
    misses: int = 0
    age: int = 1
    lost_at: int = -1
    head_pose: HeadPose | None = None
    landmark_scores: np.ndarray | None = None  #: the model's scores of the latest reading

    def crop_points(self, t: float) -> np.ndarray:
        """Where to cut the next crop: the smoothed landmarks carried on to time ``t`` at their
        filtered speed (steadier crops at rest, less lag in motion), or the raw ones unsmoothed."""
        if self.smoother is not None:
            predicted = self.smoother.predict(t)
            if predicted is not None and np.isfinite(predicted).all():
                return predicted
        return self.keypoints

    def observe(self, keypoints: np.ndarray, t: float) -> None:
        self.keypoints = np.asarray(keypoints, dtype=np.float64)
        if self.smoother is not None:
            self.smoothed = self.smoother(self.keypoints, t, face_size(self.keypoints))
        else:
            self.smoothed = self.keypoints
        self.age += 1


class Tracker:
    """Faces and landmarks frame after frame, with stable ids (``Face.track_id``, from 1).

    ``detector`` is a :class:`FaceKeypointDetector` (default: a new one with the
    bundled model); its face detector finds new faces and its landmark model does
    the tracking. ``update(rgb, t)`` takes consecutive RGB uint8 frames of one
    video and their times in seconds (None: ``frame number / options.fps``).

    Returned faces: ``keypoints`` smoothed (unless ``options.smoothing`` is None),
    ``box`` the tight box around them, ``score`` the detector's score when the
    track began or was last confirmed, ``pose`` (yaw, pitch, roll) if enabled.
    """

    def __init__(self, detector: FaceKeypointDetector | None = None, options: TrackerOptions | None = None):
        self.detector = detector if detector is not None else FaceKeypointDetector()
        self.options = options or TrackerOptions()
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track (ids keep counting up)."""
        self.tracks: list[Track] = []
        self._lost: list[Track] = []
        self._frame = -1
        self._since_scan = 0
        #: Counters for the curious: frames seen, detector runs, tracks lost.
        self.stats = {"frames": 0, "detections": 0, "lost": 0}

    # -- per frame --

    def update(self, rgb: np.ndarray, t: float | None = None) -> list[Face]:
        """Track the faces into this frame; returns them in track-id order."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InputError(f"expected an RGB uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}")
        self._frame += 1
        self._since_scan += 1
        self.stats["frames"] += 1
        if t is None:
            t = self._frame / self.options.fps
        t = float(t)

        lost = self._follow(rgb, t) if self.tracks else []
        self._lost = [tr for tr in self._lost if self._frame - tr.lost_at <= self.options.reid_frames]
        for tr in lost:
            tr.lost_at = self._frame
            self._lost.append(tr)
        every = self.options.detect_every
        if not self.tracks or lost or (every > 0 and self._since_scan >= every):
            self._scan(rgb, t, full=not self.tracks or bool(lost))
        return self._faces(rgb)

    def _landmarks(self, rgb: np.ndarray, keypoints: list[np.ndarray]):
        """One batched model call on crops cut from each face's landmarks: (N, 68, 2) landmarks (the
        model's own convention), their (N, 68) scores or None, and each crop's contrast (standard
        deviation of its grey levels)."""
        model = self.detector.model
        mats = [keypoints_crop_matrix(k, model.crop_rule, model.input_size) for k in keypoints]
        crops = np.stack([warp(rgb, m, model.input_size) for m in mats])
        pred, scores = model.predict_scored(crops)
        kps = np.stack([apply_affine(p, invert_affine(m)) for p, m in zip(pred, mats)]).astype(np.float64)
        contrast = crops[:, ::2, ::2, 1].reshape(len(crops), -1).std(axis=1)  # green ~ luminance, every other pixel
        return kps, scores, contrast

    def _follow(self, rgb: np.ndarray, t: float) -> list[Track]:
        h, w = rgb.shape[:2]
        new, scores, contrast = self._landmarks(rgb, [tr.crop_points(t) for tr in self.tracks])
        kept, lost = [], []
        for i, (tr, k, c) in enumerate(zip(self.tracks, new, contrast)):
            if c >= self.options.min_contrast and self._plausible(tr.keypoints, k, w, h):
                tr.landmark_scores = None if scores is None else scores[i]
                tr.observe(k, t)
                kept.append(tr)
            else:
                lost.append(tr)
        # two tracks that slid onto the same face: keep the older one
        kept.sort(key=lambda tr: tr.id)
        boxes = np.array([keypoint_box(tr.keypoints) for tr in kept]).reshape(-1, 4)
        iou = box_iou(boxes, boxes)
        drop = {j for i in range(len(kept)) for j in range(i + 1, len(kept)) if iou[i, j] > 0.5}
        self.tracks = [tr for j, tr in enumerate(kept) if j not in drop]
        self.stats["lost"] += len(lost)
        return lost

    def _plausible(self, prev: np.ndarray, new: np.ndarray, width: int, height: int) -> bool:
        """Cheap sanity check of a track's new landmarks against its previous ones."""
        o = self.options
        if not np.isfinite(new).all():
            return False
        pb, nb = keypoint_box(prev), keypoint_box(new)
        ps = max(float(max(pb[2] - pb[0], pb[3] - pb[1])), 1e-6)
        ns = float(max(nb[2] - nb[0], nb[3] - nb[1]))
        if ns < o.min_face or not (1.0 / o.max_scale_change <= ns / ps <= o.max_scale_change):
            return False
        if box_iou(pb, nb)[0, 0] < o.min_step_iou:
            return False
        x, y = new[:, 0], new[:, 1]
        inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
        return bool(inside.mean() >= 0.5)

    def _detect(self, rgb: np.ndarray, max_side: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Face detector on the frame, or on a copy downscaled to ``max_side``; keypoint boxes, scores."""
        det = self.detector.detector
        h, w = rgb.shape[:2]
        scale = 1.0 if not max_side else min(1.0, max_side / max(h, w))
        if scale < 1.0:
            small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            boxes, scores = det.detect(small)
            boxes = (np.asarray(boxes, np.float64) + 0.5) / scale - 0.5  # pixel centres of the full frame
        else:
            boxes, scores = det.detect(rgb)
        self.stats["detections"] += 1
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float64), np.zeros(0, np.float32)
        return np.asarray(det.to_keypoint_box(boxes), np.float64).reshape(-1, 4), np.asarray(scores, np.float32)

    def _scan(self, rgb: np.ndarray, t: float, full: bool) -> None:
        o = self.options
        self._since_scan = 0
        kboxes, scores = self._detect(rgb, None if full else o.rescan_max_side)
        # detections over tracked faces confirm them; the rest are new (or returning) faces
        track_boxes = np.array([keypoint_box(tr.keypoints) for tr in self.tracks]).reshape(-1, 4)
        iou = box_iou(kboxes, track_boxes)
        seen = iou.max(axis=1) >= o.match_iou if len(self.tracks) else np.zeros(len(kboxes), bool)
        for j, tr in enumerate(self.tracks):
            hits = np.flatnonzero(iou[:, j] >= o.match_iou) if len(kboxes) else []
            if len(hits):
                tr.misses = 0
                tr.score = float(scores[hits[np.argmax(iou[hits, j])]])
                continue
            score = self._confirm(rgb, tr)
            if score is not None:
                tr.misses, tr.score = 0, score
            else:
                tr.misses += 1
        gone = [tr for tr in self.tracks if tr.misses >= max(o.max_misses, 1)]
        for tr in gone:
            tr.lost_at = self._frame
            self._lost.append(tr)
        self.stats["lost"] += len(gone)
        self.tracks = [tr for tr in self.tracks if tr.misses < max(o.max_misses, 1)]

        new = np.flatnonzero(~seen)
        if o.max_faces is not None:
            new = new[: max(0, o.max_faces - len(self.tracks))]  # detections come sorted by score
        if len(new) == 0:
            return
        # tracks follow the model's own convention and placement (the single passes that follow a face
        # carry another offset than the photo pipeline's, which is not subtracted); Face outputs are
        # converted in _faces
        kps, lm_scores = self.detector._landmarks(
            rgb, kboxes[new].astype(np.float32), self.detector.model.convention, "landmarks", offset=False
        )
        kps = kps.astype(np.float64)
        for j, (i, k) in enumerate(zip(new, kps)):
            box = keypoint_box(k)
            if not np.isfinite(k).all():
                continue
            if any(box_iou(box, keypoint_box(tr.keypoints))[0, 0] > 0.5 for tr in self.tracks):
                continue  # its landmarks slid onto a face already tracked
            self.tracks.append(self._new_track(k, float(scores[i]), t))
            self.tracks[-1].landmark_scores = None if lm_scores is None else lm_scores[j]
        self.tracks.sort(key=lambda tr: tr.id)

    def _confirm(self, rgb: np.ndarray, track: Track) -> float | None:
        """Run the detector at full resolution on the region around a track; the score if it finds it."""
        h, w = rgb.shape[:2]
        box = keypoint_box(track.keypoints).astype(np.float64)
        c, side = (box[:2] + box[2:]) / 2.0, float(max(box[2] - box[0], box[3] - box[1]))
        x0, y0 = np.floor(np.maximum(c - side, 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(c + side, [w - 1, h - 1])).astype(int) + 1
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        det = self.detector.detector
        boxes, scores = det.detect(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        self.stats["detections"] += 1
        if len(boxes) == 0:
            return None
        kboxes = np.asarray(det.to_keypoint_box(boxes), np.float64).reshape(-1, 4) + [x0, y0, x0, y0]
        iou = box_iou(kboxes, box)[:, 0]
        best = int(np.argmax(iou))
        return float(scores[best]) if iou[best] >= self.options.match_iou else None

    def _new_track(self, keypoints: np.ndarray, score: float, t: float) -> Track:
        """A track for a newly detected face: a lost track's id if it was lost here a moment ago."""
        box = keypoint_box(keypoints)
        track_id = None
        if self._lost:
            ious = [box_iou(box, keypoint_box(tr.keypoints))[0, 0] for tr in self._lost]
            best = int(np.argmax(ious))
            if ious[best] >= self.options.match_iou:
                track_id = self._lost.pop(best).id
        if track_id is None:
            track_id = self._next_id
            self._next_id += 1
        smoother = OneEuroFilter(self.options.smoothing) if self.options.smoothing is not None else None
        tr = Track(track_id, keypoints, keypoints, score, smoother, age=0)
        tr.observe(keypoints, t)
        return tr

    def _faces(self, rgb: np.ndarray) -> list[Face]:
        size = (rgb.shape[1], rgb.shape[0])
        faces = []
        det = self.detector
        for tr in self.tracks:
            k = convert(tr.smoothed, det.model.convention, det.convention)
            pose = None
            if self.options.pose:
                tr.head_pose = solve_head_pose(k, size, guess=tr.head_pose)  # warm start from the last frame
                pose = None if tr.head_pose is None else tr.head_pose.angles
            ls = tr.landmark_scores
            q = None if ls is None else det.calibration.quality(ls)
            faces.append(Face(keypoint_box(k), tr.score, k, pose=pose, track_id=tr.id, landmark_scores=ls, quality=q))
        return faces
