"""Landmark conventions (iBUG 300-W vs the Udacity labels), multi-source training data, and quality."""

import numpy as np
import pytest

from facekeypoints import conventions, quality
from facekeypoints.errors import InputError
from facekeypoints.landmarks import NUM_LANDMARKS
from synthetic import template


def _face(angle_deg=0.0, scale=1.0, shift=(0.0, 0.0)) -> np.ndarray:
    t = template().astype(np.float64) * 100.0  # eye corners 52 px apart
    t = t - t.mean(0)
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (t @ rot.T) * scale + np.array([200.0, 150.0]) + np.asarray(shift)


def test_face_frame_round_trip_and_units():
    pts = _face(20, 1.7, (5, -3))[None]
    frame = conventions.to_face_frame(pts)
    # the outer eye corners sit at (-0.5, 0) and (0.5, 0): unit = their distance, x along 36 -> 45
    assert np.allclose(frame[0, 36], [-0.5, 0.0], atol=1e-9) and np.allclose(frame[0, 45], [0.5, 0.0], atol=1e-9)
    assert frame[0, 33, 1] > 0  # the nose tip lies down the face (+y)
    assert np.allclose(conventions.from_face_frame(frame, pts), pts, atol=1e-9)


def test_offset_follows_the_face_whatever_its_roll_scale_and_place():
    """An offset in the face frame moves the points of a turned, scaled face the same way relative to it."""
    offset = np.zeros((NUM_LANDMARKS, 2))
    offset[30:36, 1] = 0.05  # the nose 5 % of the eye distance down the face
    upright, turned = _face(), _face(35, 2.5, (40, 10))
    moved_up = conventions.shift_in_face_frame(upright, offset)
    moved_turned = conventions.shift_in_face_frame(turned, offset)
    eye = np.linalg.norm(upright[45] - upright[36])
    assert np.allclose(moved_up[30:36] - upright[30:36], [0, 0.05 * eye], atol=1e-3)
    assert np.allclose(moved_up[:30], upright[:30], atol=1e-3)
    a = np.deg2rad(35)
    down = np.array([-np.sin(a), np.cos(a)])  # the turned face's "down"
    d = (moved_turned[30:36] - turned[30:36]) / (np.linalg.norm(turned[45] - turned[36]))
    assert np.allclose(d, 0.05 * down, atol=1e-3)


def test_convert_there_and_back_is_the_identity_and_moves_the_udacity_nose_down():
    face = _face(-10, 1.3)
    there = conventions.convert(face, "ibug", "udacity")
    assert np.abs(conventions.convert(there, "udacity", "ibug") - face).max() < 0.01  # pixels; eye distance 68 px
    frame_ibug = conventions.to_face_frame(face[None])[0]
    frame_udacity = conventions.to_face_frame(there[None], face[None])[0]
    # as measured (bench/convention_offset.py): the Udacity labels' nose sits lower, everything to the right
    assert (frame_udacity[27:36, 1] - frame_ibug[27:36, 1]).mean() > 0.02
    assert (frame_udacity[:, 0] - frame_ibug[:, 0]).mean() > 0.005
    assert np.array_equal(conventions.convert(face, "ibug", "ibug"), face.astype(np.float32))


def test_unknown_convention_is_a_one_line_error():
    with pytest.raises(InputError, match="unknown landmark convention 'dlib'"):
        conventions.check_convention("dlib")


def test_measure_offset_recovers_a_known_offset_despite_outliers():
    rng = np.random.default_rng(0)
    true_offset = rng.normal(0, 0.02, (NUM_LANDMARKS, 2))
    truths = np.stack([_face(rng.uniform(-30, 30), rng.uniform(0.5, 2)) for _ in range(60)])
    preds = np.stack([conventions.shift_in_face_frame(t, true_offset) for t in truths])
    preds = preds + rng.normal(0, 0.3, preds.shape)  # pixel noise
    preds[:3] += 40.0  # three failed faces
    got = conventions.measure_offset(preds, truths)
    assert np.abs(got - true_offset).max() < 0.01


def test_an_offset_measured_in_the_predictions_frame_undoes_itself():
    """Measured with frame="pred" (the frame a correction of predictions is applied in, the truth being
    unknown then), the offset subtracted from the predictions brings them back onto the truths."""
    rng = np.random.default_rng(1)
    true_offset = rng.normal(0, 0.02, (NUM_LANDMARKS, 2))
    truths = np.stack([_face(rng.uniform(-30, 30), rng.uniform(0.5, 2)) for _ in range(40)])
    preds = np.stack([conventions.shift_in_face_frame(t, true_offset) for t in truths])
    table = conventions.measure_offset(preds, truths, frame="pred")
    back = conventions.shift_in_face_frame(preds, table, sign=-1.0)
    iod = np.linalg.norm(truths[:, 45] - truths[:, 36], axis=1)
    assert (np.linalg.norm(back - truths, axis=2).max(axis=1) / iod).max() < 0.002
    with pytest.raises(ValueError, match="frame"):
        conventions.measure_offset(preds, truths, frame="image")


# --- training data: sources, photos held out together, weights ---------------------------------------


def test_faces_of_one_photo_stay_on_one_side_of_the_split():
    from facekeypoints.data.udacity import Sample
    from facekeypoints.training.data import image_group, split_by_group

    assert image_group("helen/2070105355_1.jpg") == image_group("helen/2070105355_2.jpg") == "helen/2070105355"
    assert image_group("lfpw/image_0001.jpg") == "lfpw/image_0001"  # LFPW: one face per photo, no suffix
    assert image_group("my/face_3.png") == "my/face_3"  # a user's own names are their own photos
    img = np.zeros((4, 4, 3), np.uint8)
    kps = np.zeros((68, 2), np.float32)
    names = [f"afw/{1000 + p}_{k}.jpg" for p in range(30) for k in range(1, 1 + p % 3 + 1)]
    samples = [Sample(n, img, kps) for n in names]
    train, val = split_by_group(samples, 0.2, seed=0)
    assert len(train) + len(val) == len(samples) and val
    assert not {image_group(s.name) for s in train} & {image_group(s.name) for s in val}


def test_sources_kinds_conventions_and_weights(tmp_path):
    from facekeypoints.data.pts import write_pts
    from facekeypoints.training.config import TrainConfig
    from facekeypoints.training.data import sources
    from synthetic import write_udacity

    zip_root = write_udacity(tmp_path / "u", n_train=8, n_test=2)
    pts_dir = tmp_path / "pts"
    pts_dir.mkdir()
    write_pts(pts_dir / "a.pts", template())
    got = sources(TrainConfig(data=[str(pts_dir), str(zip_root)], data_weights="2,0.5"))
    assert [(s.kind, s.convention, s.mirror_consistent, s.weight) for s in got] == [
        ("pts", "ibug", True, 2.0),
        ("udacity", "udacity", False, 0.5),
    ]
    for bad, message in [("1", "has 1 values for 2"), ("1,x", "numbers separated"), ("1,0", "positive")]:
        with pytest.raises(InputError, match=message):
            sources(TrainConfig(data=[str(pts_dir), str(zip_root)], data_weights=bad))
    assert TrainConfig(data="one/path").data == ["one/path"]  # configs from before --data could repeat
    assert [s.jaw_weight for s in got] == [1.0, 1.0]
    jawless = sources(TrainConfig(data=[str(pts_dir), str(zip_root)], data_jaw_weights="1,0"))
    assert [s.jaw_weight for s in jawless] == [1.0, 0.0]
    bad_jaws = [
        ("1", "has 1 values for 2"),
        ("0,x", "must be numbers separated"),
        ("1,-1", "must all be zero or positive"),
    ]
    for bad, message in bad_jaws:
        with pytest.raises(InputError, match="--data-jaw-weights " + message):
            TrainConfig(data=[str(pts_dir), str(zip_root)], data_jaw_weights=bad).validate()


def test_a_source_with_jaw_weight_zero_gives_its_crops_zero_weight_on_the_jaw_points_only():
    from facekeypoints.augment import AugmentConfig
    from facekeypoints.data.udacity import Sample
    from facekeypoints.geometry import CropRule
    from facekeypoints.landmarks import JAW
    from facekeypoints.training.data import AugmentedFaces
    from synthetic import random_face

    a = [Sample(f"a{i}", *random_face(i)) for i in range(3)]
    b = [Sample(f"b{i}", *random_face(100 + i)) for i in range(3)]
    ds = AugmentedFaces([(a, 1.0, True, 1.0), (b, 1.0, True, 0.0)], 64, CropRule(), AugmentConfig(), seed=0)
    jaw = np.zeros(68, bool)
    jaw[list(JAW)] = True
    for i, (gi, _) in enumerate(ds._plan):
        w = ds[i][2].numpy()
        assert w.shape == (68,) and np.all(w[~jaw] == 1.0)
        assert np.all(w[jaw] == (0.0 if gi == 1 else 1.0))


def test_weights_set_how_many_faces_of_each_source_an_epoch_draws_and_only_consistent_ones_mirror():
    from facekeypoints.augment import AugmentConfig
    from facekeypoints.data.udacity import Sample
    from facekeypoints.geometry import CropRule
    from facekeypoints.training.data import AugmentedFaces
    from synthetic import random_face

    a = [Sample(f"a{i}", *random_face(i)) for i in range(10)]
    b = [Sample(f"b{i}", *random_face(100 + i)) for i in range(8)]
    aug = AugmentConfig(flip_prob=1.0, rotate_deg=0, scale=0, shift=0, jitter_prob=0).with_photometric_strength(0)
    ds = AugmentedFaces([(a, 2.0, False), (b, 0.5, True)], 64, CropRule(), aug, seed=0)
    assert len(ds) == 24
    plan = ds._plan
    assert np.bincount(plan[plan[:, 0] == 0, 1], minlength=10).tolist() == [2] * 10  # every face twice
    assert len(set(plan[plan[:, 0] == 1, 1].tolist())) == 4  # half of b, no face twice
    no_flip = AugmentedFaces([(a, 1.0, True)], 64, CropRule(), AugmentConfig(**{**aug.__dict__, "flip_prob": 0.0}), 0)
    x_unmirrored, y_unmirrored, _ = no_flip[0]
    x, y, _ = ds[0]  # source a: labels not mirror-consistent, never mirrored although flip_prob is 1
    assert np.array_equal(x.numpy(), x_unmirrored.numpy()) and np.allclose(y.numpy(), y_unmirrored.numpy())
    xb, _, _ = ds[len(ds) - 1]  # source b: mirrored
    face_b = b[ds._plan[len(ds) - 1, 1]]
    unflipped = AugmentConfig(**{**aug.__dict__, "flip_prob": 0.0})
    xb0, _, _ = AugmentedFaces([([face_b], 1.0, True)], 64, CropRule(), unflipped, 0)[0]
    assert np.abs(xb.numpy() - xb0.numpy()[:, :, ::-1]).mean() < 2.0
    ds.epoch = 1
    assert len(ds) == 24


# --- quality -------------------------------------------------------------------------------------------


def test_roc_auc_known_values():
    assert quality.roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0], bool)) == 1.0
    assert quality.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0], bool)) == 0.0
    assert quality.roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([1, 0, 1, 0], bool)) == 0.5
    assert quality.roc_auc(np.array([0.9, 0.3, 0.5]), np.array([1, 0, 1], bool)) == 1.0
    assert np.isnan(quality.roc_auc(np.array([0.3]), np.array([True])))


def test_logistic_fit_orders_and_centres_the_curve():
    rng = np.random.default_rng(1)
    z = rng.uniform(0, 8, 400)
    good = rng.random(400) < 1 / (1 + np.exp(-2 * (z - 4)))
    a, b = quality.fit_logistic(z, good)
    assert 1 < a < 4 and abs(b - 4) < 0.6
    cal = quality.Calibration(a, b)
    raw = 1 - np.exp(-np.array([1.0, b, 7.5]))  # evidence 1, b and 7.5
    q = cal.quality(np.repeat(raw[:, None], 68, axis=1))
    assert q[0] < 0.1 < 0.3 < q[1] < 0.7 < 0.9 < q[2]
    assert quality.Calibration().quality(np.full(68, 0.4)) == pytest.approx(0.4)  # no fit: the raw score
    assert quality.Calibration.from_metadata({"quality": {"a": 3, "b": 0.5, "threshold": 0.4}}).threshold == 0.4


def test_pip_scores_are_high_for_a_peaked_map_and_low_for_a_flat_one():
    torch = pytest.importorskip("torch")
    from facekeypoints import models

    net = models.create("pip-s2").eval()
    h = w = net.input_size // net.stride
    raw = torch.zeros(2, 68 * 3, h, w)
    raw[0, :68, 5, 6] = 30.0  # face 0: every landmark sure of cell (5, 6)
    pts, scores = net.decode_with_scores(raw)
    assert pts.shape == (2, 68, 2) and scores.shape == (2, 68)
    assert torch.all(scores[0] > 0.99)
    assert torch.allclose(scores[1], torch.full((68,), 9.0 / (h * w)), atol=1e-5)  # flat: 9 of h*w cells
    assert torch.allclose(pts, net.decode(raw))
