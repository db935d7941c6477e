"""``facekeypoints detect FOLDER --workers N``: images per second for N = 1 and 2 on this machine.

The 770 Udacity test images are written to a temporary folder and read by the CLI as a user
would (``python -m facekeypoints detect DIR --workers N --jsonl OUT``), each run in a fresh
process, start-up included. The default thread split keeps workers x threads <= the CPUs this
process may use. Writes ``results/detect_workers.json``.

    python bench/detect_workers.py [--data ZIP] [--limit 770]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from facekeypoints.cpus import available_cpus
from facekeypoints.data import UdacityDataset
from facekeypoints.outputs import save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_engine import run_local  # noqa: E402  (bench/ray_engine.py: the same timed local command)

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/train-test-data.zip")
    ap.add_argument("--limit", type=int, default=770)
    args = ap.parse_args(argv)
    samples = UdacityDataset(args.data).load("test")[: args.limit]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        for s in samples:
            save_image(folder / f"{Path(s.name).stem}.png", s.image)
        for workers in (1, 2):
            row = run_local(folder, Path(tmp) / f"w{workers}", workers)
            rows[str(workers)] = {k: v for k, v in row.items() if not k.startswith("_")}
            print(workers, rows[str(workers)], flush=True)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({available_cpus()} available to the process)",
        "photos": f"{len(samples)} Udacity test images (PNG, mostly 200-600 px)",
        "workers": rows,
        "scaling_1_to_2": round(rows["2"]["images_per_s"] / rows["1"]["images_per_s"], 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "detect_workers.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
