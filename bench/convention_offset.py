"""Measure the Udacity-minus-iBUG landmark offset and write ``src/facekeypoints/conventions.json``.

The model of release v6 (trained on Udacity labels only, so it answers in their convention)
reads every face of a 300-W training folder (human iBUG labels) from the tight box of its
true points, one pass, no flip. The per-point difference (prediction - truth) in each face's
frame (:mod:`facekeypoints.conventions`) is averaged over the faces the model fits
(NME_io under ``--max-nme``), trimmed of the 10 % most extreme faces at either end per
coordinate. What remains is the convention offset plus the mean bias of the model; only
300-W *training* faces are used, never a test set.

    python bench/convention_offset.py --model OLD.onnx --data ../shared/data/300w/train
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from facekeypoints import conventions, evaluation
from facekeypoints.data.pts import PtsDataset
from facekeypoints.geometry import keypoint_box
from facekeypoints.pipeline import FaceKeypointDetector


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model trained on Udacity labels only (.onnx)")
    ap.add_argument("--data", default="../shared/data/300w/train")
    ap.add_argument("--max-nme", type=float, default=0.08)
    ap.add_argument("--out", default=str(conventions.TABLE_PATH))
    args = ap.parse_args(argv)

    det = FaceKeypointDetector(args.model, refine=False, flip=False)
    preds, truths = [], []
    for s in PtsDataset(args.data).iter_samples():
        preds.append(det.keypoints(s.image, keypoint_box(s.keypoints)[None], box="landmarks")[0])
        truths.append(s.keypoints)
    pred, truth = np.stack(preds), np.stack(truths)
    err = evaluation.nme_io(pred, truth)
    keep = err < args.max_nme
    offset = conventions.measure_offset(pred[keep], truth[keep])
    corrected = conventions.shift_in_face_frame(pred, offset, sign=-1.0)
    after = evaluation.nme_io(corrected, truth)
    print(
        f"{len(pred)} faces, {keep.sum()} used; NME_io {100 * err.mean():.3f} % -> {100 * after.mean():.3f} % "
        "after removing the offset (on the same faces: a fit, not a test)",
        file=sys.stderr,
    )
    table = {
        "about": "offsets[c]: (68, 2) face-frame offset taking iBUG 300-W points to convention c "
        "(units: outer-eye-corner distance; x along 36->45, y down the face). See facekeypoints.conventions.",
        "measured": {
            "by": "bench/convention_offset.py",
            "date": datetime.date.today().isoformat(),
            "model": Path(args.model).name,
            "data": str(args.data),
            "faces": int(len(pred)),
            "faces_used": int(keep.sum()),
            "max_nme": args.max_nme,
            "nme_before": round(100 * float(err.mean()), 3),
            "nme_after": round(100 * float(after.mean()), 3),
        },
        "offsets": {"udacity": [[round(float(x), 5), round(float(y), 5)] for x, y in offset]},
    }
    Path(args.out).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
