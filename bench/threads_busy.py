"""Default thread counts against ``threads=1``: pinned to one CPU, with and without a busy neighbour.

The default pipeline (``FaceKeypointDetector()``, all its passes) reads 100 faces from their true
boxes in each scenario, alternating between the default constructor and ``threads=1`` in rounds:

- ``pinned, quiet``: the process on one CPU (as ``taskset -c 0`` or a one-CPU container);
- ``pinned, busy neighbour``: the same, with another process spinning on that CPU;
- ``all CPUs, busy neighbours``: not pinned, one spinning process per CPU (a busy server).

The defaults size ONNX Runtime's pool from the CPUs the process may use
(:func:`facekeypoints.cpus.available_cpus`) and never let idle threads spin, so the default must be
no slower than ``threads=1`` in every scenario. Writes ``results/threads_busy.json``.

    python bench/threads_busy.py [--data DIR] [--faces 100] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from facekeypoints.cpus import available_cpus

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ms_per_face, true_box_faces  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _spin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    x = 0
    while True:
        x += 1


def _measure(args, pin: bool, queue) -> None:
    if pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from facekeypoints.pipeline import FaceKeypointDetector

    jobs = true_box_faces(args.data, args.faces)
    variants = {"default": FaceKeypointDetector(), "threads=1": FaceKeypointDetector(threads=1)}
    for det in variants.values():
        ms_per_face(det, jobs[:10])
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, det in variants.items():
            times[name].append(ms_per_face(det, jobs))
    queue.put(
        {
            "threads": {k: d.model.threads for k, d in variants.items()},
            "ms_per_face_median": {k: round(float(np.median(v)), 3) for k, v in times.items()},
        }
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/300w/train", help="faces to time on (a .pts folder)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=str(RESULTS / "threads_busy.json"))
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    first_cpu = sorted(os.sched_getaffinity(0))[0]
    scenarios = {
        "pinned, quiet": (True, []),
        "pinned, busy neighbour": (True, [first_cpu]),
        "all CPUs, busy neighbours": (False, sorted(os.sched_getaffinity(0))),
    }
    results = {}
    for name, (pin, spin_cpus) in scenarios.items():
        spinners = [ctx.Process(target=_spin, args=(c,), daemon=True) for c in spin_cpus]
        for p in spinners:
            p.start()
        queue = ctx.Queue()
        worker = ctx.Process(target=_measure, args=(args, pin, queue))
        worker.start()
        results[name] = queue.get()
        worker.join()
        for p in spinners:
            p.terminate()
            p.join()
        print(name, results[name], flush=True)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({available_cpus()} available)",
        "faces": args.faces,
        "rounds": args.rounds,
        "scenarios": results,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
