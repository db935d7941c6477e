from dataclasses import dataclass

import numpy as np
import pytest

from facekeypoints.draw import draw_box, draw_faces, draw_points
from synthetic import template


@dataclass
class FakeFace:
    box: np.ndarray
    score: float
    keypoints: np.ndarray


def make_face(x0=40.0, y0=30.0, side=100.0) -> FakeFace:
    kps = (template() * side + [x0, y0]).astype(np.float32)
    box = np.array([x0, y0, x0 + side, y0 + side], np.float32)
    return FakeFace(box, 0.9, kps)


def test_draw_faces_leaves_input_untouched():
    img = np.full((200, 180, 3), 50, np.uint8)
    before = img.copy()
    out = draw_faces(img, [make_face()])
    np.testing.assert_array_equal(img, before)
    assert out is not img and out.shape == img.shape and out.dtype == np.uint8
    assert (out != img).any()


def test_drawing_stays_near_the_face():
    img = np.zeros((300, 300, 3), np.uint8)
    face = make_face(100, 80, 90)
    out = draw_faces(img, [face])
    ys, xs = np.nonzero(out.any(axis=2))
    margin = 6  # line width and point radius at this face size
    assert xs.min() >= face.box[0] - margin and xs.max() <= face.box[2] + margin
    assert ys.min() >= face.box[1] - margin and ys.max() <= face.box[3] + margin


def test_faces_off_the_edge_and_non_finite_points():
    img = np.zeros((64, 64, 3), np.uint8)
    face = make_face(-50, 20, 200)
    face.keypoints[5] = np.nan
    face.keypoints[6] = 1e12
    out = draw_faces(img, [face])
    assert out.shape == img.shape and (img == 0).all()


def test_options_and_helpers():
    img = np.zeros((200, 200, 3), np.uint8)
    face = make_face()
    nothing = draw_faces(img, [face], points=False, contours=False, boxes=False)
    np.testing.assert_array_equal(nothing, img)
    only_box = draw_faces(img, [face], points=False, contours=False)
    assert only_box[int(face.box[1]), int(face.box[0]) + 50].any()
    assert not only_box[100, 100].any()
    dots = draw_points(img, face.keypoints)
    assert dots.any() and not img.any()
    boxed = draw_box(img, face.box, color=(255, 0, 0))
    assert boxed[..., 0].any() and not boxed[..., 1:].any() and not img.any()
    assert np.array_equal(draw_faces(img, []), img)


def test_rejects_non_rgb():
    with pytest.raises(ValueError):
        draw_faces(np.zeros((10, 10), np.uint8), [])
