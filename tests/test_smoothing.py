"""The One Euro filter: pass-through start, rest vs motion, face-size scaling, bad parameters."""

import numpy as np
import pytest

from facekeypoints.smoothing import OneEuroFilter, OneEuroParams, face_size, smoothing_factor
from synthetic import template

FPS = 30.0


def face(size: float = 100.0, shift=(0.0, 0.0)) -> np.ndarray:
    return template() * size + np.asarray(shift) + 50.0


def run(filt: OneEuroFilter, seq: np.ndarray) -> np.ndarray:
    return np.stack([filt(x, i / FPS) for i, x in enumerate(seq)])


def test_smoothing_factor_follows_the_paper():
    # alpha = 1 / (1 + tau / Te), tau = 1 / (2 pi fc)
    assert smoothing_factor(1.0, 1 / 30) == pytest.approx(1 / (1 + 30 / (2 * np.pi)))
    assert smoothing_factor(1e9, 1 / 30) == pytest.approx(1.0)


def test_first_sample_passes_and_constant_input_stays_put():
    f = OneEuroFilter()
    x = face()
    assert np.array_equal(f(x, 0.0), x)
    for i in range(1, 10):
        np.testing.assert_allclose(f(x, i / FPS), x)


def test_jitter_at_rest_is_cut_hard():
    rng = np.random.default_rng(0)
    x = face()
    seq = x + rng.normal(0, 0.8, (90, 68, 2))
    out = run(OneEuroFilter(), seq)

    def jitter(s):
        return np.linalg.norm(np.diff(s, axis=0), axis=-1).mean()

    assert jitter(out[10:]) * 3 <= jitter(seq[10:])


def test_fast_motion_gets_little_lag():
    # a face moving at 2 face sizes per second: the output stays close (speed raises the cutoff)
    t = np.arange(60) / FPS
    seq = np.stack([face(shift=(200.0 * ti, 0.0)) for ti in t])
    out = run(OneEuroFilter(), seq)
    lag = np.abs(out[30:, :, 0] - seq[30:, :, 0]).mean()
    slow = run(OneEuroFilter(OneEuroParams(beta=0.0)), seq)
    assert lag < 0.25 * np.abs(slow[30:, :, 0] - seq[30:, :, 0]).mean()
    assert lag < 10.0  # pixels, with the face 100 px across moving 6.7 px a frame


def test_same_parameters_work_for_any_face_size():
    """Speed is measured in face sizes: a 10x larger face is filtered exactly 10x larger."""
    rng = np.random.default_rng(1)
    unit = template()
    moves = np.cumsum(rng.normal(0, 0.02, (40, 1, 2)), axis=0) + rng.normal(0, 0.005, (40, 68, 2))
    small, big = (unit + moves) * 50.0, (unit + moves) * 500.0
    np.testing.assert_allclose(run(OneEuroFilter(), big), 10.0 * run(OneEuroFilter(), small), rtol=1e-9, atol=1e-7)


def test_repeated_time_and_reset():
    f = OneEuroFilter()
    a = f(face(), 0.0)
    b = f(face(shift=(5, 0)), 0.0)  # no time has passed: nothing changes
    np.testing.assert_allclose(a, b)
    f.reset()
    np.testing.assert_allclose(f(face(shift=(5, 0)), 1.0), face(shift=(5, 0)))


def test_face_size_and_bad_parameters():
    assert face_size(face(size=100.0)) == pytest.approx(80.0, rel=0.05)
    with pytest.raises(ValueError):
        OneEuroParams(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroParams(beta=-1.0)
    with pytest.raises(ValueError):
        OneEuroParams(d_cutoff=float("nan"))
