"""The model's systematic offset per point on faces a training run held out, and whether removing it helps.

A model trained on mirrored crops learns, for each point, the average of where annotators put it and where
they put its mirror image; where the labels are not mirror-symmetric (300-W's are not quite, Udacity's even
less) every answer carries part of that difference, the same on every face. Here the default pipeline reads
the faces a training run held out (300-W photos held out by ``split_by_group``, Udacity people held out by
``train_val_split``; never a test set), found by the default face detector as a user's photo would be, and
the mean difference answer - truth is measured per point in the answer's own face frame
(:mod:`facekeypoints.conventions`: eye corners levelled, units of their distance), each point's x and y
trimmed of the 10 % of faces at either end. Tables fitted on 300-W faces, on Udacity faces and on both are
scored by 5-fold cross-fitting (each fold corrected by the table of the other four) on each set, NME_io in
the iBUG placement the model answers in. ``--write`` stores the chosen table (fitted on every held-out face)
as ``output_offset`` in the model's metadata, which the pipeline then subtracts from every answer.

    python bench/output_bias.py --run runs/v9/1 [--model M.onnx] [--table 300w|udacity|both] [--write]

Writes ``results/output_bias.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from facekeypoints import evaluation
from facekeypoints.conventions import measure_offset, shift_in_face_frame
from facekeypoints.evaluation import iou
from facekeypoints.export import update_metadata
from facekeypoints.geometry import keypoint_box
from facekeypoints.landmarks import JAW
from facekeypoints.pipeline import FaceKeypointDetector
from facekeypoints.runtime import DEFAULT_MODEL
from facekeypoints.training.config import TrainConfig
from facekeypoints.training.data import load_sources

RESULTS = Path(__file__).resolve().parent / "results"
TRIM = 0.1
FOLDS = 5


def read_matched(det: FaceKeypointDetector, rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
    """``det``'s answer (68, 2 pixels) for the face it finds in ``rgb`` whose box best overlaps the box of the true
    ``keypoints`` (IoU at least 0.3, in the detector's keypoint-box convention), or None where it finds none."""
    boxes, _ = det.detector.detect(rgb)
    truth_box = keypoint_box(keypoints)
    kb = det.detector.to_keypoint_box(boxes) if len(boxes) else boxes
    best = int(np.argmax([iou(b, truth_box) for b in kb])) if len(kb) else -1
    if best < 0 or iou(kb[best], truth_box) < 0.3:
        return None
    return det.landmarks(rgb, boxes[best : best + 1])[0][0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="the run's exported .onnx (default: bundled)")
    ap.add_argument("--table", choices=["300w", "udacity", "both"], default="both", help="the table --write stores")
    ap.add_argument("--write", action="store_true", help="store the table as output_offset in the model's metadata")
    ap.add_argument("--out", default=str(RESULTS / "output_bias.json"))
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    det = FaceKeypointDetector(args.model, threads=1, convention="ibug")
    det.model.output_offset = None  # the answers as the model gives them
    preds: dict[str, list] = {}
    truths: dict[str, list] = {}
    missed = 0
    for src, _, val in load_sources(cfg):
        kind = "300w" if src.kind == "pts" else src.kind
        for s in val:
            answer = read_matched(det, s.image, s.keypoints)
            if answer is None:
                missed += 1
                continue
            preds.setdefault(kind, []).append(answer)
            truths.setdefault(kind, []).append(s.keypoints)
    pred = {k: np.array(v, np.float64) for k, v in preds.items()}
    truth = {k: np.array(v, np.float64) for k, v in truths.items()}
    rng = np.random.default_rng(0)
    folds = {k: rng.permutation(len(v)) % FOLDS for k, v in pred.items()}

    def table_from(kinds: list[str], exclude: dict[str, int] | None = None) -> np.ndarray:
        p = np.concatenate([pred[k][folds[k] != exclude.get(k, -1)] if exclude else pred[k] for k in kinds])
        t = np.concatenate([truth[k][folds[k] != exclude.get(k, -1)] if exclude else truth[k] for k in kinds])
        return measure_offset(p, t, TRIM, frame="pred")

    choices = {"300w": ["300w"], "udacity": ["udacity"], "both": ["300w", "udacity"]}
    report: dict = {
        "model": det.model.name,
        "version": det.model.version,
        "faces": {k: len(v) for k, v in pred.items()},
        "missed_by_detector": missed,
        "what": "NME_io % (iBUG placement) of the default pipeline's answers on held-out faces; corrected by a "
        f"table fitted on the other {FOLDS - 1} of {FOLDS} folds of the named set(s)",
        "uncorrected": {k: round(float(evaluation.nme_io(pred[k], truth[k]).mean() * 100), 3) for k in pred},
    }
    for name, kinds in choices.items():
        row = {}
        for k in pred:
            out = np.empty_like(pred[k])
            for f in range(FOLDS):
                sel = folds[k] == f
                table = table_from(kinds, {k: f})
                out[sel] = shift_in_face_frame(pred[k][sel], table, sign=-1.0)
            e = evaluation.nme_io(out, truth[k])
            row[k] = round(float(e.mean() * 100), 3)
            row[f"{k}_over_10"] = int((e > 0.10).sum())
            row[f"{k}_jaw"], row[f"{k}_other_points"] = _jaw_and_rest(out, truth[k])
        report[f"corrected_by_{name}"] = row
    final = table_from(choices[args.table])
    size = np.linalg.norm(final, axis=1)
    report["table"] = {
        "fitted_on": args.table,
        "mean_shift_x_y": [round(float(v), 4) for v in final.mean(axis=0)],
        "largest_points": [int(i) for i in np.argsort(-size)[:8]],
        "largest": round(float(size.max()), 4),
        "mean_size": round(float(size.mean()), 4),
    }
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))
    if args.write:
        update_metadata(
            args.model,
            "output_offset",
            {
                "offset": [[round(float(v), 5) for v in row] for row in final],
                "frame": "each answer's own face frame (facekeypoints.conventions), units of the eye-corner distance",
                "fitted_on": f"held-out faces of {args.run} ({args.table}), default pipeline, bench/output_bias.py",
                "passes": "subtracted from the answers of the default passes (refine and flip) only",
            },
        )
        print(f"wrote output_offset into {Path(args.model).with_suffix('.json')}", file=sys.stderr)
    return 0


def _jaw_and_rest(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean point error (% of the eye-corner distance) of the 17 jaw points and of the other 51."""
    err = evaluation.point_errors(pred, truth)
    jaw = np.zeros(err.shape[1], bool)
    jaw[list(JAW)] = True
    return round(float(err[:, jaw].mean() * 100), 3), round(float(err[:, ~jaw].mean() * 100), 3)


if __name__ == "__main__":
    raise SystemExit(main())
