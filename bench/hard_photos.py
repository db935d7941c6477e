"""Hard photos: held-out faces made dark, noisy, blurred, compressed, small or strongly tilted, beside dlib.

Every 300-W face a training run held out (``--run``'s split; never a test set) is enlarged 2x (a 224 x
224 photo) and spoiled in one way at a time: darkened (gamma 2.2, 60 % light), overexposed (gamma 0.4),
JPEG quality 8, an 11-pixel motion blur, Gaussian noise of 25 grey levels, low contrast (35 %), shrunk
so that the outer eye corners are about 30 px apart, turned by 60, 75, 90, 120 or 180 degrees (as
``bench/rolled_faces.py`` turns them, on a canvas padded with the photo's edge pixels, ``--padding``), or the
photo itself turned a quarter turn or upside down (``np.rot90``, nothing added: a photo whose orientation tag
was lost). Each picture is
read end to end by the default pipeline, by the same pipeline without the search of turned copies (``turns=False``), by
that without unsure candidates either (``unsure_score=None``: only what the face detector is sure of,
upright, as before both) and by dlib's HOG detector + 68-point predictor; the face matched to the truth
(IoU of the keypoint boxes at least 0.3) is scored.
Reported per way: faces found, mean NME_io (iBUG convention) and faces over 10 %. dlib was trained on
these photos, so its figures are a fit, not a test.

Second, whether unsure candidates and turned copies bring false faces: on the 300-W common and Udacity
test photos, the sample photos and 36 pictures without a face (blank, white, noise, textures, the
overlay art), the candidates read (scored from ``quality.UNSURE_SCORE`` up to the detector's threshold,
overlapping no face it is sure of, upright or turned), how many of them and of faces found in turned
copies were reported, and the time per photo of the default pipeline and of the one before both, called
in turn on each photo. Writes ``results/hard_photos.json``.

    python bench/hard_photos.py --run runs/v9/1 [--model M.onnx] [--limit N] [--no-dlib] [--conditions NAME ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facekeypoints import evaluation  # noqa: E402
from facekeypoints.pipeline import FaceKeypointDetector, turn_image, unturn_points  # noqa: E402
from facekeypoints.training.config import TrainConfig  # noqa: E402
from facekeypoints.training.data import load_sources  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rolled_faces import PADDINGS, matched, summary, turned  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def enlarged(image: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face crop enlarged 2x (cubic), its points with it (pixel centres kept)."""
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    return big, keypoints * 2 + 0.5


def _tone(img: np.ndarray, gamma: float, gain: float) -> np.ndarray:
    return np.clip(255 * ((img / 255.0) ** gamma) * gain, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, q: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def _motion(img: np.ndarray, k: int) -> np.ndarray:
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    return cv2.filter2D(img, -1, kernel)


def _noise(img: np.ndarray, sd: float, seed: int) -> np.ndarray:
    return np.clip(img + np.random.default_rng(seed).normal(0, sd, img.shape), 0, 255).astype(np.uint8)


def _photo_turned(img: np.ndarray, kps: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo itself turned by ``k`` quarter turns (``np.rot90``: counter-clockwise), nothing added: a photo
    whose orientation tag was lost, or taken upside down; the points (pixel centres) turned with it. The
    photo is the turned one's copy turned back by -k, so the pipeline's own mapping carries the points."""
    photo = turn_image(img, k)
    return photo, unturn_points(kps, -k, photo.shape[:2])


def _shrunk(img: np.ndarray, kps: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return small, (kps + 0.5) * f - 0.5


def conditions(padding: str = "replicate") -> dict:
    """name -> (image, points, i) -> (spoiled image, its points); ``i`` seeds the noise; ``padding``: the canvas
    fill of the turned ones (rolled_faces.PADDINGS)."""
    return {
        "as it is": lambda im, k, i: (im, k),
        "dark": lambda im, k, i: (_tone(im, 2.2, 0.6), k),
        "overexposed": lambda im, k, i: (_tone(im, 0.4, 1.0), k),
        "JPEG quality 8": lambda im, k, i: (_jpeg(im, 8), k),
        "motion blur 11 px": lambda im, k, i: (_motion(im, 11), k),
        "noise 25": lambda im, k, i: (_noise(im, 25.0, i), k),
        "low contrast": lambda im, k, i: ((im * 0.35 + 100).astype(np.uint8), k),
        "small (eyes about 30 px apart)": lambda im, k, i: _shrunk(im, k, 0.35),
        "turned 60 degrees": lambda im, k, i: turned(im, k, 60.0, padding),
        "turned 75 degrees": lambda im, k, i: turned(im, k, 75.0, padding),
        "turned 90 degrees": lambda im, k, i: turned(im, k, 90.0, padding),
        "turned 120 degrees": lambda im, k, i: turned(im, k, 120.0, padding),
        "upside down": lambda im, k, i: turned(im, k, 180.0, padding),
        "the photo turned a quarter turn": lambda im, k, i: _photo_turned(im, k, 1),
        "the photo upside down": lambda im, k, i: _photo_turned(im, k, 2),
    }


CONDITIONS = conditions()  # the names, for --conditions

#: our pipelines: the default, without the search of turned copies, and without unsure candidates either
#: (what the face detector alone is sure of, upright: the pipeline before both)
OURS = {
    "ours": {},
    "ours, upright only": {"turns": False},
    "ours, sure detections only, upright only": {"turns": False, "unsure_score": None},
}


def non_faces(seed: int = 0) -> list[np.ndarray]:
    """36 pictures without a face: black, white, noise, 30 smooth random textures, and the overlay art."""
    rng = np.random.default_rng(seed)
    out = [np.zeros((480, 640, 3), np.uint8), np.full((480, 640, 3), 255, np.uint8)]
    out.append(rng.integers(0, 256, (480, 640, 3)).astype(np.uint8))
    for i in range(30):
        n = rng.random((480 // (2 ** (i % 5)), 640 // (2 ** (i % 5)), 3)).astype(np.float32)
        out.append(np.clip(cv2.resize(n, (640, 480), interpolation=cv2.INTER_CUBIC) * 255, 0, 255).astype(np.uint8))
    for p in sorted((SHARED / "samples").glob("*.png")):
        im = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if im is None:
            continue
        if im.ndim == 3 and im.shape[2] == 4:
            a = im[..., 3:] / 255.0
            im = (im[..., :3] * a + 128 * (1 - a)).astype(np.uint8)
        out.append(np.ascontiguousarray(im[..., ::-1]))
    return out


def false_faces(det: FaceKeypointDetector, strict: FaceKeypointDetector, limit: int) -> dict:
    """Unsure candidates read and reported on photos whose faces the detector is sure of, and on pictures
    without a face; and the time per photo with and without them (``strict``), the two called in turn on
    each photo so that the machine's drift falls on both alike."""
    from facekeypoints.data.pts import PtsDataset
    from facekeypoints.data.udacity import UdacityDataset
    from facekeypoints.image_io import load_image

    sets: dict[str, list[np.ndarray]] = {}
    if (SHARED / "300w" / "common").is_dir():
        sets["300w_common"] = [s.image for s in PtsDataset(SHARED / "300w" / "common").load()]
    if (SHARED / "train-test-data.zip").is_file():
        sets["udacity_test"] = [s.image for s in UdacityDataset(SHARED / "train-test-data.zip").iter_samples("test")]
    sets["sample_photos"] = [load_image(p) for p in sorted((SHARED / "samples").glob("*.jpg"))]
    sets["no_face"] = non_faces()
    original = det._detect
    seen: list[int] = []  # unsure candidates read, per call

    def counting(rgb):
        boxes, scores, unsure = original(rgb)
        seen.append(int(unsure.sum()))
        return boxes, scores, unsure

    det._detect = counting
    report = {}
    try:
        for name, images in sets.items():
            images = images[:limit] if limit else images
            read = reported = 0
            qualities = []
            seconds = {"default": 0.0, "sure detections only, upright only": 0.0}
            for k, rgb in enumerate(images):
                for way in ("default", "sure detections only, upright only")[:: 1 if k % 2 else -1]:
                    t = time.perf_counter()
                    if way == "default":
                        seen.clear()
                        faces = det(rgb)
                        read += sum(seen)
                    else:
                        strict(rgb)
                    seconds[way] += time.perf_counter() - t
                unsure = [f for f in faces if f.score < det.detector.min_score or "turned" in f.extra]
                reported += len(unsure)
                qualities += [round(float(f.quality), 3) for f in unsure]
            ms = {way: round(1000 * t / max(1, len(images)), 2) for way, t in seconds.items()}
            report[name] = {
                "ms_per_photo": ms,
                "photos": len(images),
                "candidates_read": read,
                "reported": reported,  # of them, and of faces found in turned copies
                "their_quality": qualities,
            }
            print(name, report[name], flush=True)
    finally:
        det._detect = original
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the training run folder (its config.json names the data)")
    ap.add_argument("--model", default=None, help="our model (default: the bundled one)")
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces / photos per set (a quick try)")
    ap.add_argument("--padding", choices=list(PADDINGS), default="replicate", help="canvas fill of the turned rows")
    ap.add_argument("--out", default=str(RESULTS / "hard_photos.json"))
    ap.add_argument(
        "--false-faces-only", action="store_true", help="only the second part; the first is kept from --out"
    )
    ap.add_argument(
        "--conditions",
        nargs="+",
        choices=list(CONDITIONS),
        metavar="NAME",
        help="only these conditions of the first part, the other rows and the second part kept from --out",
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    cfg = TrainConfig.from_saved(json.loads((Path(args.run) / "config.json").read_text()))
    faces = [s for src, _, val in load_sources(cfg) if src.kind == "pts" for s in val]
    faces = faces[: args.limit] if args.limit else faces
    pipelines = {way: FaceKeypointDetector(args.model, threads=1, convention="ibug", **kw) for way, kw in OURS.items()}
    ours, strict = pipelines["ours"], pipelines["ours, sure detections only, upright only"]
    hog = predictor = None
    if not args.no_dlib:
        from compare import dlib_models

        _, hog, predictor = dlib_models()
    rows = {}
    previous = json.loads(Path(args.out).read_text()) if args.false_faces_only or args.conditions else None
    if previous is not None:
        rows, faces = previous["conditions"], faces[: previous["faces"]]
    wanted = () if args.false_faces_only else (args.conditions or CONDITIONS)
    run = [(name, spoil) for name, spoil in conditions(args.padding).items() if name in wanted]
    for name, spoil in run:
        errors: dict[str, list[float]] = {**{way: [] for way in pipelines}, "dlib": []}
        for i, s in enumerate(faces):
            img, kps = spoil(*enlarged(s.image, s.keypoints), i)
            img = np.ascontiguousarray(img)
            for way, det in pipelines.items():
                found = det(img)
                j = matched([f.keypoints for f in found], kps)
                if j is not None:
                    errors[way].append(float(evaluation.nme_io(found[j].keypoints[None], kps[None])[0]))
            if hog is not None:
                shapes = [np.array([[p.x, p.y] for p in predictor(img, r).parts()], np.float32) for r in hog(img, 0)]
                j = matched(shapes, kps)
                if j is not None:
                    errors["dlib"].append(float(evaluation.nme_io(shapes[j][None], kps[None])[0]))
        rows[name] = {way: summary(e, len(faces)) for way, e in errors.items() if way != "dlib" or hog is not None}
        print(name, rows[name], flush=True)
    report = {
        "model": ours.model_info(),
        "run": str(args.run),
        "faces": len(faces),
        "what": "held-out 300-W faces (the run's split), enlarged 2x and spoiled one way at a time; found, mean "
        "NME_io % (iBUG convention), faces over 10 %; dlib was trained on these photos",
        "padding": args.padding,
        "conditions": {name: rows[name] for name in CONDITIONS if name in rows},
        "false_faces": previous["false_faces"] if args.conditions else false_faces(ours, strict, args.limit),
        "seconds": round(time.time() - t0, 1),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
