"""``facekeypoints align PHOTO|FOLDER...``: each face cut out, aligned by eyes, nose and mouth.

Pictures go to ``--out``: a folder (default ``aligned``) of ``<stem>_face<i>.png``, or, for one
photo, a picture name (``face.png``; a second face goes to ``face_1.png``...). Folders are searched
recursively, as by ``detect`` (:mod:`facekeypoints.commands.batch`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_detector_arguments, add_max_megapixels_argument, detector_from_args, max_pixels
from .batch import add_progress_argument

HELP = "cut out faces aligned by their eyes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "photos", nargs="+", metavar="PHOTO", help="image files (JPEG, PNG, ...) or folders (searched recursively)"
    )
    parser.add_argument(
        "--size", type=int, default=112, metavar="N", help="side of the square crops, pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        default="aligned",
        metavar="DIR|FILE.png",
        help="folder for <stem>_face<i>.png, i = 0, 1, ... in the detector's order (default: %(default)s); "
        "or, for one photo, a picture name (further faces: NAME_1.png, ...)",
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser)
    add_max_megapixels_argument(parser)
    add_progress_argument(parser)


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
    from ..errors import InputError
    from ..image_io import load_image
    from ..outputs import same_file, save_image
    from ..pipeline import FaceKeypointDetector
    from .batch import expand_inputs, out_is_one_picture, plural, run_each

    if not 8 <= args.size <= 4096:
        raise InputError(f"--size must be between 8 and 4096 pixels, got {args.size}")
    limit = max_pixels(args)
    files, problems = expand_inputs(args.photos)
    one_picture = out_is_one_picture(args.out, len(files)) if files else False
    out = Path(args.out)
    inputs = [Path(p) for p in files]
    detector = FaceKeypointDetector(model=args.model, detector=detector_from_args(args))

    stems = _stems(files)

    def work(i: int, photo: str) -> str:
        rgb = load_image(photo, limit)
        written = []
        for k, face in enumerate(detector(rgb)):
            if one_picture:
                path = out if k == 0 else out.with_name(f"{out.stem}_{k}{out.suffix}")
            else:
                path = out / f"{stems[i]}_face{k}.png"
            if any(same_file(path, p) for p in inputs):
                raise InputError(f"{path}: is an input photo; refusing to overwrite it")
            save_image(path, align_face(rgb, face.keypoints, args.size))
            written.append(path)
        n = len(written)
        line = f"{photo}: {plural(n)}"
        if written:
            line += " -> " + (str(written[0]) if n == 1 else f"{written[0]} ... {written[-1]}")
        return line

    return run_each(files, problems, "align", args.progress, work)
