"""Where the bundled model does badly on real photos: error by landmark group, face size, head turn and colour.

The default pipeline (``FaceKeypointDetector()``, as users run it) on 300-W's common test faces
(default ``../shared/data/300w/common``, 554 faces with human iBUG 68-point truth), faces matched
to the truth by IoU as ``facekeypoints evaluate --protocol detector`` does. Every face's NME_io
(outer eye corners) is then broken down by

* landmark group: the mean point error of each group of the 68-point scheme, over the eye distance;
* face size: the true outer-eye-corner distance in pixels, in bins;
* head turn: |yaw|, |pitch| and |roll| of the true landmarks (``facekeypoints.pose.head_pose``), in bins;
* colour: photos whose three channels are equal (grayscale) against colour photos;

and, when the Udacity zip is there, its 770 test faces (Udacity convention) by landmark group, face
size (the keypoint box's longer side) and |yaw|: faces of many more sizes than 300-W's common set.

Writes ``results/failure_modes.json``, the source of the model card's "known weaknesses".

    python bench/failure_modes.py [--data DIR] [--udacity ZIP] [--limit N]
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
from facekeypoints.commands.evaluate import IOU_THRESHOLD  # noqa: E402
from facekeypoints.data.pts import PtsDataset  # noqa: E402
from facekeypoints.geometry import keypoint_box  # noqa: E402
from facekeypoints.landmarks import GROUPS, interocular_distance  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402
from facekeypoints.pose import head_pose  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: Bin edges: eye distance in pixels, |yaw|, |pitch| and |roll| in degrees.
SIZE_BINS = (0, 40, 60, 90, 150, 10_000)
YAW_BINS = (0, 10, 15, 20, 180)
PITCH_BINS = (0, 10, 20, 30, 180)
ROLL_BINS = (0, 10, 20, 180)
#: Udacity test faces: the keypoint box's longer side in pixels (the bins of the model metadata's by_box_size).
BOX_BINS = (0, 60, 80, 110, 10_000)


def binned(values: np.ndarray, nme: np.ndarray, edges: tuple[float, ...], unit: str) -> list[dict]:
    """Per bin [lo, hi): face count, mean NME_io % and the share of faces over 10 %."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (values >= lo) & (values < hi) & np.isfinite(nme)
        if not sel.any():
            continue
        label = f"{lo:g}-{hi:g} {unit}" if hi < edges[-1] else f"{lo:g}+ {unit}"
        rows.append(
            {
                "bin": label,
                "faces": int(sel.sum()),
                "nme_mean": round(100 * float(nme[sel].mean()), 2),
                "over_10_percent": round(100 * float((nme[sel] > 0.10).mean()), 1),
            }
        )
    return rows


def measure(detector: FaceKeypointDetector, samples: list) -> dict[str, np.ndarray]:
    """Per face: NME_io (NaN: not found), per-point error over the eye distance, eye distance and
    keypoint-box side in pixels, |yaw|, |pitch|, |roll| of the truth, and whether the photo is gray."""
    out: dict[str, list] = {k: [] for k in ("nme", "points", "eye_px", "box_px", "yaw", "pitch", "roll", "gray")}
    for s in samples:
        gt = np.asarray(s.keypoints, np.float32)
        h, w = s.image.shape[:2]
        pose = head_pose(gt, (w, h))
        for i, key in enumerate(("yaw", "pitch", "roll")):
            out[key].append(abs(pose[i]) if pose is not None else np.nan)
        iod = float(interocular_distance(gt[None])[0])
        out["eye_px"].append(iod)
        box = keypoint_box(gt)
        out["box_px"].append(float(max(box[2] - box[0], box[3] - box[1])))
        rgb = s.image.astype(np.int16)
        out["gray"].append(
            float(np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2 and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 2)
        )
        faces = detector(s.image)
        boxes = np.array([keypoint_box(np.asarray(f.keypoints)) for f in faces]).reshape(-1, 4)
        match = evaluation.match_detections(boxes, box[None], IOU_THRESHOLD)[0]
        per_point = np.full(68, np.nan)
        if match >= 0:
            per_point = np.linalg.norm(np.asarray(faces[match].keypoints, np.float32) - gt, axis=1) / iod
        out["points"].append(per_point)
        out["nme"].append(float(per_point.mean()))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def by_group(points: np.ndarray) -> dict[str, float]:
    found = np.isfinite(points).all(axis=1)
    return {name: round(100 * float(points[found][:, list(idx)].mean()), 2) for name, idx in GROUPS.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", default="../shared/data/300w/common")
    ap.add_argument(
        "--udacity", default="../shared/data/train-test-data.zip", help="its 770 test faces too (if present)"
    )
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces (a quick try)")
    ap.add_argument("--out", default=str(RESULTS / "failure_modes.json"))
    args = ap.parse_args()

    samples = PtsDataset(args.data).load()
    if args.limit:
        samples = samples[: args.limit]
    detector = FaceKeypointDetector(threads=1)
    t0 = time.perf_counter()
    m = measure(detector, samples)
    seconds = time.perf_counter() - t0
    nme, found = m["nme"], np.isfinite(m["nme"])
    result = {
        "data": str(args.data),
        "convention": "ibug",
        "faces": len(samples),
        "found": int(found.sum()),
        "model": detector.model_info(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python", "bench/failure_modes.py", *sys.argv[1:]]),
        "seconds": round(seconds, 1),
        "nme_mean": round(100 * float(nme[found].mean()), 2),
        "by_group": by_group(m["points"]),
        "by_eye_distance_px": binned(m["eye_px"], nme, SIZE_BINS, "px"),
        "by_abs_yaw_deg": binned(m["yaw"], nme, YAW_BINS, "deg"),
        "by_abs_pitch_deg": binned(m["pitch"], nme, PITCH_BINS, "deg"),
        "by_abs_roll_deg": binned(m["roll"], nme, ROLL_BINS, "deg"),
        "by_colour": [
            {**row, "bin": "colour" if row["bin"].startswith("0-") else "grayscale"}
            for row in binned(m["gray"], nme, (0, 0.5, 2), "gray")
        ],
        "worst_faces": [
            {"name": samples[i].name, "nme": round(100 * float(nme[i]), 2)}
            for i in np.argsort(np.where(found, nme, -1))[::-1][:10]
        ],
    }
    if args.udacity and Path(args.udacity).is_file():
        from facekeypoints.data import UdacityDataset

        test = UdacityDataset(args.udacity).load("test")
        if args.limit:
            test = test[: args.limit]
        u = measure(FaceKeypointDetector(threads=1, convention="udacity"), test)
        result["udacity_test"] = {
            "data": f"{args.udacity} (test split)",
            "convention": "udacity",
            "faces": len(test),
            "found": int(np.isfinite(u["nme"]).sum()),
            "nme_mean": round(100 * float(np.nanmean(u["nme"])), 2),
            "by_group": by_group(u["points"]),
            "by_box_side_px": binned(u["box_px"], u["nme"], BOX_BINS, "px"),
            "by_abs_yaw_deg": binned(u["yaw"], u["nme"], YAW_BINS, "deg"),
        }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "worst_faces"}, indent=1))


if __name__ == "__main__":
    main()
