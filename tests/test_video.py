"""Video: files the tests write themselves, tracking with stable ids, the CLI, clean errors."""

import json

import cv2
import numpy as np
import pytest
from matplotlib import cbook

import facekeypoints as fk
from facekeypoints import cli
from facekeypoints.errors import InputError
from facekeypoints.smoothing import OneEuroParams
from facekeypoints.video import Tracker, TrackerOptions, open_video, parse_source

W, H, FPS = 640, 480, 30.0
GREY = 110


@pytest.fixture(scope="module")
def grace():
    return fk.load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def canvas(photo: np.ndarray, scale: float, positions: list[tuple[float, float]], angle: float = 0.0) -> np.ndarray:
    """A grey 640x480 RGB frame with the photo, scaled, pasted with its centre at each position."""
    img = np.full((H, W, 3), GREY, np.uint8)
    h, w = photo.shape[:2]
    for cx, cy in positions:
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
        m[:, 2] += (cx - (w - 1) / 2, cy - (h - 1) / 2)
        img = cv2.warpAffine(photo, m, (W, H), dst=img, borderMode=cv2.BORDER_TRANSPARENT)
    return img


def write_video(path, frames, fps: float = FPS) -> None:
    codec = "MJPG" if str(path).endswith(".avi") else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (W, H))
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # OpenCV wants BGR
    writer.release()


@pytest.fixture(scope="module")
def moving_frames(grace):
    """36 frames: Grace Hopper drifting right 3 px a frame and turning slowly."""
    return [canvas(grace, 0.55, [(220 + 3 * i, 240)], angle=0.4 * i) for i in range(36)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, moving_frames):
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    write_video(path, moving_frames)
    return path


@pytest.fixture(scope="module")
def detector():
    return fk.FaceKeypointDetector()


def test_opencv_reads_back_a_file_we_wrote_as_rgb(tmp_path):
    red_left = np.zeros((H, W, 3), np.uint8)
    red_left[:, : W // 2] = (220, 30, 30)  # RGB: red on the left, blue on the right
    red_left[:, W // 2 :] = (30, 30, 220)
    path = tmp_path / "colours.avi"
    write_video(path, [red_left] * 5, fps=25.0)
    with open_video(path) as video:
        assert video.size == (W, H) and video.fps == pytest.approx(25.0) and video.frame_count == 5
        frames = list(video)
    assert [f.index for f in frames] == list(range(5))
    assert [f.time for f in frames] == pytest.approx([i / 25.0 for i in range(5)])
    rgb = frames[2].rgb
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    left, right = rgb[:, : W // 2 - 8].mean(axis=(0, 1)), rgb[:, W // 2 + 8 :].mean(axis=(0, 1))
    assert left[0] > 180 > left[2] and right[2] > 180 > right[0]


def test_sources_are_paths_or_webcam_indices():
    assert parse_source("0") == 0 and parse_source(3) == 3
    assert str(parse_source("clip.mp4")) == "clip.mp4"


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: (d / "junk.mp4").write_bytes(b"not a video at all") and d / "junk.mp4", "cannot be opened"),
        (lambda d: (d / "empty.avi").write_bytes(b"") == 0 and d / "empty.avi", "empty file"),
        (lambda d: d, "is a directory"),
    ],
)
def test_bad_video_files_give_one_line_errors(tmp_path, make, expect):
    path = make(tmp_path)
    with pytest.raises(InputError, match=expect) as exc:
        open_video(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_webcam_that_does_not_exist(capfd):
    with pytest.raises(InputError, match="webcam 99: cannot be opened"):
        open_video(99)
    assert capfd.readouterr().err == ""  # OpenCV's own warnings are kept off the terminal


def test_tracking_keeps_one_id_and_seldom_runs_the_detector(detector, moving_frames):
    tracker = Tracker(detector, TrackerOptions(detect_every=15))
    ids, centres = [], []
    for i, rgb in enumerate(moving_frames):
        faces = tracker.update(rgb, i / FPS)
        assert len(faces) == 1
        ids.append(faces[0].track_id)
        centres.append(faces[0].keypoints.mean(axis=0))
        assert faces[0].pose is not None and faces[0].keypoints.shape == (68, 2)
    assert set(ids) == {1}
    # the first frame, then one scan every 15 frames (each maybe confirmed locally)
    assert tracker.stats["detections"] <= 1 + 2 * (len(moving_frames) // 15)
    # the landmarks follow the picture: 3 px a frame to the right (lagging a little when smoothed)
    dx = centres[-1][0] - centres[0][0]
    assert 3 * (len(moving_frames) - 1) * 0.85 < dx < 3 * (len(moving_frames) - 1) * 1.1


def test_unsmoothed_tracking_matches_the_detector(detector, moving_frames):
    """Raw tracking lands where single-image detection does (it is the same re-crop, from the last frame)."""
    tracker = Tracker(detector, TrackerOptions(smoothing=None))
    for i, rgb in enumerate(moving_frames[:12]):
        tracked = tracker.update(rgb, i / FPS)[0].keypoints
    single = detector(moving_frames[11])[0].keypoints
    iod = np.linalg.norm(single[36] - single[45])
    assert np.linalg.norm(tracked - single, axis=1).mean() < 0.05 * iod


def test_a_track_starts_from_the_models_own_placement(detector, grace):
    """Tracks follow faces with single passes, which carry another offset than the photo pipeline's default
    passes: they start from the answers as the model gives them, so nothing jumps after the first frame."""
    from facekeypoints.conventions import convert

    first = Tracker(detector, TrackerOptions(smoothing=None)).update(grace, 0.0)[0].keypoints
    boxes, _ = detector.detector.detect(grace)
    kboxes = detector.detector.to_keypoint_box(boxes)
    model = detector.model
    raw = detector._landmarks(grace, kboxes, model.convention, "landmarks", offset=False)[0]
    np.testing.assert_allclose(first, convert(raw, model.convention, detector.convention)[0], atol=1e-3)
    if model.output_offset is not None:  # the photo pipeline's answer differs by the offset
        assert np.abs(detector.landmarks(grace, boxes)[0][0] - first).max() > 0.05


def test_two_faces_keep_their_own_ids(detector, grace):
    tracker = Tracker(detector, TrackerOptions(detect_every=5))
    seen = {}
    for i in range(20):
        rgb = canvas(grace, 0.42, [(170, 200 + 2 * i), (470, 280 - 2 * i)])
        faces = tracker.update(rgb, i / FPS)
        assert len(faces) == 2
        for f in faces:
            side = "left" if f.keypoints[:, 0].mean() < W / 2 else "right"
            seen.setdefault(side, set()).add(f.track_id)
    assert seen["left"] != seen["right"] and all(len(v) == 1 for v in seen.values())


def test_a_face_that_comes_back_keeps_its_id_for_a_while(detector, grace):
    face = canvas(grace, 0.55, [(320, 240)])
    blank = np.full((H, W, 3), GREY, np.uint8)

    def ids(frames, options):
        tracker = Tracker(detector, options)
        return [[f.track_id for f in tracker.update(rgb, i / FPS)] for i, rgb in enumerate(frames)]

    short_gap = ids([face] * 4 + [blank] * 3 + [face] * 4, TrackerOptions(reid_frames=30))
    assert short_gap[:4] == [[1]] * 4 and short_gap[4:7] == [[]] * 3 and short_gap[7:] == [[1]] * 4
    long_gap = ids([face] * 4 + [blank] * 6 + [face] * 2, TrackerOptions(reid_frames=3))
    assert long_gap[-1] == [2]


def test_a_face_replaced_by_something_else_is_dropped_by_the_next_scan(detector, grace):
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 6)
    face = canvas(grace, 0.55, [(320, 240)])
    tracker = Tracker(detector, TrackerOptions(detect_every=4))
    counts = [len(tracker.update(rgb, i / FPS)) for i, rgb in enumerate([face] * 3 + [texture] * 12)]
    assert counts[:3] == [1, 1, 1] and counts[-4:] == [0, 0, 0, 0]


def test_a_face_leaving_the_frame_is_lost(detector, grace):
    tracker = Tracker(detector, TrackerOptions(detect_every=0))
    counts = []
    for i in range(24):
        counts.append(len(tracker.update(canvas(grace, 0.5, [(420 + 12 * i, 240)]), i / FPS)))
    assert counts[0] == 1 and counts[-1] == 0


def test_video_command_writes_video_and_one_json_record_per_frame(clip, tmp_path, capsys):
    out, js = tmp_path / "out.mp4", tmp_path / "faces.jsonl"
    rc = cli.main(["video", str(clip), "--out", str(out), "--json", str(js), "--pose", "--min-cutoff", "0.8"])
    assert rc == 0, capsys.readouterr().err
    records = [json.loads(line) for line in js.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(36))
    assert records[3]["time"] == pytest.approx(3 / FPS, abs=1e-3)
    faces = [f for r in records for f in r["faces"]]
    assert len(faces) == 36 and {f["track_id"] for f in faces} == {1}
    assert set(faces[0]["pose"]) == {"yaw", "pitch", "roll"} and len(faces[0]["keypoints"]) == 68
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 36
    assert "36 frames, 1 track," in capsys.readouterr().out


def test_video_command_max_frames_and_no_smooth(clip, tmp_path):
    js = tmp_path / "f.jsonl"
    assert cli.main(["video", str(clip), "--json", str(js), "--max-frames", "5", "--no-smooth"]) == 0
    assert len(js.read_text().splitlines()) == 5


def test_smoothing_flags_reach_the_tracker(clip, tmp_path):
    """--min-cutoff and --beta act as documented on a face moving right 3 px a frame.

    Each run's points are compared with the raw ones (--no-smooth) of the same frames: smoothing
    makes them lag behind the motion (to the left); a higher --min-cutoff (the cutoff at rest)
    smooths less and so lags less, and so does a higher --beta (the cutoff rising with speed).
    """

    def run(*flags) -> np.ndarray:
        out = tmp_path / "k.jsonl"
        assert cli.main(["video", str(clip), "--json", str(out), "--max-frames", "8", *flags]) == 0
        return np.array([json.loads(line)["faces"][0]["keypoints"] for line in out.read_text().splitlines()])

    raw = run("--no-smooth")
    runs = {
        "slow": run("--min-cutoff", "0.5", "--beta", "0"),
        "high cutoff": run("--min-cutoff", "5", "--beta", "0"),
        "high beta": run("--min-cutoff", "0.5", "--beta", "30"),
    }
    lag = {}
    for name, pts in runs.items():
        assert pts.shape == raw.shape == (8, 68, 2)
        np.testing.assert_array_equal(pts[0], raw[0])  # the first frame passes through unchanged
        lag[name] = (raw[1:] - pts[1:])[..., 0].mean()  # px behind the raw points, along the motion
    assert lag["slow"] > 3.0, lag  # behind by more than a frame's motion
    assert 0 < lag["high cutoff"] < 0.5 * lag["slow"], lag
    assert 0 < lag["high beta"] < 0.5 * lag["slow"], lag


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["video", "no_such_video.mp4"], "no_such_video.mp4: no such file"),
        (["video", "99"], "webcam 99: cannot be opened"),
        (["video", "CLIP", "--out", "out.gif"], "unknown video type"),
        (["video", "CLIP", "--filter", "sunglasses"], "--out"),
        (["video", "CLIP", "--min-cutoff", "0"], "min_cutoff"),
        (["video", "CLIP", "--max-frames", "0"], "--max-frames"),
    ],
)
def test_video_command_errors_are_one_line(clip, capsys, argv, expect):
    argv = [str(clip) if a == "CLIP" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facekeypoints: error: ") and expect in err[0]


def read_frames(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def test_video_command_with_a_filter(clip, tmp_path, capsys):
    """The filter is drawn in every frame, over the eyes of the face, and nowhere else.

    Compared with the same frames written with nothing drawn (--no-landmarks), the
    sunglasses change most pixels around each eye (where the JSON says the eyes are that
    frame) and none farther than 1.5 eye distances from the eyes' midpoint.
    """
    pytest.importorskip("facekeypoints.filters")
    filtered, plain, js = tmp_path / "filtered.avi", tmp_path / "plain.avi", tmp_path / "faces.jsonl"
    common = ["video", str(clip), "--max-frames", "4"]
    assert cli.main([*common, "--out", str(filtered), "--json", str(js), "--filter", "sunglasses"]) == 0
    assert cli.main([*common, "--out", str(plain), "--no-landmarks"]) == 0, capsys.readouterr().err
    a, b = read_frames(filtered), read_frames(plain)
    records = [json.loads(line) for line in js.read_text().splitlines()]
    assert len(a) == len(b) == len(records) == 4
    ys, xs = np.mgrid[0:H, 0:W]
    for fa, fb, rec in zip(a, b, records):
        (face,) = rec["faces"]
        kps = np.asarray(face["keypoints"])
        right, left = kps[36:42].mean(axis=0), kps[42:48].mean(axis=0)
        iod = float(np.linalg.norm(left - right))
        changed = np.abs(fa.astype(int) - fb.astype(int)).max(axis=2) > 40  # well above MJPG's noise
        for eye in (right, left):
            near = np.hypot(xs - eye[0], ys - eye[1]) < 0.15 * iod
            assert changed[near].mean() > 0.8, (rec["frame"], changed[near].mean())
        far = np.hypot(xs - (left + right)[0] / 2, ys - (left + right)[1] / 2) > 1.5 * iod
        assert not changed[far].any(), (rec["frame"], int(changed[far].sum()))


def test_track_id_and_pose_in_face_json():
    face = fk.Face(np.zeros(4), 0.5, np.zeros((68, 2)), pose=(1.234, -5.0, 0.0), track_id=7)
    d = face.to_dict()
    assert d["track_id"] == 7 and d["pose"] == {"yaw": 1.23, "pitch": -5.0, "roll": 0.0}


def test_tracker_rejects_bad_frames(detector):
    with pytest.raises(InputError):
        Tracker(detector).update(np.zeros((10, 10), np.uint8))


def test_smoothing_params_are_a_dataclass():
    opts = TrackerOptions(smoothing=OneEuroParams(min_cutoff=0.2, beta=5.0))
    assert opts.smoothing.min_cutoff == 0.2 and TrackerOptions().smoothing == OneEuroParams()
