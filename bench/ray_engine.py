"""``detect --engine ray`` against the local engine's ``--workers 2`` on this machine: images per second.

Three photo sets, read by the CLI as a user would, each command in a fresh process:

- the 770 Udacity test images, extracted as they are in the zip (JPEG files);
- the sample photos (``../shared/data/samples/*.jpg``), each copied ``--copies`` times under new
  names so that the job is long enough to measure (three photos alone measure only start-up);
- a longer job, to show how Ray's fixed start-up cost spreads: every ``.jpg`` under ``--w300``
  (``../shared/data/300w``: 2,566 real photos of faces; skipped when the folder is missing).

Three ways to run it:

- ``local --workers 2``: ``facekeypoints detect DIR --workers 2 --jsonl OUT``;
- ``ray (starts its own)``: ``facekeypoints detect --engine ray DIR --shards OUT``, which starts a local
  Ray on this machine's CPUs and stops it at the end (what a laptop user gets);
- ``ray (joins a running cluster)``: the same with ``--ray-address`` of a Ray (2 CPUs) this bench started
  beforehand and ran one small untimed job on (8 photos), as on a real cluster, where Ray and Ray Data's
  helper actors are already up.

Each is timed from the command's start to its exit (``images_per_s``); for Ray the command's own summary
line also gives the job's rate once Ray is up (``job_images_per_s``). Last, the floor Ray sets: a Ray Data job
of the same shape doing nothing (770 rows in as many blocks as the 770 photos' job, a pool of 2 actors that
only count them), starting its own Ray and joining a running one (``ray_data_doing_nothing``). Every run writes
to a fresh output folder; the best of ``--runs`` is kept, all of them are listed. The records of the two engines
are compared (``records_equal``). What else ran on the machine is recorded (load average, busiest processes).

    python bench/ray_engine.py [--data ZIP] [--samples DIR] [--copies 20] [--runs 2]

Writes ``results/ray_engine.json``. Needs the ``[ray]`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SUMMARY = re.compile(
    r"detect --engine ray: (\d+) images, (\d+) faces, (\d+) errors, ([\d.]+) images/s "
    r"\(([\d.]+) s, (\d+) actors? (\d+) % busy\)"
)


def busy_processes(n: int = 6) -> list[str]:
    """The ``n`` processes using the most CPU right now (``ps``), ours included."""
    out = subprocess.run(["ps", "-eo", "pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return [" ".join(line.split())[:140] for line in out.splitlines()[1 : n + 1]]


def extract_udacity(zip_path: Path, folder: Path) -> int:
    folder.mkdir(parents=True)
    n = 0
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            if name.startswith("test/") and not name.endswith("/"):
                (folder / Path(name).name).write_bytes(z.read(name))
                n += 1
    return n


def copy_samples(samples: Path, folder: Path, copies: int) -> int:
    folder.mkdir(parents=True)
    photos = sorted(samples.glob("*.jpg"))
    for photo in photos:
        for i in range(copies):
            shutil.copy(photo, folder / f"{photo.stem}_{i:02d}.jpg")
    return len(photos) * copies


def copy_tree_jpgs(root: Path, folder: Path) -> int:
    """Every ``*.jpg`` under ``root`` into one flat ``folder`` (names made unique by their path)."""
    folder.mkdir(parents=True)
    photos = sorted(root.rglob("*.jpg"))
    for photo in photos:
        shutil.copy(photo, folder / "_".join(photo.relative_to(root).parts))
    return len(photos)


def records_from_jsonl(path: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


def _row(res: subprocess.CompletedProcess, wall: float, records: dict[str, dict]) -> dict:
    """One timed command's figures; ``_records`` (path -> record) is kept for comparisons, not written."""
    return {
        "exit_code": res.returncode,
        "images": len(records),
        "faces": sum(len(r.get("faces", [])) for r in records.values()),
        "errors": sum("error" in r for r in records.values()),
        "seconds": round(wall, 2),
        "images_per_s": round(len(records) / wall, 1),
        "_records": records,
    }


def run_local(folder: Path, out: Path, workers: int = 2) -> dict:
    """``facekeypoints detect FOLDER --workers N --jsonl``, timed from start to exit in a fresh process."""
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "local.jsonl"
    cmd = [sys.executable, "-m", "facekeypoints", "detect", str(folder), "--workers", str(workers)]
    t = time.perf_counter()
    res = subprocess.run([*cmd, "--jsonl", str(jsonl), "--no-progress"], capture_output=True, text=True)
    return _row(res, time.perf_counter() - t, records_from_jsonl(jsonl))


def run_ray(folder: Path, out: Path, address: str | None) -> dict:
    from facekeypoints.ray_engine import read_shards

    shards = out / "shards"
    cmd = [sys.executable, "-m", "facekeypoints", "detect", "--engine", "ray", str(folder), "--shards", str(shards)]
    if address:
        cmd += ["--ray-address", address]
    t = time.perf_counter()
    res = subprocess.run([*cmd, "--no-progress"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    m = SUMMARY.search(res.stdout)
    records = {r["path"]: r for r in read_shards(str(shards))} if shards.exists() else {}
    row = {
        **_row(res, wall, records),
        "job_seconds": float(m.group(5)) if m else None,
        "job_images_per_s": float(m.group(4)) if m else None,
        "actors": int(m.group(6)) if m else None,
        "actors_busy_percent": int(m.group(7)) if m else None,
    }
    if not m:
        row["stderr_tail"] = res.stderr[-800:]
    return row


#: A Ray Data job that does nothing: ``items`` rows in ``blocks`` blocks through a pool of 2 actors whose
#: ``__call__`` returns the batch's size, as ``detect --engine ray`` runs its work (one block a batch). Joins
#: ``address`` or starts a local Ray (2 CPUs) and stops it; prints the job's own seconds.
NOOP_JOB = """
import json, logging, sys, time
import ray, ray.data
address, items, blocks = sys.argv[1] or None, int(sys.argv[2]), int(sys.argv[3])
quiet = dict(logging_level=logging.WARNING, log_to_driver=False)
if address:
    ray.init(address=address, **quiet)
else:
    ray.init(address="local", num_cpus=2, include_dashboard=False, **quiet)
ray.data.DataContext.get_current().enable_progress_bars = False
class Nothing:
    def __call__(self, batch):
        return {"n": [len(batch["i"])]}
t = time.perf_counter()
ds = ray.data.from_items([{"i": i} for i in range(items)], override_num_blocks=blocks)
ds = ds.map_batches(Nothing, batch_size=None, num_cpus=1,
                    compute=ray.data.ActorPoolStrategy(size=2, max_tasks_in_flight_per_actor=2))
done = sum(int(r["n"]) for r in ds.iter_rows())
job = time.perf_counter() - t
ray.shutdown()
print(json.dumps({"rows": done, "job_seconds": round(job, 2)}))
"""


def run_noop(address: str | None, items: int, blocks: int) -> dict:
    """:data:`NOOP_JOB` in a fresh process: seconds from its start to its exit, and the job's own."""
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", NOOP_JOB, address or "", str(items), str(blocks)], capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    out = json.loads(lines[-1]) if lines else {"stderr_tail": res.stderr[-800:]}
    return {"exit_code": res.returncode, "seconds": round(wall, 2), **out}


@contextlib.contextmanager
def running_ray():
    """A Ray with 2 CPUs started in this process for a while, as a running cluster: yields its address."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(SHARED / "train-test-data.zip"), help="the Udacity zip")
    ap.add_argument("--samples", default=str(SHARED / "samples"), help="folder of sample photos (*.jpg)")
    ap.add_argument("--copies", type=int, default=20, help="copies of each sample photo")
    ap.add_argument("--w300", default=str(SHARED / "300w"), help="folder searched for *.jpg (the longer job)")
    ap.add_argument("--runs", type=int, default=2, help="runs of each command (the best is kept)")
    ap.add_argument("--out", default=str(RESULTS / "ray_engine.json"))
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. what else ran)")
    args = ap.parse_args(argv)

    import ray

    from facekeypoints.cpus import available_cpus

    load_before = os.getloadavg()
    busy_before = busy_processes()
    sets: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = {
            "udacity_test": (tmp / "udacity", extract_udacity(Path(args.data), tmp / "udacity")),
            "samples": (tmp / "samples", copy_samples(Path(args.samples), tmp / "samples", args.copies)),
        }
        if Path(args.w300).is_dir():
            folders["300w_photos"] = (tmp / "300w", copy_tree_jpgs(Path(args.w300), tmp / "300w"))
        warmup = tmp / "warmup"
        warmup.mkdir()
        for photo in sorted(folders["udacity_test"][0].iterdir())[:8]:
            shutil.copy(photo, warmup / photo.name)
        for name, (folder, n) in folders.items():
            ways = ("local --workers 2", "ray (starts its own)", "ray (joins a running cluster)")
            runs: dict[str, list[dict]] = {way: [] for way in ways}
            for k in range(args.runs):
                for i, way in enumerate(ways):
                    out = tmp / f"{name}-{k}-{i}"
                    out.mkdir()
                    if i == 0:
                        row = run_local(folder, out)
                    elif i == 1:
                        row = run_ray(folder, out, None)
                    else:  # a Ray started here (only for these runs), joined by the command
                        with running_ray() as address:
                            # a first, untimed job, as a running cluster has had: Ray Data's own helper
                            # actors (stats, autoscaling coordinator) start with the first job on a cluster
                            run_ray(warmup, out / "warmup", address)
                            row = run_ray(folder, out, address)
                    runs[way].append(row)
                    print(name, way, {k2: v for k2, v in row.items() if not k2.startswith("_")}, flush=True)
                    shutil.rmtree(out)
            local = best(runs[ways[0]])
            entry: dict = {"images": n, "ways": {}}
            for way, rows in runs.items():
                b = best(rows)
                entry["ways"][way] = {
                    **{k2: v for k2, v in b.items() if not k2.startswith("_")},
                    "all_runs_seconds": [r["seconds"] for r in rows],
                }
                if way != ways[0]:
                    entry["ways"][way]["ratio_to_local"] = round(b["images_per_s"] / local["images_per_s"], 3)
                    if b.get("job_images_per_s"):
                        entry["ways"][way]["job_ratio_to_local"] = round(
                            b["job_images_per_s"] / local["images_per_s"], 3
                        )
                    entry["ways"][way]["records_equal_local"] = b["_records"] == local["_records"]
            sets[name] = entry

    # The floor: the same shape of Ray Data job doing nothing (770 rows in as many blocks as detect --engine ray
    # cuts the Udacity photos into), starting its own Ray and joining a running one, best of --runs
    from facekeypoints.ray_engine import batch_count

    blocks = batch_count(770, 2, 256)
    floor: dict = {"rows": 770, "blocks": blocks, "ways": {}}
    for way in ("starts its own", "joins a running cluster"):
        rows = []
        for _ in range(args.runs):
            if way == "starts its own":
                rows.append(run_noop(None, 770, blocks))
                continue
            with running_ray() as address:
                run_noop(address, 8, 1)  # Ray Data's helper actors start with a cluster's first job
                rows.append(run_noop(address, 770, blocks))
        floor["ways"][way] = {**best(rows), "all_runs_seconds": [r["seconds"] for r in rows]}
        print("ray data, nothing to do:", way, floor["ways"][way], flush=True)

    result = {
        "bench": "bench/ray_engine.py",
        "what": "images/s of facekeypoints detect --engine ray against the local engine's --workers 2, "
        "each command timed from its start to its exit in a fresh process (model loads and Ray's start "
        "included); job_images_per_s: the Ray job's own rate once Ray is up, from its summary line",
        "sets": sets,
        "ray_data_doing_nothing": floor,
        "sample_copies": args.copies,
        "runs": args.runs,
        "machine": {
            "cpus_available": available_cpus(),
            "python": platform.python_version(),
            "ray": ray.__version__,
            "platform": platform.platform(),
        },
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "busiest_processes_before": busy_before,
        "note": args.note,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
