"""What a second core gives on this machine: the same photo work in one process, then in two at once.

The web service's target (issue 15) is a share of "cores x the one-thread photo rate". Whether two cores
give twice one core's rate is a property of the machine (cores that share a physical core or its caches,
memory bandwidth, a hypervisor), not of the service. So here the work has nothing shared and no HTTP:
each process pins itself to its own CPU and calls ``FaceKeypointDetector(threads=1)`` on the 640x480 photo
of ``bench/load_test.py`` (decoded once) for ``--duration`` seconds; first one process alone, then two at
the same time, alternated over ``--rounds``. Reported: photos/s of one process alone, of two together,
and their ratio, the most any number of threads or processes can get from the second core on this work.
Writes ``results/core_scaling.json``.

    python bench/core_scaling.py [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import photo_640x480  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _work(cpu: int, duration: float, start, out) -> None:
    """One process: pinned to ``cpu``, waits for ``start``, then reads the photo for ``duration`` seconds."""
    import cv2

    from facekeypoints.pipeline import FaceKeypointDetector

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    det = FaceKeypointDetector(threads=1)
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(photo_640x480(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    for _ in range(20):  # warm caches and ONNX Runtime's first calls
        assert len(det(rgb)) == 1
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < duration:
        det(rgb)
        n += 1
    out.put(n / (time.perf_counter() - t0))


def rate(cpus: list[int], duration: float) -> list[float]:
    """Photos/s of one process per CPU in ``cpus``, all started together."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_work, args=(c, duration, start, out)) for c in cpus]
    for p in procs:
        p.start()
    time.sleep(8.0)  # every process has loaded its model and warmed up
    start.set()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "core_scaling.json"))
    args = ap.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if len(cpus) < 2:
        print("needs two CPUs", file=sys.stderr)
        return 1
    alone, together = [], []
    for r in range(args.rounds):
        alone.append(rate(cpus[:1], args.duration)[0])
        together.append(sum(rate(cpus[:2], args.duration)))
        print(f"round {r + 1}: one process {alone[-1]:.1f} photos/s, two at once {together[-1]:.1f}", flush=True)
    one, two = float(np.median(alone)), float(np.median(together))
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, each process pinned to its own, one thread",
        "work": "FaceKeypointDetector(threads=1) on bench/load_test.py's 640x480 photo (one face), decoded once",
        "photos_per_s_one_process": round(one, 1),
        "photos_per_s_two_processes": round(two, 1),
        "scaling_1_to_2": round(two / one, 2),
        "rounds": {"one": [round(v, 1) for v in alone], "two": [round(v, 1) for v in together]},
        "duration_s": args.duration,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
