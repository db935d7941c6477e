"""``facekeypoints evaluate``: landmark accuracy on the Udacity test (or validation) faces or on any
300-W style folder (``.pts`` beside each image, searched recursively).

``facekeypoints evaluate [--data PATH] [--split test|val] [--model FILE.onnx] [--protocol gt|detector]
[--refine/--no-refine] [--flip/--no-flip] [--out DIR] [--limit N]``

Writes ``report.json``, ``faces.csv`` (one row per face: its name, NME_io and quality) and
``ced.png`` into the output folder (``runs/evaluate/N`` by default, the first ``N`` not taken)
and prints a short table. The protocols are those of DESIGN.md: "gt" feeds the tight box
around the ground-truth keypoints to the landmark model; "detector" runs face detection end
to end and matches faces to the ground truth. Each data set is scored in its own labels'
landmark convention (:mod:`facekeypoints.conventions`): Udacity in "udacity", ``.pts``
folders in "ibug".
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .. import evaluation
from ..data.fetch import default_udacity_path
from ..data.pts import PTS_CONVENTION, PtsDataset, is_pts_folder
from ..data.udacity import UDACITY_CONVENTION, Sample, UdacityDataset, train_val_split
from ..errors import InputError, ModelError
from ..geometry import keypoint_box

HELP = "measure landmark accuracy (NME, FR, AUC, CED) on the Udacity faces or a 300-W .pts folder"

PROTOCOLS = ("gt", "detector")
SPLITS = ("test", "val")

#: Validation split of the training faces: the same rule as training uses.
VAL_FRACTION = 0.1
VAL_SEED = 0

#: IoU needed to match a detected face to the ground truth (detector protocol).
IOU_THRESHOLD = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help=f"Udacity zip or extracted folder, or a 300-W style folder of .pts files beside images, "
        f"searched recursively (default: {default_udacity_path()})",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="Udacity only: 'test': the 770 public test faces; 'val': the faces held out of the training split "
        f"(train_val_split, fraction {VAL_FRACTION}, seed {VAL_SEED}) (default: test). A .pts folder is "
        "evaluated whole",
    )
    parser.add_argument("--model", metavar="FILE.onnx", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="gt",
        help="'gt': boxes from the ground-truth keypoints, measures the landmark model alone; "
        "'detector': face detection end to end, faces matched by IoU >= 0.3 (default: gt)",
    )
    parser.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="second pass re-cropped from the first pass's landmarks (default: off for 'gt', whose box already "
        "comes from the truth, on for 'detector')",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also read the mirrored crop in the last pass and average (default: off for 'gt', which measures "
        "the landmark model alone, on for 'detector', as the pipeline runs)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder; must not exist or be empty (default: runs/evaluate/N, the first free N)",
    )
    parser.add_argument("--limit", type=int, metavar="N", default=None, help="evaluate only the first N faces")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _progress(items: Iterable, total: int | None, enabled: bool) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="evaluate", unit="face", file=sys.stderr, leave=False)


def evaluate_dataset(
    detector: Any,
    samples: Iterable[Sample],
    protocol: str = "gt",
    iou_threshold: float = IOU_THRESHOLD,
    progress: bool = False,
    total: int | None = None,
    qualities_out: list[float] | None = None,
) -> tuple[dict, np.ndarray]:
    """Run ``detector`` over annotated ``samples`` and score it under ``protocol``.

    ``detector`` is a :class:`facekeypoints.pipeline.FaceKeypointDetector` or anything
    with the same ``keypoints(rgb, boxes)`` (protocol "gt") or ``__call__(rgb)``
    (protocol "detector"). ``samples`` yields objects with ``.image`` (RGB uint8) and
    ``.keypoints`` (68, 2).

    Returns ``(report, errors)``: the :func:`evaluation.summarize` report, and the
    ``(N,)`` NME (a fraction) of every sample in order. Under "detector" a sample
    whose face was not found has error NaN, the report's NME/FR/AUC are over the
    matched faces, and it adds ``n_faces`` (all samples), ``n_matched``,
    ``detection_rate`` (percent), ``n_detections`` and ``n_unmatched_detections``
    (detections matched to no annotated face; an image can hold unannotated faces).
    Detections are matched on the box of their predicted keypoints versus the
    ground-truth keypoint box, so both boxes follow the same rule. ``qualities_out``, when
    given, receives every sample's face quality (NaN: not found or no quality).
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    preds: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    errors: list[float] = []
    qualities: list[float] = [] if qualities_out is None else qualities_out
    n_detections = 0
    calibration = getattr(detector, "calibration", None)
    for sample in _progress(samples, total, progress):
        gt = np.asarray(sample.keypoints, dtype=np.float32)
        gt_box = keypoint_box(gt)[None]
        if protocol == "gt":
            if hasattr(detector, "landmarks"):
                kps, scores = detector.landmarks(sample.image, gt_box, box="landmarks")
                q = calibration.quality(scores[0]) if scores is not None and calibration is not None else None
            else:
                kps, q = detector.keypoints(sample.image, gt_box, box="landmarks"), None
            pred = np.asarray(kps, dtype=np.float32)[0]
        else:
            faces = list(detector(sample.image))
            n_detections += len(faces)
            det_boxes = np.array([keypoint_box(np.asarray(f.keypoints)) for f in faces]).reshape(-1, 4)
            match = evaluation.match_detections(det_boxes, gt_box, iou_threshold)[0]
            if match < 0:
                errors.append(float("nan"))
                qualities.append(float("nan"))
                continue
            pred = np.asarray(faces[match].keypoints, dtype=np.float32)
            q = getattr(faces[match], "quality", None)
        qualities.append(float("nan") if q is None else float(q))
        preds.append(pred)
        gts.append(gt)
        errors.append(float(evaluation.nme_io(pred, gt)[0]))
    shape = (-1, 68, 2) if gts else (0, 68, 2)
    report = evaluation.summarize(np.reshape(preds, shape), np.reshape(gts, shape), protocol=protocol)
    if protocol == "detector":
        n_faces = len(errors)
        report["n_faces"] = n_faces
        report["n_matched"] = len(gts)
        report["detection_rate"] = round(100.0 * len(gts) / n_faces, 4) if n_faces else None
        report["n_detections"] = n_detections
        report["n_unmatched_detections"] = n_detections - len(gts)
        report["iou_threshold"] = iou_threshold
    q = np.asarray(qualities, dtype=np.float64)
    ok = np.isfinite(q) & np.isfinite(errors)
    if ok.any():
        from ..quality import roc_auc

        e = np.asarray(errors)[ok]
        sep = (e < 0.05) | (e > 0.10)
        report["quality"] = {
            "mean": round(float(q[ok].mean()), 4),
            # how well quality tells fits under 5 % NME from failures over 10 % (NaN: no failures)
            "roc_auc_good_vs_failed": _finite_or_none(roc_auc(q[ok][sep], e[sep] < 0.05)),
        }
    return report, np.asarray(errors, dtype=np.float64)


def _finite_or_none(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


def load_samples(data: str | Path, split: str, limit: int | None = None) -> tuple[Iterable[Sample], int]:
    """Lazily decoded samples of ``split`` ("test" or "val"; a .pts folder is read whole) and how many."""
    if is_pts_folder(data):
        ds = PtsDataset(data)
        total = len(ds) if limit is None else min(limit, len(ds))
        return itertools.islice(ds.iter_samples(), total), total
    ds = UdacityDataset(data)
    if split == "test":
        source_split, names = "test", [n for n, _ in ds.annotations("test")]
    elif split == "val":
        _, names = train_val_split([n for n, _ in ds.annotations("training")], VAL_FRACTION, seed=VAL_SEED)
        source_split = "training"
    else:
        raise InputError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    wanted = set(names)
    total = len(names) if limit is None else min(limit, len(names))
    return itertools.islice(ds.iter_samples(source_split, wanted), total), total


def write_face_table(path: Path, names: list[str], errors: np.ndarray, qualities: np.ndarray) -> None:
    """``name,nme_io_percent,quality`` per face (empty cells: face not found / no quality)."""

    def cell(v: float, digits: int) -> str:
        return "" if not np.isfinite(v) else f"{v:.{digits}f}"

    rows = ["name,nme_io_percent,quality"]
    rows += [f"{n},{cell(100 * e, 3)},{cell(q, 4)}" for n, e, q in zip(names, errors, qualities)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def next_run_dir(root: str | Path = Path("runs") / "evaluate") -> Path:
    """Create and return ``root/N`` for the first ``N = 1, 2, ...`` that does not exist."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = root / str(n)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def _check_out(out: str | None) -> None:
    if out is None:
        return
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path}: already exists and is not empty; choose another --out (nothing is overwritten)")


def _make_out(out: str | None) -> Path:
    if out is None:
        return next_run_dir()
    _check_out(out)
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_detector(model: str | None, refine: bool | None, flip: bool | None = None, convention: str = "ibug") -> Any:
    """The pipeline detector for ``--model`` / ``--refine`` / ``--flip`` (``None`` keeps its defaults),
    answering in ``convention``."""
    from ..pipeline import FaceKeypointDetector

    kwargs: dict[str, Any] = {"model": model, "convention": convention}
    if refine is not None:
        kwargs["refine"] = refine
    if flip is not None:
        kwargs["flip"] = flip
    return FaceKeypointDetector(**kwargs)


def format_table(report: dict) -> str:
    """A few lines summarising ``report`` for the terminal."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}%"

    lines = [f"protocol {report['protocol']}  faces {report['n_faces']}  convention {report.get('convention', '?')}"]
    if "detection_rate" in report:
        lines.append(f"detection rate {pct(report['detection_rate'])}  matched {report['n_matched']}")
    lines.append(f"NME_io  mean {pct(report['nme_mean'])}  median {pct(report['nme_median'])}")
    for key in ("08", "10"):
        if f"fr_{key}" in report:
            lines.append(f"@0.{key}   FR {pct(report[f'fr_{key}'])}  AUC {pct(report[f'auc_{key}'])}")
    lines.append("groups  " + "  ".join(f"{k} {pct(v)}" for k, v in report["groups"].items()))
    sizes = []
    for row in report["by_box_size"]:
        lo, hi = row["range"]
        sizes.append(f"[{lo:g},{'inf' if hi is None else f'{hi:g}'}) n={row['count']} {pct(row['nme_mean'])}")
    lines.append("by size " + "  ".join(sizes))
    if "quality" in report:
        auc = report["quality"]["roc_auc_good_vs_failed"]
        lines.append(
            f"quality mean {report['quality']['mean']:.3f}  ROC AUC (<5 % vs >10 % NME) "
            + ("- (needs faces on both sides)" if auc is None else f"{auc:.3f}")
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    if args.model is not None and not Path(args.model).is_file():
        raise ModelError(f"{args.model}: no such model file")
    data = Path(args.data) if args.data is not None else default_udacity_path()
    samples, total = load_samples(data, args.split, args.limit)
    _check_out(args.out)  # fail before the long part; the folder is made once there is something to write
    if args.refine is None:
        args.refine = args.protocol == "detector"
    if args.flip is None:
        args.flip = args.protocol == "detector"
    pts = is_pts_folder(data)
    convention = PTS_CONVENTION if pts else UDACITY_CONVENTION  # each data set in its own labels' convention
    detector = make_detector(args.model, args.refine, args.flip, convention=convention)
    progress = not getattr(args, "no_progress", False) and sys.stderr.isatty()
    names: list[str] = []
    samples = (names.append(s.name) or s for s in samples)
    qualities: list[float] = []
    report, errors = evaluate_dataset(
        detector, samples, args.protocol, progress=progress, total=total, qualities_out=qualities
    )
    report.update(
        {
            "split": "all" if pts else args.split,
            "convention": convention,
            "data": str(data),
            "model": str(args.model) if args.model is not None else "bundled",
            "refine": args.refine,
            "flip": getattr(detector, "flip", args.flip),  # off for a model without a mirror offset
            "limit": args.limit,
        }
    )
    out = _make_out(args.out)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_face_table(out / "faces.csv", names, errors, np.asarray(qualities, np.float64))
    label = Path(args.model).stem if args.model is not None else "bundled model"
    title = f"{data.name}, {args.protocol} boxes" if pts else f"Udacity {args.split}, {args.protocol} boxes"
    evaluation.plot_ced({label: errors[np.isfinite(errors)]}, out / "ced.png", title=f"CED, {title}")
    print(format_table(report))
    print(f"wrote {out / 'report.json'}, {out / 'faces.csv'} and {out / 'ced.png'}")
    return 0
