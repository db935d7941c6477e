import numpy as np

from facekeypoints import landmarks as lm


def test_flip_permutation_is_an_involution():
    perm = lm.FLIP_PERMUTATION
    assert perm.shape == (lm.NUM_LANDMARKS,)
    assert sorted(perm.tolist()) == list(range(lm.NUM_LANDMARKS))
    np.testing.assert_array_equal(perm[perm], np.arange(lm.NUM_LANDMARKS))


def test_flip_permutation_maps_each_part_onto_its_mirror():
    for name, idx in lm.PARTS.items():
        partner = lm.MIRROR_PARTS[name]
        assert lm.MIRROR_PARTS[partner] == name
        assert set(lm.FLIP_PERMUTATION[list(idx)].tolist()) == set(lm.PARTS[partner]), name


def test_parts_cover_every_point_once():
    all_idx = [i for idx in lm.PARTS.values() for i in idx]
    assert sorted(all_idx) == list(range(lm.NUM_LANDMARKS))
    assert sorted(i for idx in lm.GROUPS.values() for i in idx) == list(range(lm.NUM_LANDMARKS))


def test_outer_eye_corners():
    assert lm.OUTER_EYE_CORNERS == (36, 45)
    assert lm.FLIP_PERMUTATION[36] == 45


def _symmetric_face(width: int) -> np.ndarray:
    """A synthetic face whose left half mirrors its right half about the image centre."""
    rng = np.random.default_rng(0)
    cx = (width - 1) / 2.0
    kps = np.zeros((lm.NUM_LANDMARKS, 2), dtype=np.float32)
    done = set()
    for i in range(lm.NUM_LANDMARKS):
        j = int(lm.FLIP_PERMUTATION[i])
        if i in done:
            continue
        y = rng.uniform(10, 90)
        if i == j:
            kps[i] = (cx, y)
        else:
            dx = rng.uniform(1, 40)
            kps[i] = (cx - dx, y)
            kps[j] = (cx + dx, y)
        done |= {i, j}
    return kps


def test_flip_keypoints_symmetric_face_and_round_trip():
    width = 101
    kps = _symmetric_face(width)
    flipped = lm.flip_keypoints(kps, width)
    assert flipped.dtype == np.float32
    # Mirroring a symmetric face and re-indexing gives the same face back.
    np.testing.assert_allclose(flipped, kps, atol=1e-4)
    # Right eye stays on the image's left after the flip.
    assert flipped[36, 0] < flipped[45, 0]

    rng = np.random.default_rng(1)
    arbitrary = rng.uniform(0, 100, size=(3, lm.NUM_LANDMARKS, 2)).astype(np.float32)
    once = lm.flip_keypoints(arbitrary, width)
    assert not np.allclose(once, arbitrary)
    np.testing.assert_allclose(lm.flip_keypoints(once, width), arbitrary, atol=1e-4)


def test_flip_keypoints_matches_an_image_flip():
    # A point at pixel column x lands on column (width - 1 - x) of np.fliplr(image).
    width = 64
    img = np.zeros((32, width), dtype=np.uint8)
    kps = np.tile(np.array([[5.0, 7.0]], dtype=np.float32), (lm.NUM_LANDMARKS, 1))
    img[7, 5] = 255
    flipped_img = np.fliplr(img)
    fx, fy = lm.flip_keypoints(kps, width)[0]
    assert flipped_img[int(fy), int(fx)] == 255


def test_edges_in_range():
    assert len(lm.EDGES) > 0
    for a, b in lm.EDGES:
        assert 0 <= a < lm.NUM_LANDMARKS and 0 <= b < lm.NUM_LANDMARKS
        assert a != b
    assert (41, 36) in lm.EDGES and (47, 42) in lm.EDGES  # eyes are closed loops
    assert (16, 0) not in lm.EDGES and (0, 16) not in lm.EDGES  # the jaw is not


def test_interocular_distance():
    kps = np.zeros((2, lm.NUM_LANDMARKS, 2), dtype=np.float32)
    kps[:, 45] = (3.0, 4.0)
    np.testing.assert_allclose(lm.interocular_distance(kps), [5.0, 5.0])
