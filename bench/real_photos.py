"""Real photos of new people: us against dlib on 300-W's common test faces, in one run.

Four rows on ``--data`` (default ``../shared/data/300w/common``, 554 faces with human iBUG
68-point truth), every number in the iBUG 300-W convention and NME_io (outer eye corners):

* ours end to end: ``FaceKeypointDetector()`` as a user runs it (default detector, both passes,
  test-time flip, rescue), faces matched to the truth by IoU;
* dlib end to end: its HOG detector + 68-point predictor;
* ours from the true box: the same pipeline fed the tight box of the true points;
* dlib from the true box: its predictor fed that box mapped to its own box convention (a fit
  on ``--train`` faces, never on the test faces).

Optional ``--also NAME=MODEL.onnx`` rows (for instance the previous bundled model) run the same
pipeline with another model. Writes ``results/real_photos.{json,md}``, per-face errors in
``results/real_photos_faces.csv`` and the CED curves of every row in ``results/ced_real_photos.png``.
Bench-only dependencies: ``pip install dlib-bin face-recognition-models``. 300-W's images and
annotations are for research use only.

    python bench/real_photos.py [--data DIR] [--train DIR] [--model M.onnx] [--also v6=OLD.onnx]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from facekeypoints import evaluation  # noqa: E402
from facekeypoints.commands.evaluate import evaluate_dataset  # noqa: E402
from facekeypoints.data.pts import PtsDataset  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import DlibLandmarker, fit_dlib_calibration  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def summary(name: str, report: dict, errors: np.ndarray, seconds: float, qualities=None) -> dict:
    found = errors[np.isfinite(errors)]
    row = {
        "name": name,
        "protocol": report["protocol"],
        "n_faces": int(len(errors)),
        "n_found": int(len(found)),
        "nme_mean": report["nme_mean"],
        "nme_median": report["nme_median"],
        "fr_10": report["fr_10"],
        "auc_10": report["auc_10"],
        "over_10": int((found > 0.10).sum()),
        "worst": round(100 * float(found.max()), 3) if len(found) else None,
        "groups": report["groups"],  # mean NME per landmark group, over the faces this row found
        "seconds": round(seconds, 1),
    }
    if "quality" in report:
        row["quality_roc_auc"] = report["quality"]["roc_auc_good_vs_failed"]
    return row


def run(name, detector, samples, protocol, rows, curves, per_face):
    t = time.perf_counter()
    qualities: list[float] = []
    report, errors = evaluate_dataset(detector, samples, protocol, qualities_out=qualities)
    rows.append(summary(name, report, errors, time.perf_counter() - t))
    curves[name] = errors[np.isfinite(errors)]
    per_face[name] = errors
    print(
        f"{name:32s} {rows[-1]['nme_mean']:.3f} % found {rows[-1]['n_found']}/{rows[-1]['n_faces']} "
        f"over 10 %: {rows[-1]['over_10']}",
        file=sys.stderr,
    )


def table(rows: list[dict]) -> str:
    head = (
        "| | faces found | NME_io mean | median | FR@0.10 | AUC@0.10 | faces over 10 % | worst |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['name']} | {r['n_found']}/{r['n_faces']} | {r['nme_mean']:.2f} % | {r['nme_median']:.2f} % | "
        f"{r['fr_10']:.2f} % | {r['auc_10']:.1f} % | {r['over_10']} | {r['worst']:.1f} % |\n"
        for r in rows
    )
    return head + body


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/300w/common")
    ap.add_argument("--train", default="../shared/data/300w/train", help="faces to fit dlib's box convention on")
    ap.add_argument("--model", default=None, help="our model (default: the bundled one)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=MODEL.onnx")
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces (a quick try; not for the record)")
    args = ap.parse_args(argv)

    samples = PtsDataset(args.data).load()
    if args.limit:
        samples = samples[: args.limit]
    names = [s.name for s in samples]
    rows: list[dict] = []
    curves: dict[str, np.ndarray] = {}
    per_face: dict[str, np.ndarray] = {}
    ours = FaceKeypointDetector(args.model, threads=1)
    run("ours, end to end", ours, samples, "detector", rows, curves, per_face)
    dl = None
    if not args.no_dlib:
        train = PtsDataset(args.train).load()
        dl = DlibLandmarker(None)
        dl.calibration = fit_dlib_calibration(dl, train)
        run("dlib, end to end (HOG)", dl, samples, "detector", rows, curves, per_face)
    run("ours, true box", ours, samples, "gt", rows, curves, per_face)
    if dl is not None:
        run("dlib, true box", dl, samples, "gt", rows, curves, per_face)
    for spec in args.also:
        label, _, path = spec.partition("=")
        other = FaceKeypointDetector(path, threads=1)
        run(f"{label}, end to end", other, samples, "detector", rows, curves, per_face)
        run(f"{label}, true box", other, samples, "gt", rows, curves, per_face)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "data": str(args.data),
        "faces": len(samples),
        "model": ours.model_info(),
        "convention": "ibug",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, one thread each",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python bench/real_photos.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    (out / "real_photos.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    md = (
        f"# Real photos: {meta['data']} ({len(samples)} faces), iBUG 300-W convention, NME_io\n\n"
        f"Model: {meta['model']['name']} v{meta['model']['version']}. {meta['date']}, {meta['machine']}. "
        f"Command: `{meta['command']}`\n\n" + table(rows)
    )
    (out / "real_photos.md").write_text(md)
    cols = list(per_face)
    lines = ["name," + ",".join(c.replace(",", "") for c in cols)]
    for i, n in enumerate(names):
        lines.append(
            n + "," + ",".join("" if not np.isfinite(per_face[c][i]) else f"{100 * per_face[c][i]:.3f}" for c in cols)
        )
    (out / "real_photos_faces.csv").write_text("\n".join(lines) + "\n")
    evaluation.plot_ced(
        curves, out / "ced_real_photos.png", title=f"CED, {Path(args.data).name} ({len(samples)} faces)"
    )
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
