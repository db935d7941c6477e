import numpy as np
import pytest

from facekeypoints.geometry import (
    CropRule,
    apply_affine,
    box_crop_matrix,
    crop_matrix,
    eye_angle,
    invert_affine,
    keypoint_box,
    keypoints_crop_matrix,
)
from synthetic import template


def test_crop_matrix_maps_centre_and_side():
    m = crop_matrix((50.0, 40.0), 100.0, 96)
    c = apply_affine(np.array([[50.0, 40.0]]), m)[0]
    assert np.allclose(c, [47.5, 47.5])
    a, b = apply_affine(np.array([[0.0, 40.0], [100.0, 40.0]]), m)
    assert np.isclose(b[0] - a[0], 96.0)


def test_inverse_round_trip():
    m = crop_matrix((120.0, 80.0), 77.0, 64, angle=0.3)
    pts = np.random.default_rng(0).random((68, 2)) * 200
    back = apply_affine(apply_affine(pts, m), invert_affine(m))
    assert np.abs(back - pts).max() < 1e-3


@pytest.mark.parametrize("deg", [-30, 0, 12, 45])
def test_recrop_levels_the_eyes(deg):
    a = np.deg2rad(deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    kps = (template() - 0.5) @ rot.T * 100 + 150
    assert np.isclose(eye_angle(kps), a, atol=1e-6)
    m = keypoints_crop_matrix(kps, CropRule(), 96)
    inside = apply_affine(kps, m)
    assert abs(inside[36, 1] - inside[45, 1]) < 1e-3  # eye line horizontal in the crop
    # the face keeps its size and sits centred
    lo, hi = inside.min(0), inside.max(0)
    assert np.allclose((lo + hi) / 2, 47.5, atol=1e-3)
    assert np.isclose((hi - lo).max(), 96 / 1.25, atol=1e-3)


def test_keypoint_box_and_box_crop():
    kps = template() * 80 + 10
    box = keypoint_box(kps)
    assert np.allclose(box, [kps[:, 0].min(), kps[:, 1].min(), kps[:, 0].max(), kps[:, 1].max()])
    inside = apply_affine(kps, box_crop_matrix(box, CropRule(scale=1.25), 96))
    assert inside.min() > 0 and inside.max() < 95
