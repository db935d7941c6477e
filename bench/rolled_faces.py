"""Tilted heads: the default pipeline on held-out faces turned in the picture, beside dlib.

Real photos tilt heads (a person leaning, a camera held at an angle, an old print scanned askew).
Every face a training run held out (300-W photos and Udacity people, ``--run``'s split; never a
test set) is turned by each of ``--angles`` degrees about its centre, on a canvas padded with the photo's
edge pixels repeated outwards (``--padding replicate``; ``reflect``, the fill before stop 22, mirrors the
photo and so puts copies of the face beside it) so that no black corner gives the turn away, and read end
to end: face detector,
passes, the face matched to the truth by IoU. Reported per angle and source: faces found, mean
NME_io (iBUG convention), faces over 10 %, the worst face; for our pipeline with and without the
extra levelled pass (:data:`TILTS`: which faces get it) and how often it runs; and
dlib's HOG detector + 68-point predictor on the same pictures. The photo is searched upright only
(``turns=False``); ``bench/hard_photos.py`` scores the search of turned copies. Writes ``results/rolled_faces.json``.

    python bench/rolled_faces.py --run runs/v9/1 [--model M.onnx] [--angles 0 15 30 45 60] [--no-dlib]
        [--padding replicate|reflect]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facekeypoints import evaluation, quality  # noqa: E402
from facekeypoints.evaluation import iou  # noqa: E402
from facekeypoints.geometry import eye_angle, keypoint_box  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402
from facekeypoints.training.config import TrainConfig  # noqa: E402
from facekeypoints.training.data import load_sources  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: Tilts (degrees, quality.LEVEL_AGAIN_DEG) scored: a face whose answer's eye line is further than this
#: from level gets the third pass; inf: never; -1: always.
TILTS = (np.inf, 10.0, 15.0, 20.0, -1.0)


#: How the canvas around a turned photo is filled (``--padding``): ``replicate`` repeats the photo's edge
#: pixels outwards (streaks, no face); ``reflect`` mirrors the photo (the benches' fill until stop 22), which
#: puts mirror copies of the face beside it, and a face detector's box may straddle a face and its copy.
PADDINGS = {"replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT}


def turned(
    image: np.ndarray, keypoints: np.ndarray, degrees: float, padding: str = "replicate"
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` padded by half its longer side (filled as :data:`PADDINGS` ``padding`` says, so that no black
    corner gives the turn away) and turned by ``degrees`` (counter-clockwise on screen) about the centre of
    ``keypoints``; the points turned with it."""
    border = PADDINGS[padding]
    pad = max(image.shape[:2]) // 2
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, border)
    cx, cy = keypoints.mean(axis=0) + pad
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), degrees, 1.0)
    out = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR, borderMode=border)
    return out, np.c_[keypoints + pad, np.ones(len(keypoints))] @ m.T


def matched(faces_points: list[np.ndarray], truth: np.ndarray) -> int | None:
    """Index of the reading whose box best overlaps the truth's (IoU at least 0.3), or None."""
    if not faces_points:
        return None
    tb = keypoint_box(truth)
    overlaps = [iou(keypoint_box(k), tb) for k in faces_points]
    i = int(np.argmax(overlaps))
    return i if overlaps[i] >= 0.3 else None


class ThirdPassRecorder:
    """Runs the pipeline with the extra levelled pass for every face and keeps, per face, the answer
    without it, the answer with it and its tilt, so every threshold is scored from one run."""

    def __init__(self, det: FaceKeypointDetector):
        self.det, self.last = det, None
        original = det._level_again

        def level_again(rgb, kps, scores):
            saved = quality.LEVEL_AGAIN_DEG
            quality.LEVEL_AGAIN_DEG = -1.0  # every face
            try:
                k3, s3 = original(rgb, kps, scores)
            finally:
                quality.LEVEL_AGAIN_DEG = saved
            self.last = (np.array(kps), k3, [abs(np.degrees(eye_angle(k))) for k in kps])
            return k3, s3

        det._level_again = level_again

    def readings(self, rgb: np.ndarray):
        """(answers without the third pass, answers with it, their tilts in degrees) of the faces found in ``rgb``."""
        self.last = None
        faces = self.det(rgb)
        if not faces or self.last is None:
            return [], [], []
        k2, k3, tilts = self.last
        k2, k3 = self.det._less_offset(k2), self.det._less_offset(k3)  # as the pipeline answers them
        # the rows of the last landmarks call that were reported (an unsure detection may be dropped)
        rows = [int(np.argmin([np.abs(k - f.keypoints).max() for k in k3])) for f in faces]
        return [k2[r] for r in rows], [k3[r] for r in rows], [tilts[r] for r in rows]


def summary(errors: list[float], n: int) -> dict:
    e = np.array(errors, dtype=np.float64)
    if len(e) == 0:
        return {"found": 0, "of": n}
    return {
        "found": int(len(e)),
        "of": n,
        "nme_mean": round(float(e.mean() * 100), 3),
        "over_10": int((e > 0.10).sum()),
        "worst": round(float(e.max() * 100), 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", default=None, help="the run's exported .onnx (default: the bundled model)")
    ap.add_argument("--angles", type=float, nargs="+", default=[0, 15, 30, 45, 60])
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--padding", choices=list(PADDINGS), default="replicate", help="canvas fill (default: replicate)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces per source (a quick try)")
    ap.add_argument("--out", default=str(RESULTS / "rolled_faces.json"))
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    # upright search only: this bench scores the third pass on the readings of the photo as it is; the
    # search of turned copies (``turns``, which reads other pictures) is scored by bench/hard_photos.py
    det = FaceKeypointDetector(args.model, threads=1, convention="ibug", turns=False)
    rec = ThirdPassRecorder(det)
    dl = None
    if not args.no_dlib:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from compare import DlibLandmarker  # noqa: E402

        dl = DlibLandmarker(None)
    report: dict = {
        "model": det.model_info(),
        "run": args.run,
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "level_again_deg_shipped": quality.LEVEL_AGAIN_DEG,
        "padding": args.padding,
        "angles": {},
    }
    sources = [(src, val) for src, _, val in load_sources(cfg)]
    t0 = time.perf_counter()
    for angle in args.angles:
        ours: dict[str, list[float]] = defaultdict(list)
        extra_runs: dict[str, int] = defaultdict(int)
        theirs: list[float] = []
        n_faces = defaultdict(int)
        for src, val in sources:
            faces = val[: args.limit] if args.limit else val
            for s in faces:
                n_faces[src.kind] += 1
                rgb, truth = turned(s.image, s.keypoints, angle, args.padding)
                k2, k3, tilts = rec.readings(rgb)
                i = matched(k2, truth)
                if i is not None:
                    for t in TILTS:
                        again = tilts[i] > t
                        k = k3[i] if again else k2[i]
                        ours[f"{src.kind}/tilt_{t:g}"].append(float(evaluation.nme_io(k[None], truth[None])[0]))
                        extra_runs[f"{src.kind}/tilt_{t:g}"] += int(again)
                if dl is not None and src.kind == "pts":
                    dfaces = dl(rgb)
                    j = matched([f.keypoints for f in dfaces], truth)
                    if j is not None:
                        theirs.append(float(evaluation.nme_io(dfaces[j].keypoints[None], truth[None])[0]))
        row: dict = {}
        for key, errs in ours.items():
            kind, t = key.split("/")
            row.setdefault(kind, {})[t] = {
                **summary(errs, n_faces[kind]),
                "third_pass_share": round(extra_runs[key] / max(1, len(errs)), 3),
            }
        if dl is not None:
            row.setdefault("pts", {})["dlib"] = summary(theirs, n_faces["pts"])
        report["angles"][f"{angle:g}"] = row
        print(f"{angle:g} deg: " + json.dumps(row), file=sys.stderr, flush=True)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["date"] = time.strftime("%Y-%m-%d %H:%M")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
