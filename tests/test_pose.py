"""Head pose: known angles come back from synthetic projections; signs; pipeline, JSON and drawing."""

import itertools

import numpy as np
import pytest
from matplotlib import cbook

import facekeypoints as fk
from facekeypoints.pipeline import Face
from facekeypoints.pose import (
    draw_pose_axes,
    head_pose,
    project_model,
    rotation_angles,
    rotation_matrix,
    solve_head_pose,
)

SIZE = (640, 480)
ANGLES = list(itertools.product((-40, -15, 0, 25, 40), (-25, 0, 20), (-30, 0, 12, 30)))


def test_rotation_matrix_round_trips():
    for yaw, pitch, roll in ANGLES:
        r = rotation_matrix(yaw, pitch, roll)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(rotation_angles(r), (yaw, pitch, roll), atol=1e-9)


@pytest.mark.parametrize("translation", [None, (60.0, -40.0, 450.0)])
def test_known_angles_come_back_within_3_degrees(translation):
    """The generic 3-D face projected at known angles, with half a pixel of noise, solved back."""
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in ANGLES:
        pts = project_model(yaw, pitch, roll, SIZE, translation)
        pts = pts + rng.normal(0.0, 0.5, pts.shape)
        got = head_pose(pts, SIZE)
        assert got is not None
        err = np.abs(np.subtract(got, (yaw, pitch, roll)))
        assert err.max() < 3.0, f"true {(yaw, pitch, roll)}, got {np.round(got, 2)}"


def test_warm_start_gives_the_same_answer():
    frontal = solve_head_pose(project_model(0, 0, 0, SIZE), SIZE)
    for yaw, pitch, roll in ANGLES[::5]:
        pts = project_model(yaw, pitch, roll, SIZE)
        assert np.allclose(solve_head_pose(pts, SIZE, guess=frontal).angles, (yaw, pitch, roll), atol=0.5)


def test_sign_conventions_in_the_image():
    front = project_model(0, 0, 0, SIZE)
    nose, eyes = 30, (36, 45)
    assert project_model(20, 0, 0, SIZE)[nose, 0] > front[nose, 0]  # yaw > 0: nose moves right
    assert project_model(0, 20, 0, SIZE)[nose, 1] < front[nose, 1]  # pitch > 0: nose moves up
    rolled = project_model(0, 0, 20, SIZE)
    assert rolled[eyes[1], 1] > rolled[eyes[0], 1]  # roll > 0: clockwise, eye line slopes down to the right


def test_unsolvable_points_give_none():
    pts = project_model(0, 0, 0, SIZE)
    pts[30] = np.nan
    assert head_pose(pts, SIZE) is None
    with pytest.raises(ValueError):
        head_pose(np.zeros((5, 2)), SIZE)


@pytest.fixture(scope="module")
def grace_faces():
    rgb = fk.load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return rgb, fk.FaceKeypointDetector()(rgb)


def test_pipeline_faces_have_a_pose_in_their_json(grace_faces):
    rgb, faces = grace_faces
    assert len(faces) == 1
    yaw, pitch, roll = faces[0].pose
    assert abs(yaw) < 15 and abs(roll) < 10 and abs(pitch) < 25  # a portrait facing the camera
    d = faces[0].to_dict()
    assert set(d["pose"]) == {"yaw", "pitch", "roll"} and "track_id" not in d


def test_pose_follows_an_in_plane_rotation(grace_faces):
    """Rotating the landmarks about the image centre changes the roll by the same angle."""
    rgb, faces = grace_faces
    h, w = rgb.shape[:2]
    kps = faces[0].keypoints.astype(np.float64)
    a = np.radians(20.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    turned = (kps - c) @ rot.T + c
    before, after = head_pose(kps, (w, h)), head_pose(turned, (w, h))
    assert after[2] - before[2] == pytest.approx(20.0, abs=1.5)


def test_draw_pose_axes(grace_faces):
    rgb, faces = grace_faces
    before = rgb.copy()
    out = draw_pose_axes(rgb, faces[0])
    assert np.array_equal(rgb, before) and out.shape == rgb.shape
    assert (out != rgb).any(axis=2).sum() > 50
    bad = Face(np.zeros(4), 0.0, np.full((68, 2), np.nan, np.float32))
    assert np.array_equal(draw_pose_axes(rgb, bad), rgb)
