"""Metrics, matching, evaluate_dataset and the ``evaluate`` command, on hand-made data."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints import evaluation as ev
from facekeypoints.commands import evaluate as cmd
from facekeypoints.errors import DataError, InputError, ModelError
from facekeypoints.geometry import keypoint_box
from facekeypoints.landmarks import GROUPS, OUTER_EYE_CORNERS

EYE_DISTANCE = 50.0


def make_face(x0: float = 20.0, y0: float = 20.0, size: float = 80.0, seed: int = 0) -> np.ndarray:
    """68 points inside ``[x0, x0 + size]^2`` with the outer eye corners ``size * 5/8`` apart."""
    rng = np.random.default_rng(seed)
    kps = rng.uniform(0.0, 1.0, size=(68, 2))
    kps[0], kps[16] = (0.0, 0.0), (1.0, 1.0)  # the box spans the full square
    a, b = OUTER_EYE_CORNERS
    kps[a], kps[b] = (0.2, 0.4), (0.825, 0.4)
    return (kps * size + (x0, y0)).astype(np.float32)


def test_make_face_eye_distance():
    gt = make_face()
    a, b = OUTER_EYE_CORNERS
    assert np.linalg.norm(gt[a] - gt[b]) == pytest.approx(EYE_DISTANCE)


# --- NME ---------------------------------------------------------------------------------


def test_perfect_prediction():
    gt = np.stack([make_face(seed=s) for s in range(4)])
    errs = ev.nme_io(gt, gt)
    assert errs.shape == (4,)
    assert np.all(errs == 0)
    fr, auc = ev.fr_auc(errs, 0.10)
    assert fr == 0.0
    assert auc == pytest.approx(1.0)


def test_constant_shift_is_d_over_eye_distance():
    gt = np.stack([make_face(seed=s) for s in range(3)])
    pred = gt + np.float32([3.0, 4.0])  # |shift| = 5 px
    np.testing.assert_allclose(ev.nme_io(pred, gt), 5.0 / EYE_DISTANCE, rtol=1e-6)


def test_single_face_and_shape_errors():
    gt = make_face()
    assert ev.nme_io(gt + 5.0 * np.float32([1.0, 0.0]), gt).shape == (1,)
    with pytest.raises(InputError):
        ev.nme_io(gt[:60], gt)
    flat = gt.copy()
    flat[OUTER_EYE_CORNERS[1]] = flat[OUTER_EYE_CORNERS[0]]
    with pytest.raises(InputError, match="eye corners"):
        ev.nme_io(gt, flat)


# --- CED / FR / AUC ----------------------------------------------------------------------


def test_ced_grid_and_monotone():
    errs = np.random.default_rng(1).uniform(0.0, 0.15, size=200)
    t, f = ev.ced(errs)
    assert len(t) == 1001
    assert t[0] == 0.0 and t[-1] == pytest.approx(0.10)
    np.testing.assert_allclose(np.diff(t), 1e-4)
    assert np.all(np.diff(f) >= 0)
    assert 0.0 <= f[0] and f[-1] <= 1.0
    assert f[-1] == pytest.approx(np.mean(errs <= 0.10))


def test_fr_auc_hand_example():
    # CED(t) = 0 below 0.02, 1/3 on [0.02, 0.05), 2/3 from 0.05; 0.2 is a failure.
    errs = [0.02, 0.05, 0.2]
    fr, auc = ev.fr_auc(errs, 0.10)
    assert fr == pytest.approx(1 / 3)
    # Exact integral: (1/3)(0.10 - 0.02) + (1/3)(0.10 - 0.05) = 0.13 / 3, over 0.10 -> 0.4333;
    # the trapezoid rule adds at most half a grid step per jump.
    assert auc == pytest.approx(0.13 / 3 / 0.10, abs=1e-3)
    fr8, auc8 = ev.fr_auc(errs, 0.08)
    assert fr8 == pytest.approx(1 / 3)
    assert auc8 == pytest.approx((0.06 + 0.03) / 3 / 0.08, abs=1e-3)


def test_fr_auc_flat_curve_and_missing_faces():
    fr, auc = ev.fr_auc([0.0, 1.0], 0.10)  # CED is 1/2 everywhere
    assert fr == pytest.approx(0.5)
    assert auc == pytest.approx(0.5)
    fr, auc = ev.fr_auc([0.0, np.nan], 0.10)  # a NaN (missed face) is a failure
    assert (fr, auc) == (pytest.approx(0.5), pytest.approx(0.5))
    with pytest.raises(InputError):
        ev.ced([])


# --- groups and sizes --------------------------------------------------------------------


def test_group_nme_picks_the_right_points():
    gt = np.stack([make_face(seed=s) for s in range(2)])
    pred = gt.copy()
    pred[:, list(GROUPS["mouth"])] += np.float32([5.0, 0.0])
    groups = ev.group_nme(pred, gt)
    assert set(groups) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert groups["mouth"] == pytest.approx(5.0 / EYE_DISTANCE)
    for name in ("jaw", "brows", "nose", "eyes"):
        assert groups[name] == 0.0
    np.testing.assert_allclose(ev.nme_io(pred, gt), 0.1 * 20 / 68, rtol=1e-6)


def test_nme_by_box_size_bins():
    sizes = [50.0, 59.0, 60.0, 79.9, 100.0, 400.0]
    gt = np.stack([make_face(size=s, seed=i) for i, s in enumerate(sizes)])
    np.testing.assert_allclose(ev.box_size(gt), sizes, rtol=1e-6)
    errs = np.arange(len(sizes), dtype=float) / 100.0
    rows = ev.nme_by_box_size(errs, gt)
    assert [r["range"] for r in rows] == [[0.0, 60.0], [60.0, 80.0], [80.0, 110.0], [110.0, None]]
    assert [r["count"] for r in rows] == [2, 2, 1, 1]
    assert sum(r["count"] for r in rows) == len(sizes)
    assert rows[0]["nme_mean"] == pytest.approx(0.005)
    json.dumps(rows)
    empty = ev.nme_by_box_size(errs[:1], gt[:1], bins=(0.0, 10.0, 20.0))
    assert empty[0]["count"] == 0 and empty[0]["nme_mean"] is None


def test_summarize_report():
    gt = np.stack([make_face(seed=s) for s in range(5)])
    pred = gt + np.float32([3.0, 4.0])  # NME 10 % on every face
    report = ev.summarize(pred, gt)
    json.dumps(report, allow_nan=False)
    assert report["protocol"] == "gt"
    assert report["n_faces"] == 5
    assert report["nme_mean"] == pytest.approx(10.0)
    assert report["nme_median"] == pytest.approx(10.0)
    assert report["fr_08"] == pytest.approx(100.0)
    assert report["auc_08"] == pytest.approx(0.0)
    assert report["groups"]["eyes"] == pytest.approx(10.0)
    assert sum(r["count"] for r in report["by_box_size"]) == 5
    empty = ev.summarize(np.zeros((0, 68, 2)), np.zeros((0, 68, 2)), protocol="detector")
    json.dumps(empty, allow_nan=False)
    assert empty["n_faces"] == 0 and empty["nme_mean"] is None and empty["fr_10"] is None


def test_plot_ced_writes_png(tmp_path):
    path = ev.plot_ced({"a": [0.01, 0.03, 0.2], "b": np.zeros(3), "none": []}, tmp_path / "ced.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 100


# --- IoU and matching --------------------------------------------------------------------


def test_iou():
    a = np.array([0.0, 0.0, 2.0, 2.0])
    assert ev.iou(a, a) == pytest.approx(1.0)
    assert ev.iou(a, [1.0, 0.0, 3.0, 2.0]) == pytest.approx(2.0 / 6.0)
    assert ev.iou(a, [5.0, 5.0, 6.0, 6.0]) == 0.0
    assert ev.iou(a, [2.0, 0.0, 4.0, 2.0]) == 0.0  # touching edges
    assert ev.iou([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]) == 0.0  # degenerate
    boxes = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0], [10.0, 10.0, 12.0, 12.0]])
    m = ev.iou(boxes[:, None], boxes[None, :2])
    assert m.shape == (3, 2)
    np.testing.assert_allclose(m, [[1.0, 1 / 3], [1 / 3, 1.0], [0.0, 0.0]])


def test_match_detections_greedy():
    gt = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    det = np.array(
        [
            [21.0, 0.0, 31.0, 10.0],  # best for gt 1
            [0.0, 0.0, 10.0, 10.0],  # exact for gt 0
            [1.0, 0.0, 11.0, 10.0],  # also overlaps gt 0, but loses to det 1
            [60.0, 60.0, 70.0, 70.0],  # nothing
        ]
    )
    np.testing.assert_array_equal(ev.match_detections(det, gt), [1, 0, -1])
    # Below the threshold: a box shifted by 8 of 10 px has IoU 2/18 < 0.3.
    np.testing.assert_array_equal(ev.match_detections([[8.0, 0.0, 18.0, 10.0]], gt[:1]), [-1])
    np.testing.assert_array_equal(ev.match_detections(np.zeros((0, 4)), gt), [-1, -1, -1])
    assert ev.match_detections(det, np.zeros((0, 4))).shape == (0,)
    # One detection can serve one gt only.
    np.testing.assert_array_equal(ev.match_detections(det[1:2], np.stack([gt[0], gt[0]])), [0, -1])


# --- evaluate_dataset with a fake detector -----------------------------------------------


@dataclass
class FakeSample:
    name: str
    image: np.ndarray
    keypoints: np.ndarray


@dataclass
class FakeFace:
    box: np.ndarray
    score: float
    keypoints: np.ndarray


class FakeDetector:
    """Answers from a table: the sample index is written into pixel (0, 0) of each image.

    ``shifts[i]`` is added to sample i's keypoints; samples in ``missed`` get one face
    far away from the annotated one (so it must not match).
    """

    def __init__(self, table: dict[int, np.ndarray], shifts: dict[int, float], missed=(), refine=True):
        self.table, self.shifts, self.missed, self.refine = table, shifts, set(missed), refine
        self.boxes_seen: list[np.ndarray] = []

    def _kps(self, rgb: np.ndarray) -> np.ndarray:
        i = int(rgb[0, 0, 0])
        return (self.table[i] + np.float32([self.shifts.get(i, 0.0), 0.0])).astype(np.float32)

    def keypoints(self, rgb, boxes, box="landmarks"):
        self.boxes_seen.append(np.asarray(boxes))
        return np.stack([self._kps(rgb)] * len(boxes))

    def __call__(self, rgb):
        i = int(rgb[0, 0, 0])
        kps = self._kps(rgb)
        if i in self.missed:
            kps = kps + np.float32([500.0, 500.0])
        clutter = FakeFace(np.float32([0, 0, 5, 5]), 0.2, (make_face(x0=900, y0=900, size=10.0)))
        return [clutter, FakeFace(keypoint_box(kps) + np.float32([-5, -10, 5, 10]), 0.9, kps)]


def synthetic_samples(n: int = 3) -> list[FakeSample]:
    out = []
    for i in range(n):
        img = np.full((160, 160, 3), 128, np.uint8)
        img[0, 0, 0] = i
        out.append(FakeSample(f"person{i}_0.jpg", img, make_face(x0=20 + 5 * i, seed=i)))
    return out


def test_evaluate_dataset_gt_protocol():
    samples = synthetic_samples()
    table = {i: s.keypoints for i, s in enumerate(samples)}
    det = FakeDetector(table, shifts={1: 5.0, 2: 10.0})
    report, errors = cmd.evaluate_dataset(det, samples, "gt")
    np.testing.assert_allclose(errors, [0.0, 0.1, 0.2], atol=1e-6)
    for boxes, s in zip(det.boxes_seen, samples):
        np.testing.assert_array_equal(boxes, keypoint_box(s.keypoints)[None])
    assert report["protocol"] == "gt" and report["n_faces"] == 3
    assert report["nme_mean"] == pytest.approx(10.0)
    assert report["fr_10"] == pytest.approx(100 / 3, abs=1e-3)  # only the 0.2 face fails at 0.10
    assert "detection_rate" not in report
    json.dumps(report, allow_nan=False)


def test_evaluate_dataset_detector_protocol():
    samples = synthetic_samples()
    table = {i: s.keypoints for i, s in enumerate(samples)}
    det = FakeDetector(table, shifts={1: 5.0}, missed={2})
    report, errors = cmd.evaluate_dataset(det, samples, "detector")
    assert errors.shape == (3,)
    np.testing.assert_allclose(errors[:2], [0.0, 0.1], atol=1e-6)
    assert np.isnan(errors[2])
    assert report["protocol"] == "detector"
    assert report["n_faces"] == 3 and report["n_matched"] == 2
    assert report["detection_rate"] == pytest.approx(200 / 3, abs=1e-3)
    assert report["n_detections"] == 6 and report["n_unmatched_detections"] == 4
    assert report["nme_mean"] == pytest.approx(5.0)  # over matched faces only
    json.dumps(report, allow_nan=False)


def test_evaluate_dataset_detector_nothing_found():
    samples = synthetic_samples(2)
    det = FakeDetector({i: s.keypoints for i, s in enumerate(samples)}, shifts={}, missed={0, 1})
    report, errors = cmd.evaluate_dataset(det, samples, "detector")
    assert np.isnan(errors).all()
    assert report["detection_rate"] == 0.0 and report["nme_mean"] is None
    json.dumps(report, allow_nan=False)
    with pytest.raises(InputError):
        cmd.evaluate_dataset(det, samples, "boxes")


# --- the command -------------------------------------------------------------------------


def write_udacity_folder(root: Path, n_test: int = 3, n_train_people: int = 10) -> dict[str, np.ndarray]:
    """A tiny Udacity-layout folder; returns name -> keypoints of every face (test and training)."""
    table: dict[str, np.ndarray] = {}
    header = "," + ",".join(str(i) for i in range(136))
    for split, names in (
        ("test", [f"tester{i}_0.jpg" for i in range(n_test)]),
        ("training", [f"person{p}_{k}.jpg" for p in range(n_train_people) for k in range(2)]),
    ):
        (root / split).mkdir(parents=True)
        rows = [header]
        for name in names:
            idx = len(table)
            kps = make_face(x0=20 + idx % 7, seed=idx)
            img = np.full((150, 150, 4), 200, np.uint8)
            img[0, 0, :3] = idx  # RGBA on disk; pixel (0, 0) carries the index for the fake detector
            (root / split / name).write_bytes(cv2.imencode(".png", img)[1].tobytes())  # PNG named .jpg, as Udacity
            rows.append(name + "," + ",".join(f"{v:.3f}" for v in kps.ravel()))
            table[name] = kps
        csv = "training_frames_keypoints.csv" if split == "training" else "test_frames_keypoints.csv"
        (root / csv).write_text("\n".join(rows) + "\n")
    return table


@pytest.fixture
def udacity(tmp_path, monkeypatch):
    root = tmp_path / "udacity"
    names = write_udacity_folder(root)
    table = {i: kps.astype(np.float32) for i, kps in enumerate(names.values())}
    created = []

    def fake_make_detector(model, refine, flip=None, convention="ibug"):
        det = FakeDetector(table, shifts={1: 5.0}, refine=True if refine is None else refine)
        created.append((model, refine, flip))
        det.convention = convention
        return det

    monkeypatch.setattr(cmd, "make_detector", fake_make_detector)
    monkeypatch.chdir(tmp_path)
    return root, created


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_writes_report_and_plot(udacity, capsys):
    root, created = udacity
    assert cmd.run(parse(["--data", str(root), "--out", "out1", "--no-progress"])) == 0
    report = json.loads(Path("out1/report.json").read_text())
    assert report["n_faces"] == 3 and report["split"] == "test" and report["protocol"] == "gt"
    assert report["nme_mean"] == pytest.approx(10.0 / 3, abs=1e-2)  # only face 1 is shifted by 5 px
    assert report["model"] == "bundled" and report["refine"] is False  # gt protocol: single pass by default
    assert report["flip"] is False  # and the model alone: no mirrored crop
    assert Path("out1/ced.png").read_bytes()[:4] == b"\x89PNG"
    assert created == [(None, False, False)]
    out = capsys.readouterr().out
    assert "NME_io" in out and "out1" in out

    # Never overwrite: the same --out is refused and left as it was.
    before = Path("out1/report.json").read_bytes()
    with pytest.raises(InputError, match="not empty"):
        cmd.run(parse(["--data", str(root), "--out", "out1"]))
    assert Path("out1/report.json").read_bytes() == before


def test_command_auto_numbers_and_options(udacity):
    root, created = udacity
    Path("runs/evaluate/1").mkdir(parents=True)  # taken already
    args = parse(["--data", str(root), "--protocol", "detector", "--no-refine", "--limit", "2"])
    assert args.refine is False
    assert cmd.run(args) == 0
    assert cmd.run(parse(["--data", str(root), "--split", "val"])) == 0
    assert not any(Path("runs/evaluate/1").iterdir())
    first = json.loads(Path("runs/evaluate/2/report.json").read_text())
    assert first["protocol"] == "detector" and first["n_faces"] == 2 and first["detection_rate"] == 100.0
    assert first["refine"] is False and first["flip"] is True and first["limit"] == 2  # detector: as the pipeline
    second = json.loads(Path("runs/evaluate/3/report.json").read_text())
    assert second["split"] == "val" and second["n_faces"] == 2  # one of ten people, two faces each
    assert (Path("runs/evaluate/3/ced.png")).is_file()
    assert created == [(None, False, True), (None, False, False)]  # gt protocol: a single pass, no flip


def test_command_input_errors(udacity, tmp_path):
    root, _ = udacity
    with pytest.raises(InputError, match="--limit"):
        cmd.run(parse(["--data", str(root), "--limit", "0"]))
    with pytest.raises(ModelError, match="no such model"):
        cmd.run(parse(["--data", str(root), "--model", str(tmp_path / "missing.onnx")]))
    with pytest.raises(DataError, match="not found"):
        cmd.run(parse(["--data", str(tmp_path / "nowhere")]))
    assert not Path("runs").exists()


def test_command_scores_a_pts_folder_in_ibug_and_udacity_in_its_own_convention(udacity, tmp_path):
    """Any 300-W style folder (searched recursively) is evaluated whole, in the iBUG convention, with a
    per-face table; Udacity data is scored in the Udacity labels' convention."""
    from facekeypoints.data.pts import write_pts

    root, created = udacity
    conventions_seen = []
    real_make = cmd.make_detector

    def recording(model, refine, flip=None, convention="ibug"):
        conventions_seen.append(convention)
        return real_make(model, refine, flip, convention=convention)

    cmd.make_detector = recording
    try:
        assert cmd.run(parse(["--data", str(root), "--out", "u", "--no-progress"])) == 0
        folder = tmp_path / "mine" / "sub"
        folder.mkdir(parents=True)
        faces = sorted(Path(root / "test").iterdir())
        from facekeypoints.data.udacity import UdacityDataset

        truth = dict(UdacityDataset(root).annotations("test"))
        for f in faces:  # the same pictures (pixel (0, 0) names the face for the fake detector) as .png + .pts
            (folder / (f.stem + ".png")).write_bytes(f.read_bytes())
            write_pts(folder / (f.stem + ".pts"), truth[f.name])
        assert cmd.run(parse(["--data", str(tmp_path / "mine"), "--out", "p", "--no-progress"])) == 0
    finally:
        cmd.make_detector = real_make
    assert conventions_seen == ["udacity", "ibug"]
    u, p = (json.loads(Path(d, "report.json").read_text()) for d in ("u", "p"))
    assert u["convention"] == "udacity" and p["convention"] == "ibug" and p["split"] == "all"
    assert p["n_faces"] == 3 and p["nme_mean"] == pytest.approx(u["nme_mean"], abs=1e-2)
    rows = Path("p/faces.csv").read_text().splitlines()
    assert rows[0] == "name,nme_io_percent,quality" and len(rows) == 4
    assert rows[1].startswith("sub/tester0_0.png,") and float(rows[1].split(",")[1]) >= 0
