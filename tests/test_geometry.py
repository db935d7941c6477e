import cv2
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


def _dot_centroid(img: np.ndarray) -> np.ndarray:
    g = img[..., 0].astype(np.float64)
    g = np.where(g > 0.2 * g.max(), g, 0.0)
    ys, xs = np.mgrid[: g.shape[0], : g.shape[1]]
    return np.array([(xs * g).sum(), (ys * g).sum()]) / g.sum()


@pytest.mark.parametrize("angle", [0.0, 0.4])
def test_shrinking_warp_averages_detail_and_keeps_points_in_place(angle):
    """A crop that shrinks the image 6x area-averages first: a pixel checkerboard becomes flat gray
    instead of aliasing, and a dot still lands where the matrix maps it."""
    from facekeypoints.geometry import warp

    size, side = 96, 576.0  # 6 source pixels per crop pixel
    m = crop_matrix((400.0, 380.0), side, size, angle)
    board = ((np.indices((800, 800)).sum(0) % 2) * 255).astype(np.uint8)
    board = np.dstack([board] * 3)
    plain = warp(board, m, size, min_direct_scale=0.0)
    averaged = warp(board, m, size)
    # aliasing: bilinear samples land on single black or white pixels (all black, or a moire)
    assert plain.std() > 40 or abs(float(plain.mean()) - 127.5) > 60
    assert averaged.std() < 3 and abs(float(averaged.mean()) - 127.5) < 3
    dot = np.zeros((800, 800, 3), np.uint8)
    cv2.circle(dot, (430, 350), 14, (255, 255, 255), -1)
    want = apply_affine(np.array([[430.0, 350.0]]), m)[0]
    assert np.allclose(_dot_centroid(warp(dot, m, size)), want, atol=0.25)
    assert np.allclose(_dot_centroid(warp(dot, m, size, min_direct_scale=0.0)), want, atol=0.25)


def test_warp_at_native_scale_is_the_plain_bilinear_warp():
    from facekeypoints.geometry import warp

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    m = crop_matrix((100.0, 100.0), 120.0, 96, 0.1)  # 0.8 crop pixels per source pixel
    assert np.array_equal(warp(img, m, 96), warp(img, m, 96, min_direct_scale=0.0))
