"""Landmark jitter and lag with and without One Euro smoothing, on two videos made in memory.

    python bench/jitter.py [--frames 150] [--noise 6] [--min-cutoff ...] [--beta ...] [--d-cutoff ...]

Both videos are made from matplotlib's portrait of Grace Hopper, scaled and
pasted on a grey 640x480 canvas, at 30 frames/s, with fresh Gaussian sensor noise
(``--noise``, grey levels) in every frame:

- static: the photo does not move. Jitter = mean frame-to-frame displacement of
  the 68 landmarks, divided by the inter-ocular distance (outer eye corners).
  Smoothing must cut it at least 3x.
- moving: the photo is translated (+-110 px, +-50 px) and rotated (+-15 deg) along
  a smooth path (up to about 2 face widths per second). Error = mean distance
  between the landmarks and the truth, divided by the inter-ocular distance; the
  truth is the tracker's own (mean, unsmoothed) landmarks on the clean, still
  photo carried along the known path. Smoothing must not raise it by more than 10%.

Both runs use the same tracker (bundled model, one ONNX Runtime thread), once
with smoothing and once without. Exit status 1 if either criterion fails.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from facekeypoints import FaceKeypointDetector, load_image
from facekeypoints.landmarks import interocular_distance
from facekeypoints.smoothing import OneEuroParams
from facekeypoints.video import Tracker, TrackerOptions

W, H, FPS = 640, 480, 30.0
BACKGROUND = 110


def base_picture(scale: float = 0.6) -> np.ndarray:
    """Grace Hopper scaled by ``scale`` and pasted in the middle of a grey 640x480 RGB canvas."""
    from matplotlib import cbook

    photo = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((H, W, 3), BACKGROUND, np.uint8)
    h, w = small.shape[:2]
    y0, x0 = (H - h) // 2, (W - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = small
    return canvas


def path_matrix(t: float) -> np.ndarray:
    """The moving video's 2x3 similarity at time ``t`` seconds (rotation about the canvas centre, then shift)."""
    angle = 15.0 * np.sin(2 * np.pi * t / 5.0)
    tx = 110.0 * np.sin(2 * np.pi * t / 4.0)
    ty = 50.0 * np.sin(2 * np.pi * t / 3.0)
    m = cv2.getRotationMatrix2D(((W - 1) / 2.0, (H - 1) / 2.0), angle, 1.0)
    m[:, 2] += (tx, ty)
    return m


def make_frames(base: np.ndarray, n: int, noise: float, moving: bool, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB frames of the static or moving video, each with its own sensor noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        img = base
        if moving:
            img = cv2.warpAffine(
                base, path_matrix(i / FPS), (W, H), flags=cv2.INTER_LINEAR, borderValue=(BACKGROUND,) * 3
            )
        noisy = img.astype(np.float32) + rng.normal(0.0, noise, img.shape).astype(np.float32)
        frames.append(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    return frames


def track(detector: FaceKeypointDetector, frames: list[np.ndarray], smoothing: OneEuroParams | None) -> np.ndarray:
    """(n, 68, 2) landmarks of the one face, tracked through ``frames``."""
    tracker = Tracker(detector, TrackerOptions(smoothing=smoothing, pose=False))
    out = []
    for i, rgb in enumerate(frames):
        faces = tracker.update(rgb, i / FPS)
        if len(faces) != 1:
            raise SystemExit(f"frame {i}: expected one tracked face, got {len(faces)}")
        out.append(faces[0].keypoints)
    return np.asarray(out, np.float64)


def jitter(kps: np.ndarray) -> float:
    """Mean frame-to-frame landmark displacement over the inter-ocular distance."""
    step = np.linalg.norm(np.diff(kps, axis=0), axis=-1).mean(axis=-1)
    return float((step / interocular_distance(kps[1:])).mean())


def error(kps: np.ndarray, truth: np.ndarray) -> float:
    """Mean landmark distance to the truth over the true inter-ocular distance."""
    d = np.linalg.norm(kps - truth, axis=-1).mean(axis=-1)
    return float((d / interocular_distance(truth)).mean())


def main(argv: list[str] | None = None) -> int:
    defaults = OneEuroParams()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150, help="frames per video (default: %(default)s)")
    ap.add_argument("--noise", type=float, default=6.0, help="sensor noise, grey levels (default: %(default)s)")
    ap.add_argument("--min-cutoff", type=float, default=defaults.min_cutoff)
    ap.add_argument("--beta", type=float, default=defaults.beta)
    ap.add_argument("--d-cutoff", type=float, default=defaults.d_cutoff)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    params = OneEuroParams(args.min_cutoff, args.beta, args.d_cutoff)

    t0 = time.perf_counter()
    cv2.setNumThreads(1)
    detector = FaceKeypointDetector(threads=1)
    base = base_picture()
    static = make_frames(base, args.frames, args.noise, moving=False, seed=args.seed)
    moving = make_frames(base, args.frames, args.noise, moving=True, seed=args.seed + 1)

    # The truth: the tracker's mean landmarks on the clean still photo, carried along the path.
    ref = track(detector, [base] * 30, None).mean(axis=0)
    truth = np.stack([np.c_[ref, np.ones(68)] @ path_matrix(i / FPS).T for i in range(args.frames)])

    raw_s, smooth_s = track(detector, static, None), track(detector, static, params)
    raw_m, smooth_m = track(detector, moving, None), track(detector, moving, params)
    j_raw, j_smooth = jitter(raw_s), jitter(smooth_s)
    e_raw, e_smooth = error(raw_m, truth), error(smooth_m, truth)
    iod = float(interocular_distance(ref))

    cut = j_raw / max(j_smooth, 1e-12)
    rise = e_smooth / e_raw - 1.0
    ok_static, ok_moving = cut >= 3.0, rise <= 0.10
    print(
        f"One Euro: min_cutoff={params.min_cutoff} Hz, beta={params.beta}, d_cutoff={params.d_cutoff} Hz; "
        f"{args.frames} frames at {FPS:g} fps, noise sigma {args.noise:g}, inter-ocular {iod:.0f} px"
    )
    print(f"{'video':8} {'metric':28} {'raw':>8} {'smoothed':>9} {'change':>10}  criterion")
    print(
        f"{'static':8} {'jitter (% IOD per frame)':28} {100 * j_raw:8.3f} {100 * j_smooth:9.3f} "
        f"{cut:9.1f}x  >= 3x lower: {'PASS' if ok_static else 'FAIL'}"
    )
    print(
        f"{'moving':8} {'mean error (% IOD)':28} {100 * e_raw:8.3f} {100 * e_smooth:9.3f} "
        f"{100 * rise:+9.1f}%  <= +10%: {'PASS' if ok_moving else 'FAIL'}"
    )
    print(f"moving jitter (% IOD per frame): raw {100 * jitter(raw_m):.3f}, smoothed {100 * jitter(smooth_m):.3f}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0 if ok_static and ok_moving else 1


if __name__ == "__main__":
    sys.exit(main())
