"""``facekeypoints filter IMAGE|FOLDER... --filter NAME``: an overlay or privacy blur on every face of each photo.

Pictures go to ``--out``: a folder (default: the current one) of ``<stem>_<filter>.png``, or, for one
photo, a picture name. Folders are searched recursively, as by ``detect``
(:mod:`facekeypoints.commands.batch`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from . import (
    add_detector_arguments,
    add_max_megapixels_argument,
    add_pass_arguments,
    detector_from_args,
    max_pixels,
    pass_settings,
)
from .batch import add_progress_argument

HELP = "put an overlay (sunglasses, moustache, any picture) on every face"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..filters import names

    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...) or folders (searched recursively)"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--filter",
        metavar="NAME",
        help=f"a built-in filter ({', '.join(names())}) or the path of an overlay spec .json",
    )
    which.add_argument("--spec", metavar="FILE.json", help="a custom overlay: RGBA picture + anchors (docs/filters.md)")
    parser.add_argument(
        "--out",
        default=".",
        metavar="DIR|FILE.png",
        help="folder for the <stem>_<filter>.png pictures (default: current), or, for one image, a picture name",
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser)
    add_max_megapixels_argument(parser)
    add_pass_arguments(parser)
    add_progress_argument(parser)


def _label(name: str) -> str:
    """The filter's name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "filter"


def run(args: argparse.Namespace) -> int:
    from .. import filters
    from ..errors import InputError
    from ..image_io import load_image
    from ..outputs import same_file, save_image
    from ..pipeline import FaceKeypointDetector
    from .batch import expand_inputs, picture_targets, plural, run_each

    flt = filters.load_for_cli(Path(args.spec) if args.spec else args.filter)
    limit = max_pixels(args)
    files, problems = expand_inputs(args.images)
    outputs = picture_targets(files, args.out, _label(flt.name)) if files else []
    inputs = [Path(p) for p in files]

    detector = FaceKeypointDetector(
        model=args.model,
        detector=detector_from_args(args),
        **pass_settings(args),
    )

    def work(i: int, image: str) -> str:
        out = outputs[i]
        if any(same_file(out, p) for p in inputs):
            raise InputError(f"{out}: is an input picture; refusing to overwrite it")
        rgb = load_image(image, limit)
        faces = detector(rgb)
        save_image(out, flt(rgb, faces))
        return f"{image}: {plural(len(faces))} -> {out}"

    return run_each(files, problems, "filter", args.progress, work)
