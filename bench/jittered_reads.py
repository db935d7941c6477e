"""More reads per face at test time: the default answer averaged with reads of jittered crops.

On the faces a training run held out (``--run``'s split; never a test set), each face is found by the
default face detector and read by the default passes (its answer before the offset table). Its last crop
(levelled and placed by that answer) is then cut again a few ways: scaled by 1.06 and 0.94, turned by
+-8 degrees, moved by 4 % of its side left, right, up and down; each is read with and without the
mirrored crop. The answer averaged with several of those reads (then less the offset table, as the
pipeline does) is scored: mean NME_io in the run's label convention (iBUG placement for both sources of
the bundled model), overall and by the default answer's quality. Extra model runs per face: one per crop,
two with the mirrored crop.

    python bench/jittered_reads.py --run runs/ftocc/1 [--model M.onnx] [--limit N]

Writes ``results/jittered_reads.json``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from facekeypoints import evaluation  # noqa: E402
from facekeypoints.conventions import convert  # noqa: E402
from facekeypoints.geometry import crop_matrix, eye_angle, rotated_keypoint_box  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402
from facekeypoints.training.config import TrainConfig  # noqa: E402
from facekeypoints.training.data import load_sources  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rolled_faces import matched  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: (scale, turn in degrees, shift across, shift down in crop sides) of each jittered crop
JITTERS = (
    (1.06, 0, 0, 0),
    (0.94, 0, 0, 0),
    (1.0, 8, 0, 0),
    (1.0, -8, 0, 0),
    (1.0, 0, 0.04, 0),
    (1.0, 0, -0.04, 0),
    (1.0, 0, 0, 0.04),
    (1.0, 0, 0, -0.04),
)

#: name -> (indices into JITTERS, with the mirrored crop); the default answer is always in the average
WAYS = {
    "default": ((), False),
    "2 scales, mirrored too (4 runs)": ((0, 1), True),
    "2 scales (2 runs)": ((0, 1), False),
    "2 turns (2 runs)": ((2, 3), False),
    "2 scales + 2 turns (4 runs)": ((0, 1, 2, 3), False),
    "2 scales + 2 turns, mirrored too (8 runs)": ((0, 1, 2, 3), True),
    "all 8 (8 runs)": (tuple(range(8)), False),
    "all 8, mirrored too (16 runs)": (tuple(range(8)), True),
}

#: quality bins of the default answer
BINS = ((0.0, 0.5), (0.5, 0.9), (0.9, 1.01))


def jittered(det: FaceKeypointDetector, kps: np.ndarray, scale: float, turn: float, dx: float, dy: float):
    """The crop matrix of the pipeline's last crop from ``kps`` (levelled, placed by them), jittered."""
    rule, size = det.model.crop_rule, det.model.input_size
    angle = eye_angle(kps)
    centre, side = rotated_keypoint_box(kps, angle, rule)
    side = side * rule.scale
    return crop_matrix((centre[0] + dx * side, centre[1] + dy * side), side * scale, size, angle + np.deg2rad(turn))


def error(det: FaceKeypointDetector, answer: np.ndarray, truth: np.ndarray, convention: str) -> float:
    """NME_io of an answer in the model's convention, before the offset table, as the pipeline would end it."""
    final = convert(det._less_offset(answer[None].astype(np.float32)), det.model.convention, convention)
    return float(evaluation.nme_io(final, truth[None])[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", default=None, help="our model (default: the bundled one)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces per source (a quick try)")
    ap.add_argument("--out", default=str(RESULTS / "jittered_reads.json"))
    args = ap.parse_args(argv)
    t0 = time.time()
    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    det = FaceKeypointDetector(args.model, threads=1, turns=False)
    rows: dict[str, list] = {}
    for src, _, val in load_sources(cfg):
        want = cfg.convention  # the run's labels, both sources converted to it (iBUG for the bundled model)
        out = rows.setdefault(src.kind, [])
        for s in val[: args.limit] if args.limit else val:
            boxes, _, _ = det._detect(s.image)
            if not len(boxes):
                continue
            kps, scores = det._landmarks(s.image, boxes, None, "detector", offset=False)
            i = matched(list(kps), s.keypoints)
            if i is None:
                continue
            k = kps[i]
            mats = [jittered(det, k, *j) for j in JITTERS]
            reads = {flip: det._predict(s.image, mats, flip=flip)[0] for flip in (False, True)}

            errs = {}
            for way, (idx, flip) in WAYS.items():
                extra = reads[flip][list(idx)] if idx else np.zeros((0, 68, 2))
                errs[way] = error(det, (k + extra.sum(axis=0)) / (1 + len(extra)), s.keypoints, want)
            out.append((float(det.calibration.quality(scores[i])), errs))
    report: dict = {"run": args.run, "model": det.model_info(), "what": __doc__.split("\n\n")[1].replace("\n", " ")}
    for kind, faces in rows.items():
        q = np.array([f[0] for f in faces])
        table = {"faces": len(faces), "nme_mean": {}, "by_quality": {}}
        for way in WAYS:
            e = np.array([f[1][way] for f in faces])
            table["nme_mean"][way] = round(float(e.mean() * 100), 3)
            for lo, hi in BINS:
                m = (q >= lo) & (q < hi)
                cell = table["by_quality"].setdefault(f"{lo:g}-{min(hi, 1):g}", {"faces": int(m.sum())})
                cell[way] = round(float(e[m].mean() * 100), 3) if m.any() else None
        report[kind] = table
        print(kind, json.dumps(table["nme_mean"]), flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
