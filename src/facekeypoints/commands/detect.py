"""``facekeypoints detect PHOTO...``: faces and 68 landmarks per photo, as pictures and/or JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HELP = "find faces and their 68 landmarks in photos (annotated pictures, JSON)"

#: Version of the JSON document written by ``detect`` (and the video writer and web API).
SCHEMA = "facekeypoints/v1"

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--json", metavar="FILE", help="write all results as one JSON document ('-': stdout)")
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="annotated picture: a file (.png, .jpg) for one photo, else a folder getting <stem>_keypoints.png",
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    parser.add_argument("--detector", default="haar", help="face detector name (default: haar)")
    parser.add_argument("--no-refine", action="store_true", help="skip the second, landmark-aligned pass")


# --- output helpers (shared by the other verbs that write pictures) -----------------------------


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def encode_image(rgb: np.ndarray, suffix: str = ".png") -> bytes:
    """Encode an RGB uint8 image (format from ``suffix``) to bytes."""
    import cv2

    from ..errors import InputError

    ok, buf = cv2.imencode(suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot encode a picture as {suffix}")
    return buf.tobytes()


def save_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB uint8 picture atomically; the format follows the file suffix."""
    from ..errors import InputError

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: unknown picture type; use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    data = encode_image(rgb, path.suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _plural(n: int) -> str:
    return f"{n} face" if n == 1 else f"{n} faces"


def _picture_paths(photos: list[str], out: str | None) -> list[Path | None]:
    """Where each photo's annotated picture goes (None: nowhere)."""
    from ..errors import InputError

    if out is None:
        return [None] * len(photos)
    out_path = Path(out)
    if out_path.suffix.lower() in IMAGE_SUFFIXES and not out_path.is_dir():
        if len(photos) != 1:
            raise InputError(f"--out {out} names one picture but {len(photos)} photos were given; give a folder")
        return [out_path]
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    paths: list[Path | None] = []
    used: set[str] = set()
    for photo in photos:
        stem = Path(photo).stem or "image"
        name, k = f"{stem}_keypoints.png", 2
        while name in used:  # two inputs with the same stem from different folders
            name, k = f"{stem}_{k}_keypoints.png", k + 1
        used.add(name)
        paths.append(out_path / name)
    return paths


def run(args: argparse.Namespace) -> int:
    from ..draw import draw_faces
    from ..errors import FaceKeypointsError, InputError
    from ..image_io import load_image
    from ..pipeline import FaceKeypointDetector

    to_stdout = args.json == "-"
    log = sys.stderr if to_stdout else sys.stdout
    inputs = [Path(p) for p in args.photos]
    pictures = _picture_paths(args.photos, args.out)
    json_path = Path(args.json) if args.json and not to_stdout else None
    if json_path is not None:
        if json_path.suffix.lower() in IMAGE_SUFFIXES or any(_same_file(json_path, p) for p in inputs):
            raise InputError(f"--json {args.json}: refusing to overwrite an input or a picture; name a .json file")
        if json_path.is_dir():
            raise InputError(f"--json {args.json}: is a folder; name a .json file")

    detector = FaceKeypointDetector(model=args.model, detector=args.detector, refine=not args.no_refine)

    results = []
    failed = 0
    for photo, picture in zip(args.photos, pictures):
        try:
            rgb = load_image(photo)
            faces = detector(rgb)
            if picture is not None:
                if any(_same_file(picture, p) for p in inputs):
                    raise InputError(f"{picture}: is an input photo; refusing to overwrite it")
                save_image(picture, draw_faces(rgb, faces))
        except FaceKeypointsError as exc:
            msg = str(exc)
            if photo not in msg and str(Path(photo)) not in msg:
                msg = f"{photo}: {msg}"
            print(f"facekeypoints: error: {msg}", file=sys.stderr)
            failed += 1
            continue
        h, w = rgb.shape[:2]
        line = f"{photo}: {_plural(len(faces))}"
        if picture is not None:
            line += f" -> {picture}"
        print(line, file=log, flush=True)
        results.append({"path": str(photo), "width": int(w), "height": int(h), "faces": [f.to_dict() for f in faces]})

    if args.json:
        doc = {"schema": SCHEMA, "model": detector.model_info(), "images": results}
        text = json.dumps(doc, default=_json_default) + "\n"
        if to_stdout:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                if json_path.parent != Path(""):
                    json_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(json_path, text.encode("utf-8"))
            except OSError as exc:
                raise InputError(f"{json_path}: cannot write ({exc.strerror or exc})") from None
    return 1 if failed else 0
