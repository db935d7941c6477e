"""Probe: dlib's own method stacked on our answer. A cascade of regression trees on shape-indexed pixel pairs
(Kazemi and Sullivan's ensemble of regression trees, written here in numpy) started from the default
pipeline's answer instead of a mean shape, trained on the 300-W photos a training run learned from and scored on
the ones it held out.

The starting shapes are the default pipeline's answers without the model's offset table (the trees learn their
own), read end to end from the default face detector's box as a user's photo would be. Each training face is
used ``--copies`` times: once from our model's answer, the other times from its truth plus the error our model
made on another training face (in the face's own similarity frame, scaled by 0.7-1.3), so the trees see errors
shaped like ours. Every cascade draws ``--features`` pixel positions around the mean shape, each tied to its
nearest point, and fits ``--trees`` trees of depth ``--depth`` to the residual in the mean shape's frame (each
split the best of ``--cands`` random pixel pairs, pairs drawn with weight exp(-distance / ``--lam`` eye-corner
distances), thresholds drawn from the node's own values, leaves shrunk by ``--nu``). NME_io in the iBUG
placement. ``--common`` also reads 300-W's common test faces once (report only, never to choose a setting),
with dlib's HOG detector and predictor in the same run (bench-only: ``pip install dlib-bin
face-recognition-models``). 300-W's images and annotations are for research use only.

    python bench/tree_refiner.py --run runs/v9/1 [--common] [--out results/tree_refiner.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facekeypoints.commands.evaluate import evaluate_dataset  # noqa: E402
from facekeypoints.conventions import shift_in_face_frame  # noqa: E402
from facekeypoints.data.pts import PtsDataset  # noqa: E402
from facekeypoints.evaluation import nme_io, point_errors  # noqa: E402
from facekeypoints.landmarks import JAW, interocular_distance  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector  # noqa: E402
from facekeypoints.training.config import TrainConfig  # noqa: E402
from facekeypoints.training.data import load_sources  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from output_bias import read_matched  # noqa: E402

SHARED_300W = Path(__file__).resolve().parents[2] / "shared" / "data" / "300w"
COMMON, TRAIN = SHARED_300W / "common", SHARED_300W / "train"


@dataclass
class Faces:
    """Gray images (float32), true points and our starting answers (N, 68, 2 pixels, x then y)."""

    images: list[np.ndarray]
    truth: np.ndarray
    start: np.ndarray


def read_faces(det: FaceKeypointDetector, samples, norm: bool) -> tuple[Faces, int]:
    """Each sample's face as the default detector finds it (IoU >= 0.3 with the true points' box)."""
    images, truth, start, missed = [], [], [], 0
    for s in samples:
        answer = read_matched(det, s.image, s.keypoints)
        if answer is None:
            missed += 1
            continue
        start.append(answer)
        truth.append(s.keypoints)
        images.append(gray(s.image, norm))
    return Faces(images, np.asarray(truth, np.float64), np.asarray(start, np.float64)), missed


def gray(rgb: np.ndarray, norm: bool) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (g - g.mean()) / (g.std() + 1e-3) * 40.0 if norm else g


def similarity(mean: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """(N, 2, 2) scaled rotations A with shapes ~ mean @ A.T + centroid (least squares; ``mean`` centred)."""
    sc = shapes - shapes.mean(1, keepdims=True)
    den = (mean**2).sum()
    a = (mean[None, :, 0] * sc[:, :, 0] + mean[None, :, 1] * sc[:, :, 1]).sum(1) / den
    b = (mean[None, :, 0] * sc[:, :, 1] - mean[None, :, 1] * sc[:, :, 0]).sum(1) / den
    return np.stack([np.stack([a, -b], 1), np.stack([b, a], 1)], 1)


def apply_linear(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("nij,npj->npi", a, v)


def mean_shape(truth: np.ndarray) -> np.ndarray:
    """Procrustes mean of ``truth``, centred, outer eye corners one unit apart."""
    m = truth[0] - truth[0].mean(0)
    for _ in range(5):
        m = m / interocular_distance(m)
        aligned = apply_linear(np.linalg.inv(similarity(m, truth)), truth - truth.mean(1, keepdims=True))
        m = aligned.mean(0) - aligned.mean(0).mean(0)
    return m / interocular_distance(m)


def pixels(images, ids, shapes, a, anchors, deltas) -> np.ndarray:
    """(N, P) intensities at the shape-indexed positions (nearest pixel, clamped to the image)."""
    pts = shapes[:, anchors] + np.einsum("nij,pj->npi", a, deltas)
    out = np.empty(pts.shape[:2], np.float32)
    for n in range(len(shapes)):
        g = images[ids[n]]
        x = np.clip(np.rint(pts[n, :, 0]).astype(int), 0, g.shape[1] - 1)
        y = np.clip(np.rint(pts[n, :, 1]).astype(int), 0, g.shape[0] - 1)
        out[n] = g[y, x]
    return out


class TreeCascade:
    """The cascade: per level, pixel positions (anchor point, offset in the mean shape's frame) and trees."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = np.random.default_rng(args.seed)
        self.levels: list[tuple] = []
        self.mean = np.zeros((68, 2))

    def _positions(self):
        a = self.args
        lo, hi = self.mean.min(0) - 0.3, self.mean.max(0) + 0.3
        ref = self.rng.uniform(lo, hi, size=(a.features, 2))
        anchors = np.argmin(((ref[:, None] - self.mean[None]) ** 2).sum(2), 1)
        dist = np.linalg.norm(ref[:, None] - ref[None], axis=2)
        prob = np.exp(-dist / a.lam)
        np.fill_diagonal(prob, 0.0)
        return anchors, ref - self.mean[anchors], np.cumsum(prob / prob.sum(1, keepdims=True), 1)

    def _tree(self, feats: np.ndarray, resid: np.ndarray, cprob: np.ndarray):
        a, rng = self.args, self.rng
        n_split = 2**a.depth - 1
        su, sv = np.zeros(n_split, int), np.zeros(n_split, int)
        st = np.zeros(n_split, np.float32)
        node = np.zeros(len(feats), int)
        for j in range(n_split):
            sel = np.nonzero(node == j)[0]
            u = rng.integers(a.features, size=a.cands)
            v = np.array([np.searchsorted(cprob[q], rng.random()) for q in u]).clip(0, a.features - 1)
            if len(sel) >= 2:
                diff = feats[sel][:, u] - feats[sel][:, v]
                thr = diff[rng.integers(len(sel), size=a.cands), np.arange(a.cands)]
                mask = (diff > thr).astype(np.float32)
                left, n_left = mask.T @ resid[sel], mask.sum(0)
                right = resid[sel].sum(0)[None] - left
                score = (left**2).sum(1) / np.maximum(n_left, 1) + (right**2).sum(1) / np.maximum(len(sel) - n_left, 1)
                best = int(np.argmax(score))
                su[j], sv[j], st[j] = u[best], v[best], thr[best]
            else:
                su[j], sv[j] = u[0], v[0]
            node[sel] = 2 * j + 1 + (feats[sel, su[j]] - feats[sel, sv[j]] > st[j])
        leaf = node - n_split
        sums = np.zeros((n_split + 1, resid.shape[1]), np.float32)
        np.add.at(sums, leaf, resid)
        leaves = a.nu * sums / np.maximum(np.bincount(leaf, minlength=n_split + 1), 1)[:, None]
        return (su, sv, st, leaves), leaves[leaf]

    def fit(self, faces: Faces, log=print) -> None:
        a, rng = self.args, self.rng
        self.mean = mean_shape(faces.truth)
        n = len(faces.truth)
        own_err = apply_linear(np.linalg.inv(similarity(self.mean, faces.start)), faces.start - faces.truth)
        true_a = similarity(self.mean, faces.truth)
        ids = np.tile(np.arange(n), a.copies)
        shapes = [faces.start]
        for _ in range(a.copies - 1):
            other = rng.integers(n, size=n)
            scale = rng.uniform(0.7, 1.3, size=(n, 1, 1))
            shapes.append(faces.truth + apply_linear(true_a, own_err[other] * scale))
        shapes = np.concatenate(shapes)
        truth = faces.truth[ids]
        t0 = time.time()
        for level in range(a.cascades):
            anchors, deltas, cprob = self._positions()
            lin = similarity(self.mean, shapes)
            feats = pixels(faces.images, ids, shapes, lin, anchors, deltas)
            resid = apply_linear(np.linalg.inv(lin), truth - shapes).reshape(len(shapes), -1).astype(np.float32)
            step = np.zeros_like(resid)
            trees = []
            for _ in range(a.trees):
                tree, out = self._tree(feats, resid, cprob)
                resid -= out
                step += out
                trees.append(tree)
            shapes = shapes + apply_linear(lin, step.reshape(-1, 68, 2).astype(np.float64))
            self.levels.append((anchors, deltas, trees))
            fitted = nme_io(shapes[:n], faces.truth).mean() * 100
            log(f"level {level}: training NME {fitted:.3f} % ({time.time() - t0:.0f} s)")

    def refine(self, images: list[np.ndarray], start: np.ndarray) -> list[np.ndarray]:
        """The shapes after each level, from ``start`` (N, 68, 2 pixels)."""
        n_split = 2**self.args.depth - 1
        shapes, ids, out = start.copy(), np.arange(len(start)), []
        for anchors, deltas, trees in self.levels:
            lin = similarity(self.mean, shapes)
            feats = pixels(images, ids, shapes, lin, anchors, deltas)
            step = np.zeros((len(shapes), 136), np.float32)
            for su, sv, st, leaves in trees:
                node = np.zeros(len(shapes), int)
                for _ in range(self.args.depth):
                    node = 2 * node + 1 + (feats[ids, su[node]] - feats[ids, sv[node]] > st[node])
                step += leaves[node - n_split]
            shapes = shapes + apply_linear(lin, step.reshape(-1, 68, 2).astype(np.float64))
            out.append(shapes.copy())
        return out


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    per_point = point_errors(pred, truth)
    jaw = np.asarray(list(JAW))
    other = np.setdiff1d(np.arange(68), jaw)
    e = per_point.mean(1)
    return {
        "nme": round(float(e.mean() * 100), 3),
        "jaw": round(float(per_point[:, jaw].mean() * 100), 3),
        "other": round(float(per_point[:, other].mean() * 100), 3),
        "over_10": int((e > 0.1).sum()),
        "faces": len(e),
    }


def dlib_common(samples) -> dict:
    """dlib's HOG detector and 68-point predictor end to end on ``samples``, scored as ``bench/real_photos.py``
    scores it (its box convention fitted on 300-W's training faces)."""
    from compare import DlibLandmarker, fit_dlib_calibration

    dl = DlibLandmarker(None)
    dl.calibration = fit_dlib_calibration(dl, PtsDataset(TRAIN).load())
    _, errors = evaluate_dataset(dl, samples, "detector")
    found = errors[np.isfinite(errors)]
    return {
        "nme": round(float(found.mean() * 100), 3),
        "over_10": int((found > 0.1).sum()),
        "faces": len(found),
        "missed": int((~np.isfinite(errors)).sum()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the split)")
    ap.add_argument("--cascades", type=int, default=10)
    ap.add_argument("--trees", type=int, default=300, help="trees per cascade level")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--features", type=int, default=400, help="pixel positions per level")
    ap.add_argument("--cands", type=int, default=20, help="random pixel pairs tried per split")
    ap.add_argument("--nu", type=float, default=0.1, help="shrinkage of each tree's leaves")
    ap.add_argument("--lam", type=float, default=0.15, help="pixel-pair distance scale, eye-corner distances")
    ap.add_argument("--copies", type=int, default=10, help="starting shapes per training face")
    ap.add_argument("--norm", action="store_true", help="standardise each photo's gray levels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--common", action="store_true", help="also report on 300-W common (with dlib, same run)")
    ap.add_argument("--out", default="")
    ap.add_argument("--save", default="", help="pickle the fitted cascade here")
    ap.add_argument("--load", default="", help="a cascade pickled by --save (skips the fit)")
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    det = FaceKeypointDetector(threads=1, convention="ibug")
    offset = det.model.output_offset
    det.model.output_offset = None
    train, val = next((tr, va) for src, tr, va in load_sources(cfg) if src.kind == "pts")
    held, missed = read_faces(det, val, args.norm)
    t0 = time.time()
    if args.load:
        cascade = pickle.loads(Path(args.load).read_bytes())
        n_fit = None
    else:
        fit_faces, _ = read_faces(det, train, args.norm)
        n_fit = len(fit_faces.truth)
        cascade = TreeCascade(args)
        cascade.fit(fit_faces)
        if args.save:
            Path(args.save).write_bytes(pickle.dumps(cascade))
    fit_s = time.time() - t0

    def report(faces: Faces) -> dict:
        t1 = time.time()
        steps = cascade.refine(faces.images, faces.start)
        ms = (time.time() - t1) / len(faces.truth) * 1000
        answered = shift_in_face_frame(faces.start, offset, sign=-1.0).astype(np.float64)
        return {
            "as_answered": scores(answered, faces.truth),
            "without_offset_table": scores(faces.start, faces.truth),
            "refined_per_level": [scores(s, faces.truth) for s in steps],
            "refine_ms_per_face_numpy_batch": round(ms, 2),
        }

    result = {
        "settings": {k: v for k, v in vars(cascade.args).items() if k not in ("run", "out", "common", "save", "load")},
        "fit_faces": n_fit,
        "fit_seconds": round(fit_s),
        "held_out_300w": {**report(held), "missed_by_detector": missed},
    }
    h = result["held_out_300w"]
    last = h["refined_per_level"][-1]["nme"]
    print(f"held-out 300-W ({len(held.truth)}): as answered {h['as_answered']['nme']} %, refined {last} %")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.common:
        samples = PtsDataset(COMMON).load()
        faces, missed_c = read_faces(det, samples, args.norm)
        result["common_300w"] = {**report(faces), "missed_by_detector": missed_c, "dlib_same_run": dlib_common(samples)}
        c = result["common_300w"]
        dl = c["dlib_same_run"]
        print(
            f"300-W common ({len(faces.truth)}): as answered {c['as_answered']['nme']} %, refined "
            f"{c['refined_per_level'][-1]['nme']} %, dlib {dl['nme']} % ({dl['faces']} found)"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
