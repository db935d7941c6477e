"""The 68-point iBUG landmark scheme: the one source of truth for indices.

Indices are 0-based. "Right" and "left" are the *subject's* sides, so the
subject's right eye (36-41) appears on the image's left.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 68

#: Index groups, each an ordered tuple of point indices.
JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_BOTTOM = tuple(range(31, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
OUTER_LIP = tuple(range(48, 60))
INNER_LIP = tuple(range(60, 68))

#: Fine-grained named parts (used for drawing and mirroring).
PARTS: dict[str, tuple[int, ...]] = {
    "jaw": JAW,
    "right_brow": RIGHT_BROW,
    "left_brow": LEFT_BROW,
    "nose_bridge": NOSE_BRIDGE,
    "nose_bottom": NOSE_BOTTOM,
    "right_eye": RIGHT_EYE,
    "left_eye": LEFT_EYE,
    "outer_lip": OUTER_LIP,
    "inner_lip": INNER_LIP,
}

#: Coarse groups reported by evaluation.
GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": JAW,
    "brows": RIGHT_BROW + LEFT_BROW,
    "nose": NOSE_BRIDGE + NOSE_BOTTOM,
    "eyes": RIGHT_EYE + LEFT_EYE,
    "mouth": OUTER_LIP + INNER_LIP,
}

#: Outer eye corners (subject's right, subject's left): the NME_io normaliser.
OUTER_EYE_CORNERS: tuple[int, int] = (36, 45)

#: Parts drawn as closed loops.
CLOSED_PARTS = frozenset({"right_eye", "left_eye", "outer_lip", "inner_lip"})

#: Pairs of parts that are mirror images of each other.
MIRROR_PARTS: dict[str, str] = {
    "jaw": "jaw",
    "right_brow": "left_brow",
    "left_brow": "right_brow",
    "nose_bridge": "nose_bridge",
    "nose_bottom": "nose_bottom",
    "right_eye": "left_eye",
    "left_eye": "right_eye",
    "outer_lip": "outer_lip",
    "inner_lip": "inner_lip",
}


def _mirror_pairs() -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    # Jaw: 0..16 runs from the subject's right ear to the left ear.
    pairs += [(i, 16 - i) for i in JAW]
    # Brows run outer->inner on the right, inner->outer on the left.
    pairs += [(17 + k, 26 - k) for k in range(5)]
    pairs += [(i, i) for i in NOSE_BRIDGE]
    pairs += [(31 + k, 35 - k) for k in range(5)]
    # Eyes: 36 outer-right corner, clockwise in the image; 45 outer-left corner.
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    # Outer lip: 48 right corner, 54 left corner, 51 top centre, 57 bottom centre.
    pairs += [(48, 54), (49, 53), (50, 52), (51, 51), (55, 59), (56, 58), (57, 57)]
    # Inner lip: 60 right corner, 64 left corner.
    pairs += [(60, 64), (61, 63), (62, 62), (65, 67), (66, 66)]
    return pairs


def _flip_permutation() -> np.ndarray:
    perm = np.full(NUM_LANDMARKS, -1, dtype=np.int64)
    for a, b in _mirror_pairs():
        perm[a] = b
        perm[b] = a
    assert (perm >= 0).all(), "every point needs a mirror partner"
    perm.setflags(write=False)
    return perm


#: ``FLIP_PERMUTATION[i]`` is the index that point ``i`` becomes after a
#: horizontal flip of the image. Apply it as ``flipped = kps[FLIP_PERMUTATION]``.
FLIP_PERMUTATION: np.ndarray = _flip_permutation()


def _edges() -> tuple[tuple[int, int], ...]:
    edges: list[tuple[int, int]] = []
    for name, idx in PARTS.items():
        edges += list(zip(idx[:-1], idx[1:]))
        if name in CLOSED_PARTS:
            edges.append((idx[-1], idx[0]))
    return tuple(edges)


#: Line segments (i, j) that draw the landmark contours.
EDGES: tuple[tuple[int, int], ...] = _edges()


def flip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Mirror keypoints for an image flipped left-right.

    ``keypoints`` is (..., 68, 2) in pixels (x then y, origin at the centre of
    the top-left pixel) of an image ``width`` pixels wide. Returns the points
    of the flipped image, re-indexed with :data:`FLIP_PERMUTATION`.
    """
    kps = np.asarray(keypoints, dtype=np.float32)
    out = kps[..., FLIP_PERMUTATION, :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def interocular_distance(keypoints: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (36, 45), in the points' units."""
    kps = np.asarray(keypoints, dtype=np.float64)
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(kps[..., a, :] - kps[..., b, :], axis=-1)


def mean_face() -> np.ndarray:
    """(68, 2) float64 mean iBUG face, upright (y down), eye centres at (-0.5, 0) and (0.5, 0): the
    Procrustes mean of 300-W's 2,012 training faces (``mean_face.json``). A reference face for
    checks that need one (an overlay's orientation), not a prediction."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).resolve().parent / "mean_face.json").read_text())
    return np.asarray(data["points"], dtype=np.float64).reshape(NUM_LANDMARKS, 2)
