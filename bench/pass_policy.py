"""Which model passes the default pipeline needs: accuracy against model runs per face.

On the faces a training run held out (300-W photos held out by ``split_by_group``, Udacity
people held out by ``train_val_split``; never a test set), each face is found by the default
face detector as a user's photo would be, then read every way the pipeline can: the first pass
alone, with its mirrored read, with the second pass (with and without the mirrored read). A
policy that takes the second pass only for faces whose first reading's raw score is under a
threshold is then scored for a range of thresholds: mean NME_io (iBUG convention for 300-W,
Udacity's for Udacity faces, each in its model's own convention) and model runs per face.
Writes ``results/pass_policy.json``.

    python bench/pass_policy.py --run runs/v7/1 --model M.onnx
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from facekeypoints import evaluation, quality
from facekeypoints.evaluation import iou
from facekeypoints.geometry import box_crop_matrix, keypoint_box
from facekeypoints.pipeline import FaceKeypointDetector
from facekeypoints.training.config import TrainConfig
from facekeypoints.training.data import load_sources

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", default=None, help="the run's exported .onnx (default: the bundled model)")
    ap.add_argument("--out", default=str(RESULTS / "pass_policy.json"))
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    det = FaceKeypointDetector(args.model, threads=1, convention="ibug")
    model = det.model
    rule, size = model.crop_rule, model.input_size
    rows = {k: [] for k in ["first", "first_flip", "second", "second_flip"]}
    raw1, kinds, missed = [], [], 0
    for src, _, val in load_sources(cfg):
        for s in val:
            boxes, _ = det.detector.detect(s.image)
            truth_box = keypoint_box(s.keypoints)
            if len(boxes) == 0:
                missed += 1
                continue
            kb = det.detector.to_keypoint_box(boxes)
            box = kb[int(np.argmax([iou(b, truth_box) for b in kb]))]
            m = [box_crop_matrix(box, rule, size)]
            k1, s1 = det._predict(s.image, m)
            k1f, _ = det._predict(s.image, m, flip=True)
            saved_flip = det.flip
            det.flip = False
            k2, _ = det._refined(s.image, k1, s1)
            det.flip = True
            k2f, _ = det._refined(s.image, k1, s1)
            det.flip = saved_flip
            for name, k in zip(rows, [k1, k1f, k2, k2f]):
                rows[name].append(float(evaluation.nme_io(k[0], s.keypoints)[0]))
            raw1.append(float(quality.raw_score(s1[0])))
            kinds.append(src.kind)
    nme = {k: np.array(v) for k, v in rows.items()}
    raw1, kinds = np.array(raw1), np.array(kinds)
    report: dict = {"model": model.name, "version": model.version, "faces": len(raw1), "missed_by_detector": missed}
    for kind in sorted(set(kinds)):
        sel = kinds == kind
        report[kind] = {k: round(float(v[sel].mean() * 100), 3) for k, v in nme.items()}
        report[kind]["faces"] = int(sel.sum())
        report[kind]["over_10"] = {k: int((v[sel] > 0.10).sum()) for k, v in nme.items()}
        pol = []
        z = quality.evidence(raw1[sel])
        for share in [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]:
            # the least sure ``share`` of faces get the extra reading
            go = z < np.quantile(z, share) if share < 1 else np.ones(len(z), bool)
            for base, extra, cost in [
                ("first", "second", 1),
                ("first", "second_flip", 2),
                ("second", "second_flip", 1),
                ("first", "first_flip", 1),
            ]:
                e = np.where(go, nme[extra][sel], nme[base][sel])
                runs = {"first": 1, "second": 2}[base] + go.mean() * cost
                pol.append(
                    {
                        "least_sure_share": share,
                        "otherwise": base,
                        "least_sure_get": extra,
                        "runs_per_face": round(float(runs), 3),
                        "nme": round(float(e.mean() * 100), 3),
                        "over_10": int((e > 0.10).sum()),
                    }
                )
        report[kind]["policies"] = pol
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
