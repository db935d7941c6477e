"""Privacy filters do what their names say: blur takes the detail out of the face, the mosaic is a mosaic.

tests/test_filters.py checks which pixels the privacy filters change; these check what the
changed pixels look like: blur cuts the face's fine detail many times over (on a real photo,
with the model's own landmarks), and the mosaic is made of flat blocks, each the mean of the
pixels under it, on a grid fixed to the image, so that it does not crawl when the face moves.
"""

import math

import cv2
import numpy as np
import pytest
from matplotlib import cbook

import facekeypoints as fk
from facekeypoints import filters
from synthetic import template


def face_at(center, size: float, theta_deg: float = 0.0) -> np.ndarray:
    """The template face, ``size`` pixels across, rotated by ``theta_deg``, at ``center``."""
    t = math.radians(theta_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (template() - 0.5) @ rot.T * size + np.asarray(center, dtype=np.float64)


def inside(shape, kps, border: int = 4) -> np.ndarray:
    """The pixels fully inside the filtered region, ``border`` px clear of its soft edge."""
    full = (filters.face_mask(shape, [kps]) >= 1).astype(np.uint8)
    return cv2.erode(full, np.ones((2 * border + 1, 2 * border + 1), np.uint8)) > 0


def detail(rgb: np.ndarray, where: np.ndarray) -> float:
    """Local detail: the mean absolute Laplacian of the grey picture over ``where``."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[where].mean())


@pytest.fixture(scope="module")
def portrait():
    rgb = fk.load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return rgb, fk.FaceKeypointDetector()(rgb)[0].keypoints


def test_blur_takes_the_detail_out_of_the_face(portrait):
    """Measured: the face keeps 4.4 % of its detail (a 1 px Gaussian blur keeps 29 %, 2 px 12 %)."""
    rgb, kps = portrait
    out = filters.apply(rgb, [kps], "blur")
    face = inside(rgb.shape, kps)
    assert face.sum() > 20000  # the face region, not a sliver
    ratio = detail(out, face) / detail(rgb, face)
    assert ratio < 0.1, ratio
    # Blurred, not painted over: the face's coarse shading is still there.
    coarse = cv2.GaussianBlur(rgb, (0, 0), 12).astype(np.float32)
    assert out[face].astype(np.float32).std(axis=0).mean() > 0.5 * coarse[face].std(axis=0).mean()
    # And nothing changes outside the filtered region.
    outside = filters.face_mask(rgb.shape, [kps]) == 0
    np.testing.assert_array_equal(out[outside], rgb[outside])


def boundaries(out: np.ndarray, where: np.ndarray, axis: int) -> list[int]:
    """Image positions p where pixel p and p + 1 (along ``axis``: 1 for x, 0 for y) differ, both in ``where``."""
    if axis == 0:
        return boundaries(out.transpose(1, 0, 2), where.T, 1)
    both = where[:, :-1] & where[:, 1:]
    edge = (out[:, :-1] != out[:, 1:]).any(axis=2) & both
    return np.flatnonzero(edge.any(axis=0)).tolist()


def test_mosaic_is_flat_blocks_on_a_grid_fixed_to_the_image():
    img = np.random.default_rng(5).integers(0, 256, (220, 260, 3), dtype=np.uint8)  # every block differs
    faces = [face_at((120.0, 105.0), 150, 6.0), face_at((121.0, 105.0), 150, 6.0)]  # the face moved 1 px right
    outs = [filters.apply(img, [kps], "pixelate") for kps in faces]
    common = inside(img.shape, faces[0]) & inside(img.shape, faces[1])
    grids = []
    for out in outs:
        cols, rows = boundaries(out, common, 1), boundaries(out, common, 0)
        # Flat square blocks: the only changes inside the face are on evenly spaced lines, the same step both ways.
        steps = set(np.diff(cols).tolist()) | set(np.diff(rows).tolist())
        assert len(steps) == 1 and len(cols) >= 6 and len(rows) >= 6, (cols, rows)
        (step,) = steps
        assert 150 / 14 < step < 150 / 7  # about 10 blocks across the face (Pixelate's default)
        grids.append((cols, rows, step))
    # The grid did not follow the face: the block edges are at the same image positions, on
    # multiples of the block size (block edges between p and p + 1, so p + 1 on the grid).
    assert grids[0] == grids[1]
    cols, rows, step = grids[0]
    assert all((c + 1) % step == 0 for c in cols) and all((r + 1) % step == 0 for r in rows)
    # Each block fully inside the face in both pictures is the same in both: its pixels' mean.
    checked = 0
    for y in range(rows[0] + 1, rows[-1] + 1, step):
        for x in range(cols[0] + 1, cols[-1] + 1, step):
            if not common[y : y + step, x : x + step].all():
                continue
            mean = img[y : y + step, x : x + step].reshape(-1, 3).mean(axis=0)
            for out in outs:
                block = out[y : y + step, x : x + step].reshape(-1, 3)
                assert (block == block[0]).all() and np.abs(block[0] - mean).max() <= 0.51
            checked += 1
    assert checked >= 20, checked
