"""Fit a model's ``quality`` curve on the faces its training run held out, and check it.

For every held-out face of the run (300-W photos held out by ``split_by_group``, Udacity people
held out by ``train_val_split``: faces the weights never saw, and never a test set) the default
pipeline reads the face from its true box and from three disturbed boxes (shifted, shrunk,
grown or turned, as a poor face detector would give), which yields good fits and failures alike.
``quality`` = logistic(evidence of the raw landmark score) is fitted to "NME_io under 5 %" on half the faces
(alternate photos) and its ROC AUC (fits under 5 % against fits over 10 %) is reported on the
other half; the curve written to the model is then fitted on all of them. Crops that hold no
face (noise, flat gray, a gradient, a photo's corner) and faces cut in half are scored too.

    python bench/quality_calibration.py --run runs/v7/1 --model M.onnx [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

from facekeypoints import evaluation, quality
from facekeypoints.export import update_metadata
from facekeypoints.geometry import keypoint_box
from facekeypoints.pipeline import FaceKeypointDetector
from facekeypoints.training.config import TrainConfig
from facekeypoints.training.data import image_group, load_sources

RESULTS = Path(__file__).resolve().parent / "results"


def disturbed_boxes(box: np.ndarray, rng: np.random.Generator, n: int = 3) -> list[np.ndarray]:
    x0, y0, x1, y1 = box
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    side = max(x1 - x0, y1 - y0)
    out = []
    for _ in range(n):
        shift = rng.uniform(-0.45, 0.45, 2) * side
        half = side * float(np.exp(rng.uniform(-0.7, 0.5))) / 2
        cc = c + shift
        out.append(np.array([cc[0] - half, cc[1] - half, cc[0] + half, cc[1] + half]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", required=True, help="the run's exported .onnx")
    ap.add_argument("--write", action="store_true", help="write the fitted curve into the model's metadata")
    ap.add_argument("--out", default=str(RESULTS / "quality_calibration.json"))
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    val = [(src.kind, s) for src, _, v in load_sources(cfg) for s in v]
    det = FaceKeypointDetector(args.model, threads=1)
    rng = np.random.default_rng(0)
    raw, nme, half, kinds = [], [], [], []
    for kind, s in val:
        box = keypoint_box(s.keypoints)
        for j, b in enumerate([box, *disturbed_boxes(box, rng)]):
            kps, scores = det.landmarks(s.image, b[None], box="landmarks")
            raw.append(float(quality.raw_score(scores[0])))
            nme.append(float(evaluation.nme_io(kps[0], s.keypoints)[0]))
            photo = image_group(s.name) if kind == "pts" else s.name.rsplit("_", 1)[0]  # Udacity: the video
            half.append(zlib.crc32(photo.encode()) % 2)
            kinds.append(f"{kind}/{'true' if j == 0 else 'disturbed'}")
    raw, nme, half = np.array(raw), np.array(nme), np.array(half)
    good, bad = nme < 0.05, nme > 0.10
    sep = good | bad

    z = quality.evidence(raw)
    a, b = quality.fit_logistic(z[half == 0], good[half == 0])
    q_test = quality.Calibration(a, b).quality(raw[half == 1][:, None].repeat(68, 1))
    auc = quality.roc_auc(q_test[sep[half == 1]], good[half == 1][sep[half == 1]])
    # threshold: the best balance (Youden's J) of good fits kept and failures caught, on the test half
    qs = np.sort(np.unique(q_test))
    g1, b1 = good[half == 1], bad[half == 1]
    j_best, thr = -1.0, quality.DEFAULT_THRESHOLD
    for t in qs:
        j = (q_test[g1] >= t).mean() - (q_test[b1] >= t).mean() if b1.any() else 0.0
        if j > j_best:
            j_best, thr = float(j), float(t)

    a_all, b_all = quality.fit_logistic(z, good)
    cal = quality.Calibration(a_all, b_all, thr)
    q_all = cal.quality(raw[:, None].repeat(68, 1))

    # crops with no face, and faces cut in half
    size = 160
    yy, xx = np.mgrid[0:size, 0:size]
    nonfaces = {
        "noise": (rng.random((size, size, 3)) * 255).astype(np.uint8),
        "flat gray": np.full((size, size, 3), 128, np.uint8),
        "gradient": np.repeat(((xx + yy) * 255 / (2 * size)).astype(np.uint8)[..., None], 3, axis=2),
    }
    nonface_q = {}
    for name, img in nonfaces.items():
        _, sc = det.landmarks(img, np.array([[20, 20, 140, 140]], np.float32), box="landmarks")
        nonface_q[name] = round(float(cal.quality(sc[0])), 4)
    halves, half_nme = [], []
    for _, s in val[:: max(1, len(val) // 100)]:
        x0, y0, x1, y1 = keypoint_box(s.keypoints)
        cut = s.image.copy()
        cut[int((y0 + y1) / 2) :] = 0  # the lower half of the face blacked out
        kp, sc = det.landmarks(cut, keypoint_box(s.keypoints)[None], box="landmarks")
        halves.append(float(cal.quality(sc[0])))
        half_nme.append(100 * float(evaluation.nme_io(kp, s.keypoints[None])[0]))  # all 68 points, hidden or not
    halves, half_nme = np.array(halves), np.array(half_nme)
    passed = halves >= thr  # half faces the threshold would keep: are their readings good?

    report = {
        "model": str(args.model),
        "run": str(args.run),
        "readings": int(len(raw)),
        "faces": len(val),
        "good_under_5": int(good.sum()),
        "failed_over_10": int(bad.sum()),
        "fit_half": {"a": round(a, 4), "b": round(b, 4)},
        "roc_auc_test_half": round(float(auc), 4),
        "threshold": round(thr, 4),
        "at_threshold_test_half": {
            "good_kept": round(float((q_test[g1] >= thr).mean()), 4),
            "failures_flagged": round(float((q_test[b1] < thr).mean()), 4) if b1.any() else None,
        },
        "calibration": cal.to_dict(),
        "roc_auc_all": round(float(quality.roc_auc(q_all[sep], good[sep])), 4),
        "quality_of_true_box_fits": {
            k: round(float(np.median(q_all[np.array(kinds) == k])), 4) for k in sorted(set(kinds))
        },
        "no_face": nonface_q,
        "face_cut_in_half": {
            "faces": int(len(halves)),
            "median": round(float(np.median(halves)), 4),
            "max": round(float(np.max(halves)), 4),
            "nme_median_percent": round(float(np.median(half_nme)), 2),
            "at_or_over_threshold": int(passed.sum()),
            "their_nme_percent": sorted(round(float(e), 1) for e in half_nme[passed]),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if args.write:
        update_metadata(args.model, "quality", {**cal.to_dict(), "roc_auc_held_out": report["roc_auc_test_half"]})
        print(f"wrote the curve into {Path(args.model).with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
