"""Aligned crops: the similarity fit, eyes on the template, level eyes from rotated faces, the CLI."""

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from facekeypoints import cli
from facekeypoints.align import (
    TEMPLATE,
    align_face,
    alignment_matrix,
    five_points,
    similarity_transform,
    template_points,
)
from facekeypoints.geometry import apply_affine
from facekeypoints.landmarks import LEFT_EYE, RIGHT_EYE
from synthetic import draw_face, template

GRACE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def similarity(angle_deg: float, scale: float, shift) -> np.ndarray:
    """2x3 matrix: rotate by ``angle_deg`` (clockwise on screen), scale, then shift."""
    a = np.radians(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([rot, np.asarray(shift, dtype=np.float64)[:, None]])


def canonical_face(size: float = 1.0) -> np.ndarray:
    """The synthetic 68-point face, moved part by part so its five points sit exactly on the template."""
    p = template().copy()
    target = TEMPLATE
    p[list(RIGHT_EYE)] += target[0] - p[list(RIGHT_EYE)].mean(axis=0)
    p[list(LEFT_EYE)] += target[1] - p[list(LEFT_EYE)].mean(axis=0)
    p[27:36] += target[2] - p[30]
    p[48:68] += (target[3] + target[4]) / 2 - (p[48] + p[54]) / 2
    p[48], p[54] = target[3], target[4]
    np.testing.assert_allclose(five_points(p), target, atol=1e-12)
    return p * size


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (7, 2))
    m = similarity(33.0, 1.7, (12.0, -40.0))
    np.testing.assert_allclose(similarity_transform(src, apply_affine(src, m)), m, atol=1e-4)
    with pytest.raises(ValueError):
        similarity_transform(np.ones((3, 2)), np.zeros((3, 2)))


@pytest.mark.parametrize("angle", [-35.0, -10.0, 0.0, 20.0, 40.0])
@pytest.mark.parametrize("size", [112, 160])
def test_eyes_land_on_the_template_and_come_out_level(angle, size):
    """A synthetic face drawn rotated, scaled and shifted: its aligned crop has the eyes on the template."""
    base = canonical_face()
    m = similarity(angle, 260.0, (300.0, 140.0))
    kps = apply_affine(base, m).astype(np.float64)
    img = draw_face((600, 640), kps, seed=3)
    crop = align_face(img, kps, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8

    to_crop = alignment_matrix(kps, size)
    eyes = apply_affine(five_points(kps)[:2], to_crop)
    assert np.abs(eyes - template_points(size)[:2]).max() < 1.0  # pixels
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.5  # level

    # the picture agrees: the drawn outer eye corners (dark lines) are where the transform says
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(float)
    cx, cy = np.round(np.array([0.28, 0.6]) * size).astype(int)
    skin = np.median(gray[cy - 1 : cy + 2, cx - 1 : cx + 2])  # a cheek: the face's light fill
    for corner in apply_affine(kps[[36, 45]], to_crop):
        x, y = np.round(corner).astype(int)
        assert gray[y - 1 : y + 2, x - 1 : x + 2].min() < skin - 40


def test_rotated_real_face_comes_out_level():
    """Grace Hopper turned by 30 degrees: the landmarks found in her aligned crop have level eyes."""
    import facekeypoints as fk
    from facekeypoints.geometry import keypoint_box

    det = fk.FaceKeypointDetector()
    rgb = fk.load_image(GRACE)
    kps = det(rgb)[0].keypoints
    h, w = rgb.shape[:2]
    rot = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 30.0, 1.0)
    turned = cv2.warpAffine(rgb, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
    turned_kps = apply_affine(kps, rot)  # where the landmarks went
    crop = align_face(turned, turned_kps, 160)
    # the model's landmarks in the crop, from the box the crop's transform predicts
    box = keypoint_box(apply_affine(turned_kps, alignment_matrix(turned_kps, 160)))
    inside = det.keypoints(crop, box[None], box="landmarks")[0]
    eyes = five_points(inside)[:2]
    angle = np.degrees(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    assert abs(angle) < 3.0
    assert np.abs(eyes - template_points(160)[:2]).max() < 0.05 * 160


def test_align_command_writes_crops_and_carries_on_past_bad_files(tmp_path, capsys):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a picture")
    out = tmp_path / "crops"
    rc = cli.main(["align", str(GRACE), str(junk), str(tmp_path / "missing.png"), "--size", "96", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    crop = cv2.imread(str(out / "grace_hopper_face0.png"))
    assert crop is not None and crop.shape == (96, 96, 3)
    errors = [line for line in captured.err.splitlines() if line.strip()]
    # each error as it happens, then the end summary naming both again (as detect does)
    assert len(errors) == 5 and all(line.startswith("facekeypoints: error: ") for line in errors[:2])
    assert "junk.jpg" in errors[0] and "missing.png" in errors[1]
    assert (
        errors[2] == "facekeypoints: 2 of 3 inputs failed:" and "junk.jpg" in errors[3] and "missing.png" in errors[4]
    )


def test_align_command_rejects_a_bad_size(capsys):
    assert cli.main(["align", str(GRACE), "--size", "3"]) == 2
    assert "--size" in capsys.readouterr().err
