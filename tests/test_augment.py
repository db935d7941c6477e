from dataclasses import replace

import cv2
import numpy as np
import pytest

from facekeypoints.augment import AugmentConfig, augment, random_crop_matrix, warp_sample
from facekeypoints.geometry import CropRule
from facekeypoints.landmarks import FLIP_PERMUTATION
from synthetic import template


def _dot_image(point, size=(240, 240)):
    img = np.zeros(size + (3,), np.uint8)
    cv2.circle(img, tuple(int(round(v)) for v in point), 3, (255, 255, 255), -1)
    return img


def _centroid(img):
    g = img[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0 : g.shape[0], 0 : g.shape[1]]
    return np.array([(g * xs).sum() / g.sum(), (g * ys).sum() / g.sum()])


@pytest.mark.parametrize("seed", range(6))
def test_warped_keypoints_land_on_the_warped_dots(seed):
    """Each point is drawn as a dot; after the same warp, the moved point sits on its dot's centroid."""
    kps = (template() * 150 + 45).round().astype(np.float32)
    cfg = AugmentConfig(flip_prob=0.5, rotate_deg=30, stretch=0.2 if seed % 2 else 0.0)
    rng = np.random.default_rng(seed)
    size = 128
    m, flip = random_crop_matrix(kps, CropRule(), size, cfg, rng)
    _, warped = warp_sample(_dot_image(kps[0]), kps, m, size, flip)
    checked = 0
    for i in range(0, 68, 2):
        if not ((warped[i] > 6) & (warped[i] < size - 7)).all():
            continue  # the dot would be cut by the crop's border, biasing its centroid
        src = FLIP_PERMUTATION[i] if flip else i  # after a flip, point i is the mirror of the original i
        crop, _ = warp_sample(_dot_image(kps[src]), kps, m, size, flip)
        assert np.linalg.norm(_centroid(crop) - warped[i]) < 0.75
        checked += 1
    assert checked >= 25


def test_flip_keeps_subject_sides():
    """After a flip, the subject's right eye (36-41) is still on the image's left."""
    kps = (template() * 150 + 45).astype(np.float32)
    cfg = AugmentConfig(flip_prob=1.0, rotate_deg=0, scale=0, shift=0)
    m, flip = random_crop_matrix(kps, CropRule(), 128, cfg, np.random.default_rng(0))
    assert flip
    _, warped = warp_sample(np.zeros((240, 240, 3), np.uint8), kps, m, 128, flip)
    assert warped[36:42, 0].mean() < warped[42:48, 0].mean()


def test_augment_is_reproducible_and_in_range():
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3)).astype(np.uint8)
    kps = (template() * 120 + 40).astype(np.float32)
    a = augment(img, kps, CropRule(), 96, AugmentConfig(), np.random.default_rng(7))
    b = augment(img, kps, CropRule(), 96, AugmentConfig(), np.random.default_rng(7))
    assert a[0].shape == (96, 96, 3) and a[0].dtype == np.uint8
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert (a[1] > -10).all() and (a[1] < 106).all()


@pytest.mark.parametrize("seed", range(4))
def test_unjittered_crops_keep_the_crop_rule_at_any_angle(seed):
    """Without jitter, the points' tight box in the (rotated) crop is the rule's box: centred, side S / scale."""
    kps = (template() * 150 + 45).astype(np.float32)
    cfg = AugmentConfig(rotate_deg=40, jitter_prob=0.0, fine_scale=0.0, fine_shift=0.0, flip_prob=0.5)
    rule = CropRule(scale=1.25)
    m, flip = random_crop_matrix(kps, rule, 96, cfg, np.random.default_rng(seed))
    _, inside = warp_sample(np.zeros((240, 240, 3), np.uint8), kps, m, 96, flip)
    lo, hi = inside.min(0), inside.max(0)
    assert np.allclose((lo + hi) / 2, 47.5, atol=1e-3)
    assert np.isclose((hi - lo).max(), 96 / 1.25, atol=1e-3)


def test_textured_occlusion_pastes_a_mirrored_patch_of_the_same_crop():
    from facekeypoints.augment import photometric

    # every column its own colour, increasing to the right: a pasted patch brings only colours the crop
    # already has, and mirrored they decrease to the right
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[:, :, 0] = np.arange(64, dtype=np.uint8)[None, :] * 4
    crop[:, :, 1] = 255 - crop[:, :, 0]
    plain = AugmentConfig().with_photometric_strength(0.0)
    textured = replace(plain, occlusion_prob=1.0, occlusion_texture=1.0)
    for seed in range(10):
        out = photometric(crop, textured, np.random.default_rng(seed))
        changed = (out != crop).any(axis=2)
        assert changed.any()
        assert set(map(tuple, out.reshape(-1, 3))) <= set(map(tuple, crop.reshape(-1, 3)))
        row = int(np.flatnonzero(changed.any(axis=1))[0])
        assert (np.diff(out[row, changed[row], 0].astype(int)) < 0).all()
    flat = replace(plain, occlusion_prob=1.0, occlusion_texture=0.0)
    out = photometric(crop, flat, np.random.default_rng(0))
    patch = out[(out != crop).any(axis=2)]
    assert len(patch) and (patch == patch[0]).all()  # one flat grey


def test_stretch_widens_or_narrows_the_face_about_the_crop_centre():
    """--stretch: in an upright, unjittered crop the points' box is scaled by exp(u) across and exp(-u) down, u
    drawn within the range, about the crop's centre; without it the box keeps its shape."""
    kps = (template() * 150 + 45).astype(np.float32)
    rule = CropRule(scale=1.25)
    base = AugmentConfig(rotate_deg=0, jitter_prob=0.0, fine_scale=0.0, fine_shift=0.0, flip_prob=0.0)

    def box(cfg, seed):
        m, flip = random_crop_matrix(kps, rule, 96, cfg, np.random.default_rng(seed))
        _, inside = warp_sample(np.zeros((240, 240, 3), np.uint8), kps, m, 96, flip)
        lo, hi = inside.min(0), inside.max(0)
        assert np.allclose((lo + hi) / 2, 47.5, atol=1e-3)  # still centred
        return hi - lo

    plain = box(base, 0)
    logs = []
    for seed in range(40):
        w, h = box(replace(base, stretch=0.2), seed) / plain
        assert np.isclose(w * h, 1.0, atol=1e-6)  # the area is kept
        logs.append(np.log(w))
    assert max(np.abs(logs)) <= 0.2 + 1e-9 and min(logs) < -0.1 and max(logs) > 0.1
