"""Accuracy and speed of our landmark models against dlib, side by side in one run.

    python bench/compare.py --data PATH/train-test-data.zip [--seed-model seed.onnx] [--out bench/results]

Accuracy: the 770 Udacity test faces under the "gt" box protocol (boxes from the
ground-truth keypoints; dlib gets those boxes mapped to its own detector's box
convention by a fit on the *training* faces) and dlib end to end with its HOG
detector (faces matched by IoU >= 0.3). Speed: the landmark model alone, batch 1,
one thread (ONNX Runtime for ours, dlib's shape predictor for dlib), per face.

Bench-only dependencies: ``pip install dlib-bin face-recognition-models``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from facekeypoints.commands.evaluate import evaluate_dataset
from facekeypoints.data import UdacityDataset
from facekeypoints.detectors.base import BoxCalibration, box_iou
from facekeypoints.geometry import box_crop_matrix, keypoint_box, warp
from facekeypoints.pipeline import Face, FaceKeypointDetector
from facekeypoints.runtime import KeypointModel


def dlib_models():
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        raise SystemExit("pip install face-recognition-models (bench only) for dlib's 68-point predictor")
    path = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


class DlibLandmarker:
    """dlib's HOG detector + 68-point predictor behind the evaluate_dataset interface."""

    def __init__(self, calibration: BoxCalibration):
        self.dlib, self.hog, self.predictor = dlib_models()
        self.calibration = calibration  # dlib box -> keypoint box

    def _rect(self, box):
        x0, y0, x1, y1 = [int(round(v)) for v in box]
        return self.dlib.rectangle(x0, y0, x1, y1)

    def _shape(self, rgb, box) -> np.ndarray:
        s = self.predictor(rgb, self._rect(box))
        return np.array([[p.x, p.y] for p in s.parts()], np.float32)

    def keypoints(self, rgb, boxes, box: str = "landmarks"):
        # boxes are tight keypoint boxes (evaluate_dataset's "gt" protocol passes box="landmarks")
        if box != "landmarks":
            raise ValueError(f"DlibLandmarker takes keypoint boxes only, got box={box!r}")
        # invert the calibration: keypoint box -> the box dlib's predictor was trained on
        out = []
        for b in np.asarray(boxes, np.float64).reshape(-1, 4):
            c = self.calibration
            kw, kh = b[2] - b[0], b[3] - b[1]
            side = (kw / c.sx + kh / c.sy) / 2.0
            cx = (b[0] + b[2]) / 2 - c.dx * side
            cy = (b[1] + b[3]) / 2 - c.dy * side
            out.append(self._shape(rgb, [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))
        return np.stack(out)

    def detect(self, rgb):
        rects = self.hog(rgb, 1)
        return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4)

    def __call__(self, rgb):
        return [Face(b, 1.0, self._shape(rgb, b)) for b in self.detect(rgb)]


def fit_dlib_calibration(dl: DlibLandmarker, samples) -> BoxCalibration:
    det, kp = [], []
    for s in samples:
        boxes = dl.detect(s.image)
        if len(boxes) == 0:
            continue
        gt = keypoint_box(s.keypoints)
        iou = box_iou(boxes, gt[None])[:, 0]
        if iou.max() >= 0.3:
            det.append(boxes[iou.argmax()])
            kp.append(gt)
    return BoxCalibration.fit(np.array(det), np.array(kp))


def speed_ours(model_path, samples, repeats=3) -> float:
    """ms per face: ONNX Runtime, one thread, batch 1, crops cut beforehand."""
    rt = KeypointModel(model_path, threads=1)
    crops = [
        warp(s.image, box_crop_matrix(keypoint_box(s.keypoints), rt.crop_rule, rt.input_size), rt.input_size)[None]
        for s in samples
    ]
    for c in crops[:50]:
        rt.predict(c)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for c in crops:
            rt.predict(c)
        best = min(best, (time.perf_counter() - t) / len(crops))
    return best * 1000


def speed_dlib(dl: DlibLandmarker, samples, repeats=3) -> float:
    """ms per face: dlib's shape predictor on a given box (one core)."""
    jobs = [(s.image, dl._rect(keypoint_box(s.keypoints))) for s in samples]
    for img, r in jobs[:50]:
        dl.predictor(img, r)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for img, r in jobs:
            dl.predictor(img, r)
        best = min(best, (time.perf_counter() - t) / len(jobs))
    return best * 1000


def row(name, rep):
    return {
        "name": name,
        "protocol": rep["protocol"],
        "nme_mean": rep["nme_mean"],
        "nme_median": rep["nme_median"],
        "fr_10": rep["fr_10"],
        "auc_10": rep["auc_10"],
        "fr_08": rep["fr_08"],
        "auc_08": rep["auc_08"],
        "detection_rate": rep.get("detection_rate"),
        "n_faces": rep["n_faces"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="Udacity zip or folder")
    ap.add_argument("--model", default=None, help="our ONNX model (default: bundled)")
    ap.add_argument("--seed-model", default=None, help="exported 'seed' baseline ONNX, evaluated the same way")
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ds = UdacityDataset(args.data)
    test = ds.load("test")
    rows, speed = [], {}
    ours = FaceKeypointDetector(
        args.model, refine=False, flip=False, threads=1, convention="udacity"
    )  # the model alone
    rep, errs_ours = evaluate_dataset(ours, test, "gt")
    rows.append(row(f"facekeypoints {ours.model.name}", rep))
    curves = {"facekeypoints": errs_ours}
    e2e = FaceKeypointDetector(args.model, refine=True, threads=1, convention="udacity")
    rep, _ = evaluate_dataset(e2e, test, "detector")
    rows.append(row(f"facekeypoints {ours.model.name} + {e2e.model_info()['detector']} detector, refine + flip", rep))
    speed["facekeypoints_ms_per_face"] = round(speed_ours(args.model, test), 4)
    if args.seed_model:
        seed = FaceKeypointDetector(args.seed_model, refine=False, flip=False, threads=1, convention="udacity")
        rep, errs_seed = evaluate_dataset(seed, test, "gt")
        rows.append(row("seed baseline (Udacity-style CNN)", rep))
        curves["seed baseline"] = errs_seed
        speed["seed_ms_per_face"] = round(speed_ours(args.seed_model, test[:200]), 4)
    if not args.no_dlib:
        dl = DlibLandmarker(BoxCalibration())
        dl.calibration = fit_dlib_calibration(dl, ds.load("training"))
        rep, errs_dlib = evaluate_dataset(dl, test, "gt")
        rows.append(row("dlib 68-point predictor", rep))
        curves["dlib (gt boxes)"] = errs_dlib
        rep, _ = evaluate_dataset(dl, test, "detector")
        rows.append(row("dlib HOG + 68-point predictor", rep))
        speed["dlib_ms_per_face"] = round(speed_dlib(dl, test), 4)
        speed["ratio_ours_over_dlib"] = round(speed["facekeypoints_ms_per_face"] / speed["dlib_ms_per_face"], 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from facekeypoints.evaluation import plot_ced

    plot_ced(
        {k: v[np.isfinite(v)] for k, v in curves.items()},
        out / "ced_test_gt.png",
        title="Udacity test faces (770), gt boxes",
    )
    result = {"machine": platform.processor() or platform.machine(), "rows": rows, "speed": speed}
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "| model | protocol | NME_io mean % | median % | FR@0.10 % | AUC@0.10 % | detection % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        det = "" if r["detection_rate"] is None else f"{r['detection_rate']:.1f}"
        lines.append(
            f"| {r['name']} | {r['protocol']} | {r['nme_mean']:.2f} | {r['nme_median']:.2f} | "
            f"{r['fr_10']:.2f} | {r['auc_10']:.1f} | {det} |"
        )
    lines.append("")
    lines.append(
        "Speed (landmark model alone, batch 1, one thread): " + ", ".join(f"{k} = {v}" for k, v in speed.items())
    )
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
