"""End to end, face detection + 68 landmarks: ours against dlib's HOG detector + predictor, in one run.

    python bench/end_to_end.py [--data /work/data] [--samples ../shared/data/samples] [--out bench/results]

1. Accuracy on the 770 Udacity test faces under the "detector" protocol (faces found by
   the detector, matched to the truth by IoU >= 0.3): detection rate, NME_io mean and
   median over the matched faces, FR@0.10. Ours with its default face detector, both
   with the second pass (``refine``) and without it (the calibrated box alone), the same
   for Haar, and dlib (HOG detector upsampling once, as in ``bench/compare.py``, + its
   68-point predictor). Ours under the "gt" protocol gives the landmark model's own floor.
2. Faces counted on the sample photos (obamas.jpg: 2, the_beatles.jpg: 4) at full size,
   x0.5 and x0.25, and on pictures without a face made here (blank, noise, gradient).
3. Latency of one 640x480 photo with one face (matplotlib's Grace Hopper scaled onto a
   640x480 canvas), detection + landmarks, one thread: median of many runs, ours and
   dlib (HOG at upsample 0, dlib's fastest and the usual speed reference, and at
   upsample 1, the setting of the accuracy rows), and the ratio.

Prints a markdown table and writes ``end_to_end.json`` and ``end_to_end.md`` into --out.
Bench-only dependencies: ``pip install dlib-bin face-recognition-models``.
"""

from __future__ import annotations

import os

# One thread for everything timed here: set before ONNX Runtime, OpenMP (the YuNet
# detector's) or dlib start their thread pools.
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

from facekeypoints.commands.evaluate import evaluate_dataset  # noqa: E402
from facekeypoints.data import UdacityDataset  # noqa: E402
from facekeypoints.detectors import DEFAULT_DETECTOR, BoxCalibration  # noqa: E402
from facekeypoints.image_io import load_image  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import DlibLandmarker  # noqa: E402

SAMPLE_COUNTS = {"obamas.jpg": 2, "the_beatles.jpg": 4}
SCALES = (1.0, 0.5, 0.25)


def grace_on_canvas(width: int = 640, height: int = 480) -> np.ndarray:
    """matplotlib's Grace Hopper portrait scaled to the canvas height, centred on a grey 640x480 canvas."""
    from matplotlib import cbook

    grace = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    s = height / grace.shape[0]
    small = cv2.resize(grace, (round(grace.shape[1] * s), height), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8)
    x0 = (width - small.shape[1]) // 2
    canvas[:, x0 : x0 + small.shape[1]] = small
    return canvas


def no_face_pictures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    h, w = 480, 640
    x = np.broadcast_to(np.linspace(0, 255, w, dtype=np.float32)[None, :], (h, w))
    y = np.broadcast_to(np.linspace(0, 255, h, dtype=np.float32)[:, None], (h, w))
    return {
        "blank": np.full((h, w, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "gradient": np.dstack([x, y, 255 - x]).astype(np.uint8),
    }


class DlibEndToEnd(DlibLandmarker):
    """dlib's HOG detector (upsampling ``upsample`` times) + its 68-point predictor."""

    def __init__(self, upsample: int = 1):
        super().__init__(BoxCalibration())
        self.upsample = upsample

    def detect(self, rgb):
        rects = self.hog(rgb, self.upsample)
        return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4)


def accuracy_row(name: str, pipeline, samples, protocol: str = "detector", **info) -> dict:
    t = time.perf_counter()
    rep, _ = evaluate_dataset(pipeline, samples, protocol)
    elapsed = time.perf_counter() - t
    return {
        "name": name,
        "protocol": protocol,
        **info,
        "detection_rate": rep.get("detection_rate"),
        "n_faces": rep["n_faces"],
        "n_matched": rep.get("n_matched", rep["n_faces"]),
        "nme_mean": rep["nme_mean"],
        "nme_median": rep["nme_median"],
        "fr_10": rep["fr_10"],
        "auc_10": rep["auc_10"],
        "n_unmatched_detections": rep.get("n_unmatched_detections"),
        "ms_per_image": round(1000 * elapsed / max(1, len(samples)), 2),
    }


def count_faces(fn, rgb: np.ndarray) -> int:
    return len(fn(rgb))


def latency_ms(fn, rgb: np.ndarray, runs: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        fn(rgb)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(rgb)
        times.append(1000 * (time.perf_counter() - t))
    return {"median": round(float(np.median(times)), 3), "min": round(float(np.min(times)), 3), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/data", help="Udacity zip or extracted folder")
    ap.add_argument("--samples", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"))
    ap.add_argument("--model", default=None, help="our ONNX model (default: bundled)")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--runs", type=int, default=100, help="timed runs per latency measurement")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test faces (quick check)")
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    args = ap.parse_args(argv)

    test = UdacityDataset(args.data).load("test")
    if args.limit:
        test = test[: args.limit]

    ours = FaceKeypointDetector(args.model, threads=1, convention="udacity")  # the defaults: detector and refine
    default_refine = ours.refine
    ours_name = f"facekeypoints {ours.model.name} + {DEFAULT_DETECTOR}"
    dlib = None if args.no_dlib else DlibEndToEnd(upsample=1)

    # 1. accuracy on the test faces
    rows = [accuracy_row(f"{ours_name} (default)", ours, test, detector=DEFAULT_DETECTOR, refine=default_refine)]
    for det in dict.fromkeys([DEFAULT_DETECTOR, "haar"]):
        for refine in (True, False):
            if det == DEFAULT_DETECTOR and refine == default_refine:
                continue
            fk = FaceKeypointDetector(args.model, detector=det, refine=refine, threads=1, convention="udacity")
            label = "refine + flip" if refine else "single pass + flip, calibrated box"
            rows.append(accuracy_row(f"facekeypoints + {det}, {label}", fk, test, detector=det, refine=refine))
    no_flip = FaceKeypointDetector(args.model, refine=default_refine, flip=False, threads=1, convention="udacity")
    rows.append(
        accuracy_row(
            f"facekeypoints + {DEFAULT_DETECTOR}, default without flip",
            no_flip,
            test,
            detector=DEFAULT_DETECTOR,
            refine=default_refine,
        )
    )
    rows.append(
        accuracy_row(
            "facekeypoints, gt boxes (landmark model alone)",
            FaceKeypointDetector(args.model, refine=False, flip=False, threads=1, convention="udacity"),
            test,
            protocol="gt",
            detector=None,
            refine=False,
        )
    )
    if dlib is not None:
        rows.append(accuracy_row("dlib HOG (upsample 1) + 68-point predictor", dlib, test, detector="dlib-hog"))

    # 2. faces counted on multi-face photos and on pictures without a face
    counts = []
    samples = Path(args.samples)
    for photo, expected in SAMPLE_COUNTS.items():
        path = samples / photo
        if not path.is_file():
            print(f"skipping {path}: not found", file=sys.stderr)
            continue
        full = load_image(path)
        for scale in SCALES:
            rgb = full if scale == 1.0 else cv2.resize(full, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            row = {"picture": photo, "scale": scale, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", "expected": expected}
            row["ours"] = count_faces(ours, rgb)
            if dlib is not None:
                row["dlib"] = count_faces(dlib, rgb)
            counts.append(row)
    for name, rgb in no_face_pictures().items():
        row = {"picture": f"{name} (made here)", "scale": 1.0, "size": "640x480", "expected": 0}
        row["ours"] = count_faces(ours, rgb)
        if dlib is not None:
            row["dlib"] = count_faces(dlib, rgb)
        counts.append(row)

    # 3. latency: one 640x480 photo, one face, one thread
    canvas = grace_on_canvas()
    latency = {"picture": "grace_hopper.jpg scaled onto a 640x480 canvas", "threads": 1}
    assert len(ours(canvas)) == 1, "our pipeline should find Grace Hopper"
    latency["ours"] = latency_ms(ours, canvas, args.runs)
    latency["ours_detector_only"] = latency_ms(ours.detector.detect, canvas, args.runs)
    if dlib is not None:
        dlib0 = DlibEndToEnd(upsample=0)
        assert len(dlib0(canvas)) == 1, "dlib should find Grace Hopper"
        latency["dlib_upsample0"] = latency_ms(dlib0, canvas, args.runs)
        latency["dlib_upsample1"] = latency_ms(dlib, canvas, max(10, args.runs // 4))
        latency["ratio_ours_over_dlib_upsample0"] = round(
            latency["ours"]["median"] / latency["dlib_upsample0"]["median"], 3
        )
        latency["ratio_ours_over_dlib_upsample1"] = round(
            latency["ours"]["median"] / latency["dlib_upsample1"]["median"], 3
        )

    result = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "note": args.note,
        "model": ours.model_info(),
        "accuracy": rows,
        "counts": counts,
        "latency": latency,
    }
    text = format_markdown(result)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "end_to_end.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "end_to_end.md").write_text(text + "\n")
    return 0


def format_markdown(result: dict) -> str:
    def num(v, fmt=".2f"):
        return "" if v is None else format(v, fmt)

    lines = [
        f"Udacity test faces ({result['accuracy'][0]['n_faces']}), detector protocol (IoU >= 0.3), "
        "NME_io of the matched faces",
        "",
        "| pipeline | detection % | NME_io mean % | median % | FR@0.10 % | other detections | ms/image |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["accuracy"]:
        det = "(gt boxes)" if r["protocol"] == "gt" else num(r["detection_rate"])
        lines.append(
            f"| {r['name']} | {det} | {num(r['nme_mean'])} | {num(r['nme_median'])} | {num(r['fr_10'])} | "
            f"{'' if r['n_unmatched_detections'] is None else r['n_unmatched_detections']} | {r['ms_per_image']} |"
        )
    has_dlib = any("dlib" in c for c in result["counts"])
    lines += ["", "Faces found", ""]
    lines.append("| picture | size | expected | ours |" + (" dlib |" if has_dlib else ""))
    lines.append("|---|---|---|---|" + ("---|" if has_dlib else ""))
    for c in result["counts"]:
        lines.append(
            f"| {c['picture']} x{c['scale']:g} | {c['size']} | {c['expected']} | {c['ours']} |"
            + (f" {c.get('dlib', '')} |" if has_dlib else "")
        )
    lat = result["latency"]
    lines += ["", f"Latency, {lat['picture']}, detection + landmarks, one thread (median of runs, ms)", ""]
    lines.append("| pipeline | median ms | min ms |")
    lines.append("|---|---|---|")
    names = {
        "ours": "facekeypoints (default detector + landmarks)",
        "ours_detector_only": "  of which face detection",
        "dlib_upsample0": "dlib HOG (upsample 0) + predictor",
        "dlib_upsample1": "dlib HOG (upsample 1) + predictor",
    }
    for key, label in names.items():
        if key in lat:
            lines.append(f"| {label} | {lat[key]['median']:.1f} | {lat[key]['min']:.1f} |")
    if "ratio_ours_over_dlib_upsample0" in lat:
        lines.append("")
        lines.append(
            f"Ratio ours / dlib: {lat['ratio_ours_over_dlib_upsample0']:.2f} (HOG upsample 0), "
            f"{lat['ratio_ours_over_dlib_upsample1']:.2f} (upsample 1); below 1 means we are faster."
        )
    if result.get("note"):
        lines += ["", f"Note: {result['note']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
