"""Occluded faces: the default pipeline on held-out faces with part of the face hidden, beside dlib.

Real photos hide parts of faces: a hand, a microphone, a cup, hair, another head (COFW and 300-W's
challenging set are full of them). Every face a training run held out (300-W photos and Udacity
people, ``--run``'s split; never a test set) is read end to end (face detector, every pass, the face
matched to the truth by IoU) as it is and with an occluder over part of its face: a rectangle from 30
to 50 % of the width and height of the tight box of its true points, somewhere inside that box
(seeded, the same for every model). Two kinds of occluder:

* ``texture``: a patch of another held-out photo (skin, hair, clothes, background: what real
  occluders look like), never the training augmentation's kind;
* ``flat``: one flat colour (the training augmentation's ``--occlusion-prob`` draws flat grey).

Error over all 68 points, hidden or not (as COFW is scored), NME_io, iBUG convention. Reported per
occluder and source: faces found, mean and median, faces over 10 %; for ours (the bundled model and
any ``--also NAME=MODEL.onnx``) and dlib's HOG detector + 68-point predictor (300-W photos only).

    python bench/occluded_faces.py --run runs/v9/1 [--also new=runs/x/model.onnx] [--no-dlib]

Writes ``results/occluded_faces.json``. 300-W's images and annotations are for research use only.
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
from facekeypoints.geometry import keypoint_box  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402
from facekeypoints.training.config import TrainConfig  # noqa: E402
from facekeypoints.training.data import load_sources  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rolled_faces import matched  # noqa: E402
from rolled_faces import summary as rolled_summary  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OCCLUDERS = ("none", "texture", "flat")


def occluded(
    image: np.ndarray, keypoints: np.ndarray, kind: str, rng: np.random.Generator, donor: np.ndarray
) -> np.ndarray:
    """A copy of ``image`` with an occluder of ``kind`` over 30-50 % of the width and height of the tight
    box of ``keypoints``, placed inside it; ``donor`` (another photo) gives the ``texture`` patch."""
    out = image.copy()
    if kind == "none":
        return out
    x0, y0, x1, y1 = keypoint_box(keypoints)
    w, h = x1 - x0, y1 - y0
    rw, rh = rng.uniform(0.3, 0.5) * w, rng.uniform(0.3, 0.5) * h
    cx, cy = rng.uniform(x0 + rw / 2, x1 - rw / 2), rng.uniform(y0 + rh / 2, y1 - rh / 2)
    a, b = max(0, int(round(cx - rw / 2))), max(0, int(round(cy - rh / 2)))
    c, d = min(image.shape[1], int(round(cx + rw / 2))), min(image.shape[0], int(round(cy + rh / 2)))
    if c <= a or d <= b:
        return out
    if kind == "flat":
        out[b:d, a:c] = rng.integers(0, 256, 3)
    else:
        ph, pw = d - b, c - a
        dh, dw = donor.shape[:2]
        if dh < ph or dw < pw:  # a small donor: tile it
            reps = (int(np.ceil(ph / dh)) + 1, int(np.ceil(pw / dw)) + 1, 1)
            donor = np.tile(donor, reps)
            dh, dw = donor.shape[:2]
        sy, sx = int(rng.integers(0, dh - ph + 1)), int(rng.integers(0, dw - pw + 1))
        out[b:d, a:c] = donor[sy : sy + ph, sx : sx + pw]
    return out


def summary(errors: list[float], n: int) -> dict:
    """:func:`rolled_faces.summary` (found, mean, faces over 10 %, worst) and the median."""
    row = rolled_summary(errors, n)
    if errors:
        row["nme_median"] = round(float(np.median(errors) * 100), 3)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", default=None, help="our model (default: the bundled one)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=MODEL.onnx")
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces per source (a quick try)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "occluded_faces.json"))
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    readers = {"ours": FaceKeypointDetector(args.model, threads=1, convention="ibug")}
    for spec in args.also:
        name, _, path = spec.partition("=")
        readers[name] = FaceKeypointDetector(path, threads=1, convention="ibug")
    if not args.no_dlib:
        from compare import DlibLandmarker  # noqa: E402

        readers["dlib"] = DlibLandmarker(None)
    errors: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for src, _, val in load_sources(cfg):
        faces = val[: args.limit] if args.limit else val
        for kind in OCCLUDERS:
            rng = np.random.default_rng([args.seed, OCCLUDERS.index(kind)])
            for i, s in enumerate(faces):
                donor = (
                    faces[(i + 1 + int(rng.integers(0, len(faces) - 1))) % len(faces)].image
                    if len(faces) > 1
                    else s.image
                )
                rgb = occluded(s.image, s.keypoints, kind, rng, donor)
                for name, reader in readers.items():
                    if name == "dlib" and src.kind != "pts":
                        continue
                    key = f"{kind}/{src.kind}/{name}"
                    counts[key] = counts.get(key, 0) + 1
                    found = reader(rgb)
                    j = matched([f.keypoints for f in found], s.keypoints)
                    if j is not None:
                        errors.setdefault(key, []).append(
                            float(evaluation.nme_io(found[j].keypoints[None], s.keypoints[None])[0])
                        )
            print(f"{src.kind} {kind}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    report: dict = {
        "model": readers["ours"].model_info(),
        "also": args.also,
        "run": args.run,
        "what": " ".join(__doc__.split("\n\n")[1:3]).replace("\n", " "),
        "results": {},
    }
    for key, n in counts.items():
        kind, source, name = key.split("/")
        report["results"].setdefault(kind, {}).setdefault(source, {})[name] = summary(errors.get(key, []), n)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    for kind, by_source in report["results"].items():
        for source, rows in by_source.items():
            print(kind, source, json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
