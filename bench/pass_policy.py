"""Which model passes the default pipeline needs: accuracy against model runs per face.

On the faces a training run held out (300-W photos held out by ``split_by_group``, Udacity
people held out by ``train_val_split``; never a test set), each face is found by the default
face detector as a user's photo would be, then read every way the pipeline can: the first pass
alone, with its mirrored read, with the second pass (with and without the mirrored read). A
policy that takes the second pass only for faces whose first reading's raw score is under a
threshold is then scored for a range of thresholds: mean NME_io (iBUG convention for 300-W,
Udacity's for Udacity faces, each in its model's own convention) and model runs per face.
The ``second*`` rows are the second pass's own reading (``quality.FIRST_PASS_WEIGHT`` = 0);
``*_mixed_W`` rows mix a share W of the first reading into it where the two agree, as the pipeline
does with ``quality.FIRST_PASS_WEIGHT`` = W (``_ungated``: everywhere). ``disturbed_boxes`` reads every
face again from deliberately bad boxes: the mixing must not pull a corrected answer back to a wrong
first pass.
Writes ``results/pass_policy.json``.

    python bench/pass_policy.py --run runs/v7/1 --model M.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from facekeypoints import evaluation, quality
from facekeypoints.evaluation import iou
from facekeypoints.geometry import box_crop_matrix, keypoint_box
from facekeypoints.pipeline import FaceKeypointDetector
from facekeypoints.training.config import TrainConfig
from facekeypoints.training.data import load_sources

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_calibration import disturbed_boxes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: Shares of the first reading mixed into a kept second pass (quality.FIRST_PASS_WEIGHT) to score.
MIX_WEIGHTS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
#: Agreement gates (quality.FIRST_PASS_AGREEMENT) scored on readings from disturbed boxes (inf: none).
DISTURBED_GATES = (0.03, 0.05, 0.08, 0.12, np.inf)


def second_pass(det: FaceKeypointDetector, image, k1, s1, flip: bool) -> np.ndarray:
    """The pipeline's second pass from ``k1``, its own reading (the first where the margin drops it), unmixed."""
    saved = det.flip, quality.FIRST_PASS_WEIGHT
    det.flip, quality.FIRST_PASS_WEIGHT = flip, 0.0
    try:
        return det._refined(image, k1, s1)[0]
    finally:
        det.flip, quality.FIRST_PASS_WEIGHT = saved


def mixed_reading(k1: np.ndarray, k2: np.ndarray, weight: float, gate: float) -> np.ndarray:
    """What the pipeline answers with ``quality.FIRST_PASS_WEIGHT = weight``, ``FIRST_PASS_AGREEMENT = gate``."""
    saved = quality.FIRST_PASS_WEIGHT, quality.FIRST_PASS_AGREEMENT
    quality.FIRST_PASS_WEIGHT, quality.FIRST_PASS_AGREEMENT = weight, gate
    try:
        return quality.mix_first_pass(k1, k2)
    finally:
        quality.FIRST_PASS_WEIGHT, quality.FIRST_PASS_AGREEMENT = saved


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
    rows: dict[str, list[float]] = defaultdict(list)
    disturbed: dict[str, list[float]] = defaultdict(list)
    raw1, kinds, missed = [], [], 0
    rng = np.random.default_rng(0)
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
            k2, k2f = second_pass(det, s.image, k1, s1, False), second_pass(det, s.image, k1, s1, True)
            for name, k in zip(["first", "first_flip", "second", "second_flip"], [k1, k1f, k2, k2f]):
                rows[name].append(float(evaluation.nme_io(k[0], s.keypoints)[0]))
            for w in MIX_WEIGHTS:  # what the pipeline answers with quality.FIRST_PASS_WEIGHT = w
                for name, k in [("second", k2), ("second_flip", k2f)]:
                    for gate, suffix in [(quality.FIRST_PASS_AGREEMENT, ""), (np.inf, "_ungated")]:
                        mixed = mixed_reading(k1, k, w, gate)
                        rows[f"{name}_mixed_{w:g}{suffix}"].append(float(evaluation.nme_io(mixed[0], s.keypoints)[0]))
            for b in disturbed_boxes(truth_box, rng):  # a wrong first pass that the second must not be pulled to
                d1, ds1 = det._predict(s.image, [box_crop_matrix(b, rule, size)])
                d2 = second_pass(det, s.image, d1, ds1, True)
                for gate in DISTURBED_GATES:
                    mixed = mixed_reading(d1, d2, quality.FIRST_PASS_WEIGHT, gate)
                    disturbed[f"mixed_gate_{gate:g}"].append(float(evaluation.nme_io(mixed[0], s.keypoints)[0]))
                disturbed["second_flip"].append(float(evaluation.nme_io(d2[0], s.keypoints)[0]))
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
    report["disturbed_boxes"] = {
        "what": "every held-out face from 3 deliberately disturbed boxes (quality_calibration.disturbed_boxes), "
        "first pass, second pass with the mirrored read, no rescue; the first reading mixed in at "
        f"quality.FIRST_PASS_WEIGHT = {quality.FIRST_PASS_WEIGHT:g} where the readings agree within the gate",
        "readings": len(disturbed["second_flip"]),
        **{
            k: {"nme": round(float(np.mean(v) * 100), 3), "over_10": int((np.array(v) > 0.10).sum())}
            for k, v in disturbed.items()
        },
    }
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
