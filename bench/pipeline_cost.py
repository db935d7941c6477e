"""What the default pipeline costs per face, beside dlib's predictor, pinned to one CPU.

``FaceKeypointDetector(...).keypoints(rgb, boxes)`` from true boxes (all its passes: first,
rescue when unsure, second, mirrored read) against dlib's 68-point predictor on the same faces,
in alternating rounds, the process pinned to one CPU as in a one-CPU container. Writes
``results/pipeline_cost.json``.

    python bench/pipeline_cost.py [--data DIR] [--faces 100] [--rounds 9]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import dlib_models  # noqa: E402
from timing import ms_per_face, true_box_faces  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/300w/train", help="faces to time on (a .pts folder)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    jobs = true_box_faces(args.data, args.faces)
    variants = {
        "default (threads=1)": FaceKeypointDetector(args.model, threads=1),
        "no rescue": FaceKeypointDetector(args.model, threads=1, rescue=False),
        "no flip": FaceKeypointDetector(args.model, threads=1, flip=False),
        "one pass, no flip": FaceKeypointDetector(args.model, threads=1, flip=False, refine=False, rescue=False),
    }
    dlib, _, predictor = dlib_models()
    rects = [dlib.rectangle(*[int(round(v)) for v in b[0]]) for _, b in jobs]

    def run_dlib():
        for (img, _), r in zip(jobs, rects):
            predictor(img, r)

    timings: dict[str, list[float]] = {k: [] for k in [*variants, "dlib predictor"]}
    for det in variants.values():  # warm-up
        ms_per_face(det, jobs[:10])
    for _ in range(args.rounds):
        for name, det in variants.items():
            timings[name].append(ms_per_face(det, jobs))
        t = time.perf_counter()
        run_dlib()
        timings["dlib predictor"].append((time.perf_counter() - t) / len(jobs) * 1000)
    result = {
        "faces": len(jobs),
        "rounds": args.rounds,
        "pinned_to_one_cpu": hasattr(os, "sched_setaffinity"),
        "ms_per_face_median": {k: round(float(np.median(v)), 3) for k, v in timings.items()},
        "ms_per_face_min": {k: round(float(np.min(v)), 3) for k, v in timings.items()},
        "model": variants["default (threads=1)"].model_info(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
