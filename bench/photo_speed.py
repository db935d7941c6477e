"""Whole photos on one thread: ms per photo at 640x480, 1280x720 and 1920x1080, beside dlib.

Grace Hopper's portrait (the face about 170 px wide at 640x480, scaled with the frame) is placed
on a gray frame of each size; ``FaceKeypointDetector(threads=1)(rgb)`` (YuNet + every pass) and
dlib's HOG detector + 68-point predictor (upsample 0, as fast as dlib goes) read it in
alternating rounds, the process pinned to one CPU. Each way is called ``--in-a-row`` times a round:
the first call, made just after the other ways ran (caches cold), and the calls after it (one photo
after another, as a folder or a video is read) are reported apart. The detection alone is timed too, and both
again with YuNet's network run by the library's own code (``backend="library"``, the default
until the ONNX Runtime backend) for comparison in the same run. Writes ``results/photo_speed.json``.

    python bench/photo_speed.py [--rounds 15] [--in-a-row 5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import cbook  # noqa: E402

from facekeypoints.detectors import create_detector  # noqa: E402
from facekeypoints.image_io import load_image  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import dlib_models  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ((640, 480), (1280, 720), (1920, 1080))


def photo(width: int, height: int) -> np.ndarray:
    grace = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    h = int(height * 0.8)
    face = cv2.resize(grace, (round(grace.shape[1] * h / grace.shape[0]), h), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 90, np.uint8)
    y0, x0 = (height - face.shape[0]) // 2, (width - face.shape[1]) // 2
    canvas[y0 : y0 + face.shape[0], x0 : x0 + face.shape[1]] = face
    return canvas


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument(
        "--in-a-row",
        type=int,
        default=5,
        help="calls of each way per round: the first is timed as 'ms_per_photo_median' (just after another "
        "way ran, caches cold), the others as 'ms_per_photo_in_a_row_median' (one photo after another)",
    )
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    ours = FaceKeypointDetector(threads=1)
    library = FaceKeypointDetector(threads=1, detector=create_detector("yunet", backend="library"))
    assert ours.detector.backend == "onnxruntime", ours.detector.backend
    dlib, hog, predictor = dlib_models()

    def dlib_photo(rgb: np.ndarray) -> None:
        for r in hog(rgb, 0):
            predictor(rgb, r)

    rows = {}
    for w, h in SIZES:
        rgb = photo(w, h)
        found = {"ours": len(ours(rgb)), "dlib": len(hog(rgb, 0)), "ours, library backend": len(library(rgb))}
        ways = {  # each called with the photo, in turn, round after round
            "ours": ours,
            "ours, detection only": ours.detector.detect,
            "dlib": dlib_photo,
            "ours, library backend": library,
            "ours, library backend, detection only": library.detector.detect,
        }
        t: dict[str, list[float]] = {name: [] for name in ways}
        warm: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, run in ways.items():
                for k in range(args.in_a_row):
                    s = time.perf_counter()
                    run(rgb)
                    (warm if k else t)[name].append(time.perf_counter() - s)
        rows[f"{w}x{h}"] = {
            "faces_found": found,
            "ms_per_photo_median": {k: round(float(np.median(v)) * 1000, 2) for k, v in t.items()},
        }
        if args.in_a_row > 1:
            rows[f"{w}x{h}"]["ms_per_photo_in_a_row_median"] = {
                k: round(float(np.median(v)) * 1000, 2) for k, v in warm.items()
            }
        print(w, h, rows[f"{w}x{h}"], flush=True)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, pinned to one, one thread",
        "rounds": args.rounds,
        "timed": "ms_per_photo_median: the first call of each way in a round, just after the other ways ran "
        "(caches cold); ms_per_photo_in_a_row_median: the calls after it, one photo after another as a folder "
        "or a video is read",
        "photos": rows,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "photo_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
