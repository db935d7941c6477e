"""Fit a face detector's box -> keypoint box calibration on the Udacity TRAINING faces.

    python bench/calibrate_detector.py NAME [DATA] [--set KEY=VALUE ...] [--limit N]

NAME is any registered face detector (``yunet``, ``haar``, ...); DATA the Udacity zip
or extracted folder (default: the zip `facekeypoints data fetch` writes). For every training image it runs the
detector, takes the detection with the highest IoU against the face's keypoint box
(the tight box around its 68 points), and fits the four numbers of
:class:`BoxCalibration` as medians over the matched faces (one re-match with the
fitted map, then a refit). It prints the constant to paste into the detector's module
and the detection rate (calibrated box IoU >= 0.3, the evaluation protocol's match rule).

Only the training split is read: the test faces are never used for tuning.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time

import numpy as np

from facekeypoints.data import UdacityDataset
from facekeypoints.data.fetch import default_udacity_path
from facekeypoints.detectors import BoxCalibration, available_detectors, box_iou, create_detector
from facekeypoints.geometry import keypoint_box

MATCH_IOU = 0.3  # the evaluation protocol's detection rule
FIT_MIN_IOU = 0.1  # raw boxes may be looser than keypoint boxes: associate generously, fit robustly


def best_match(boxes: np.ndarray, target: np.ndarray) -> tuple[int, float]:
    """Index and IoU of the box overlapping ``target`` most; (-1, 0.0) if none."""
    if len(boxes) == 0:
        return -1, 0.0
    iou = box_iou(boxes, target[None])[:, 0]
    i = int(np.argmax(iou))
    return i, float(iou[i])


def parse_settings(items: list[str]) -> dict:
    """``["min_score=0.6", "max_side=None"]`` -> keyword arguments (values as Python literals)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def fit(all_boxes: list[np.ndarray], targets: list[np.ndarray]) -> tuple[BoxCalibration, int]:
    """Two rounds: associate raw boxes and fit, then re-associate through the fitted map and refit."""
    calib = BoxCalibration()
    n_matched = 0
    for _ in range(2):
        matched_det, matched_kp = [], []
        for boxes, target in zip(all_boxes, targets):
            i, iou = best_match(calib.apply(boxes), target)
            if i >= 0 and iou >= FIT_MIN_IOU:
                matched_det.append(boxes[i])
                matched_kp.append(target)
        calib = BoxCalibration.fit(np.array(matched_det), np.array(matched_kp))
        n_matched = len(matched_det)
    return calib, n_matched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("detector", help=f"registered face detector ({', '.join(available_detectors())})")
    parser.add_argument(
        "data", nargs="?", default=str(default_udacity_path()), help="Udacity zip or folder (default: fetched zip)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="detector keyword argument (repeatable)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N training faces (quick check)")
    args = parser.parse_args(argv)

    kwargs = parse_settings(args.set)
    detector = create_detector(args.detector, **kwargs)
    dataset = UdacityDataset(args.data)

    all_boxes: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    t0 = time.perf_counter()
    for n, sample in enumerate(dataset.iter_samples("training")):
        if args.limit is not None and n >= args.limit:
            break
        boxes, scores = detector.detect(sample.image)
        all_boxes.append(boxes)
        all_scores.append(scores)
        targets.append(keypoint_box(sample.keypoints).astype(np.float64))
    elapsed = time.perf_counter() - t0
    n_faces = len(targets)
    if n_faces == 0:
        print("no training faces read", file=sys.stderr)
        return 1

    calib, n_matched = fit(all_boxes, targets)
    raw_hits = sum(best_match(b, t)[1] >= MATCH_IOU for b, t in zip(all_boxes, targets))
    matches = [best_match(calib.apply(b), t) for b, t in zip(all_boxes, targets)]
    ious = np.array([iou for _, iou in matches])
    hit_scores = np.array([s[i] for (i, iou), s in zip(matches, all_scores) if iou >= MATCH_IOU])
    any_det = sum(len(b) > 0 for b in all_boxes)
    # Udacity crops hold one annotated face, so a box missing it is (almost always) a false positive.
    extra = sum(int((box_iou(calib.apply(b), t[None])[:, 0] < FIT_MIN_IOU).sum()) for b, t in zip(all_boxes, targets))

    settings = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "defaults"
    const = f"{args.detector.upper().replace('-', '_')}_CALIBRATION"
    print(f"detector:                     {args.detector} ({settings})")
    print(f"training faces:               {n_faces} ({elapsed:.1f} s, {1000 * elapsed / n_faces:.1f} ms/face)")
    print(f"images with any detection:    {any_det / n_faces:.2%}")
    print(f"matched for the fit:          {n_matched} (IoU >= {FIT_MIN_IOU} after mapping)")
    print(f"detection rate, raw boxes:    {raw_hits / n_faces:.2%} (IoU >= {MATCH_IOU} vs keypoint box)")
    print(f"detection rate, calibrated:   {(ious >= MATCH_IOU).mean():.2%} (IoU >= {MATCH_IOU} vs keypoint box)")
    print(f"other detections:             {extra} ({extra / n_faces:.3f} per image, IoU < {FIT_MIN_IOU} with the face)")
    if (ious >= MATCH_IOU).any():
        print(f"median IoU of matched faces:  {np.median(ious[ious >= MATCH_IOU]):.3f} (calibrated)")
        print(
            f"scores of matched faces:      min {hit_scores.min():.3f}, 1st percentile "
            f"{np.percentile(hit_scores, 1):.3f}, median {np.median(hit_scores):.3f}"
        )
    print(f"{const} = BoxCalibration(dx={calib.dx:.4f}, dy={calib.dy:.4f}, sx={calib.sx:.4f}, sy={calib.sy:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
