"""One Euro filter for landmarks, with its speed term measured in face sizes.

The One Euro filter (Casiez, Roussel and Vogel, "1 Euro Filter: A Simple
Speed-based Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012)
is an exponential smoother whose cutoff frequency rises with the signal's
speed: at rest it smooths hard (low cutoff: little jitter), in motion it lets
the signal through (high cutoff: little lag). For a sample ``x_i`` at time
``t_i`` (``T_e = t_i - t_{i-1}``)::

    alpha(f_c) = 1 / (1 + tau / T_e),     tau = 1 / (2 pi f_c)
    dx_i       = (x_i - x^_{i-1}) / T_e                   raw speed
    dx^_i      = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dx^_{i-1}
    f_c        = min_cutoff + beta |dx^_i|
    x^_i       = alpha(f_c) x_i + (1 - alpha(f_c)) x^_{i-1}

Here every landmark is one 2-D signal: ``|dx^|`` is the length of its filtered
velocity, and that velocity is divided by the face's size (the longer side of
the tight box around its 68 points), so speeds are in *face sizes per second*
and one ``beta`` suits small and large faces alike. ``min_cutoff`` and
``d_cutoff`` are in hertz, ``beta`` in hertz per (face size per second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """One Euro settings for landmarks (defaults tuned with ``bench/jitter.py`` at 30 frames/s).

    ``min_cutoff`` (Hz): the cutoff of a face at rest; lower means less jitter and
    more lag. ``beta`` (Hz per face size per second): how fast the cutoff rises
    with speed; higher means less lag in motion. ``d_cutoff`` (Hz): the cutoff of
    the speed estimate itself.
    """

    min_cutoff: float = 0.5
    beta: float = 30.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        for name in ("min_cutoff", "d_cutoff"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number of hertz, got {v}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be >= 0, got {self.beta}")


def smoothing_factor(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """``alpha = 1 / (1 + tau / dt)`` with ``tau = 1 / (2 pi cutoff)``."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def face_size(keypoints: np.ndarray) -> float:
    """The longer side of the tight box around (N, 2) points, in their units (at least 1)."""
    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    span = kps.max(axis=0) - kps.min(axis=0)
    return float(max(span.max(), 1.0))


class OneEuroFilter:
    """Smooths a stream of (N, 2) point sets, one One Euro filter per point.

    >>> f = OneEuroFilter()
    >>> smooth = f(keypoints, t)          # t in seconds, increasing

    The first sample passes through unchanged. A sample whose time does not
    increase (a repeated or out-of-order timestamp) is returned as the last output.
    ``scale`` (the face size, pixels) defaults to :func:`face_size` of the sample.
    """

    def __init__(self, params: OneEuroParams | None = None):
        self.params = params or OneEuroParams()
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next sample passes through."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None
        self._dt: float = 0.0
        self._size: float = 1.0

    @property
    def value(self) -> np.ndarray | None:
        """The last output, or None before the first sample."""
        return None if self._x is None else self._x.copy()

    def predict(self, t: float) -> np.ndarray | None:
        """The last output moved on to time ``t`` at the filtered speed (None before the first sample)."""
        if self._x is None:
            return None
        return self._x + self._dx * self._size * max(float(t) - self._t, 0.0)

    @property
    def last_step(self) -> float:
        """Seconds between the last two samples (0 before the second one)."""
        return self._dt

    def __call__(self, x: np.ndarray, t: float, scale: float | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape or not np.isfinite(self._x).all():
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if not dt > 0:
            return self._x.copy()
        p = self.params
        size = face_size(x) if scale is None else max(float(scale), 1e-6)
        dx = (x - self._x) / dt / size  # face sizes per second
        a_d = smoothing_factor(p.d_cutoff, dt)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True)
        a = smoothing_factor(p.min_cutoff + p.beta * speed, dt)
        self._x = a * x + (1.0 - a) * self._x
        self._t, self._dt, self._size = float(t), dt, size
        return self._x.copy()
