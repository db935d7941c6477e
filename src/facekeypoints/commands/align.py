"""``facekeypoints align PHOTO...``: each face cut out, aligned by eyes, nose and mouth, as ``<stem>_face<i>.png``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import add_detector_arguments, add_max_megapixels_argument, detector_from_args, max_pixels

HELP = "cut out faces aligned by their eyes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="image files (JPEG, PNG, ...)")
    parser.add_argument(
        "--size", type=int, default=112, metavar="N", help="side of the square crops, pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        default="aligned",
        metavar="DIR",
        help="folder for <stem>_face<i>.png, i = 0, 1, ... in the detector's order (default: %(default)s)",
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser)
    add_max_megapixels_argument(parser)


def _stems(photos: list[str]) -> list[str]:
    """A distinct file-name stem per photo (``_2``, ``_3``... for repeats from different folders)."""
    used: set[str] = set()
    out = []
    for photo in photos:
        stem = Path(photo).stem or "image"
        name, k = stem, 2
        while name in used:
            name, k = f"{stem}_{k}", k + 1
        used.add(name)
        out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    from ..align import align_face
    from ..errors import FaceKeypointsError, InputError
    from ..image_io import load_image
    from ..outputs import name_file, same_file, save_image
    from ..pipeline import FaceKeypointDetector

    if not 8 <= args.size <= 4096:
        raise InputError(f"--size must be between 8 and 4096 pixels, got {args.size}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a folder")
    limit = max_pixels(args)
    inputs = [Path(p) for p in args.photos]
    detector = FaceKeypointDetector(model=args.model, detector=detector_from_args(args))

    failed = 0
    for photo, stem in zip(args.photos, _stems(args.photos)):
        written = []
        try:
            rgb = load_image(photo, limit)
            faces = detector(rgb)
            for i, face in enumerate(faces):
                path = out_dir / f"{stem}_face{i}.png"
                if any(same_file(path, p) for p in inputs):
                    raise InputError(f"{path}: is an input photo; refusing to overwrite it")
                save_image(path, align_face(rgb, face.keypoints, args.size))
                written.append(path)
        except FaceKeypointsError as exc:
            print(f"facekeypoints: error: {name_file(str(exc), photo)}", file=sys.stderr, flush=True)
            failed += 1
            continue
        n = len(written)
        line = f"{photo}: {n} face{'' if n == 1 else 's'}"
        if written:
            line += " -> " + (str(written[0]) if n == 1 else f"{out_dir}/{stem}_face[0-{n - 1}].png")
        print(line, flush=True)
    return 1 if failed else 0
