"""Is 300-W's common test set a fair race against dlib? Each side on faces it trained on and on faces it did not.

Our model trained on ``300w/train`` (AFW, HELEN and LFPW training images) and never saw ``300w/common`` (HELEN
and LFPW test images). A model that never saw the test images does a little worse on them than on its own
training faces of the same collections. This bench reads the per-face errors of two ``bench/real_photos.py``
runs, one on each split, and compares ours and dlib's (end to end, the faces both found), collection by
collection: mean and median NME_io, the share of faces where ours is closer, and dlib's mean over ours
with a 95 % bootstrap interval (faces resampled). If dlib's predictor, too, had seen only the training
split, the ratio would be about the same on both splits.

    python bench/real_photos.py --data ../shared/data/300w/train --out bench/results/train_split
    python bench/real_photos.py                                   # the common test set (bench/results)
    python bench/dlib_seen_split.py

Writes ``results/dlib_seen_split.{json,md}``. 300-W's images and annotations are for research use only.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
OURS, DLIB = "ours end to end", "dlib end to end (HOG)"


def paired_errors(csv_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per collection (the first folder of each face's name): (ours, dlib) NME_io in %, faces both found."""
    by: dict[str, tuple[list[float], list[float]]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if not row[OURS] or not row[DLIB]:
                continue  # a face one of the two did not find
            ours, dlib = by.setdefault(row["name"].split("/")[0], ([], []))
            ours.append(float(row[OURS]))
            dlib.append(float(row[DLIB]))
    return {k: (np.array(o), np.array(d)) for k, (o, d) in sorted(by.items())}


def ratio_interval(ours: np.ndarray, dlib: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of mean(dlib) / mean(ours), the faces resampled in pairs."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ours), size=(rounds, len(ours)))
    ratios = dlib[idx].mean(axis=1) / ours[idx].mean(axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def compare(split: str, csv_path: Path) -> list[dict]:
    rows = []
    for collection, (ours, dlib) in paired_errors(csv_path).items():
        lo, hi = ratio_interval(ours, dlib)
        rows.append(
            {
                "split": split,
                "collection": collection,
                "faces": int(len(ours)),
                "ours_mean": round(float(ours.mean()), 3),
                "ours_median": round(float(np.median(ours)), 3),
                "dlib_mean": round(float(dlib.mean()), 3),
                "dlib_median": round(float(np.median(dlib)), 3),
                "ours_closer_share": round(float((ours < dlib).mean()), 3),
                "dlib_over_ours": round(float(dlib.mean() / ours.mean()), 3),
                "dlib_over_ours_95": [round(lo, 3), round(hi, 3)],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default=str(RESULTS / "train_split" / "real_photos_faces.csv"))
    ap.add_argument("--test", default=str(RESULTS / "real_photos_faces.csv"))
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    rows = compare("train (both trained on it)", Path(args.train)) + compare("common (test)", Path(args.test))
    out = Path(args.out)
    (out / "dlib_seen_split.json").write_text(
        json.dumps({"train_csv": args.train, "test_csv": args.test, "rows": rows}, indent=2) + "\n"
    )
    lines = [
        "# dlib and ours on faces each trained on (300w/train) and on the test faces (300w/common)",
        "",
        "End to end, NME_io %, iBUG convention, the faces both found. `python bench/dlib_seen_split.py`",
        "",
        "| split | collection | faces | ours mean | ours median | dlib mean | dlib median | ours closer | "
        "dlib / ours (95 %) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["dlib_over_ours_95"]
        lines.append(
            f"| {r['split']} | {r['collection']} | {r['faces']} | {r['ours_mean']:.2f} | {r['ours_median']:.2f} | "
            f"{r['dlib_mean']:.2f} | {r['dlib_median']:.2f} | {100 * r['ours_closer_share']:.0f} % | "
            f"{r['dlib_over_ours']:.3f} ({lo:.3f}-{hi:.3f}) |"
        )
    (out / "dlib_seen_split.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
