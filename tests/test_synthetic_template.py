import numpy as np

from facekeypoints.landmarks import FLIP_PERMUTATION, flip_keypoints
from synthetic import template


def test_template_is_mirror_symmetric():
    """The test faces obey our own flip permutation (a check of both)."""
    p = template() * 100
    assert np.abs(flip_keypoints(p, 101) - p).max() < 1e-3
    assert (FLIP_PERMUTATION[FLIP_PERMUTATION] == np.arange(68)).all()
