"""``facekeypoints filter IMAGE... --filter NAME``: an overlay or privacy blur on every face of each photo."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import add_detector_arguments, add_max_megapixels_argument, add_pass_arguments, detector_from_args, max_pixels

HELP = "put an overlay (sunglasses, moustache, any picture) on every face"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..filters import names

    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--filter",
        metavar="NAME",
        help=f"a built-in filter ({', '.join(names())}) or the path of an overlay spec .json",
    )
    which.add_argument("--spec", metavar="FILE.json", help="a custom overlay: RGBA picture + anchors (see the README)")
    parser.add_argument(
        "--out", default=".", metavar="DIR", help="folder for the <stem>_<filter>.png pictures (default: current)"
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser)
    add_max_megapixels_argument(parser)
    add_pass_arguments(parser)


def _label(name: str) -> str:
    """The filter's name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "filter"


def output_paths(images: list[str], out_dir: Path, label: str) -> list[Path]:
    """``<stem>_<label>.png`` in ``out_dir`` for each image; repeated stems get ``_2``, ``_3``..."""
    used: set[str] = set()
    paths = []
    for image in images:
        stem = Path(image).stem or "image"
        name, k = f"{stem}_{label}.png", 2
        while name in used:
            name, k = f"{stem}_{k}_{label}.png", k + 1
        used.add(name)
        paths.append(out_dir / name)
    return paths


def run(args: argparse.Namespace) -> int:
    from .. import filters
    from ..errors import FaceKeypointsError, InputError
    from ..image_io import load_image
    from ..outputs import name_file, same_file, save_image
    from ..pipeline import FaceKeypointDetector

    flt = filters.load_spec(args.spec) if args.spec else filters.get(args.filter)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a folder")
    limit = max_pixels(args)
    inputs = [Path(p) for p in args.images]
    outputs = output_paths(args.images, out_dir, _label(flt.name))

    detector = FaceKeypointDetector(
        model=args.model,
        refine=not args.no_refine,
        flip=not args.no_flip,
        detector=detector_from_args(args),
        convention=args.convention,
    )
    failed = 0
    for image, out in zip(args.images, outputs):
        try:
            if any(same_file(out, p) for p in inputs):
                raise InputError(f"{out}: is an input picture; refusing to overwrite it")
            rgb = load_image(image, limit)
            faces = detector(rgb)
            save_image(out, flt(rgb, faces))
        except FaceKeypointsError as exc:
            print(f"facekeypoints: error: {name_file(str(exc), image)}", file=sys.stderr, flush=True)
            failed += 1
            continue
        n = len(faces)
        print(f"{image}: {n} face{'' if n == 1 else 's'} -> {out}", flush=True)
    return 1 if failed else 0
