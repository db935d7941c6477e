"""``facekeypoints demo``: landmarks on matplotlib's sample portrait of Grace Hopper."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run on a sample photo and write the annotated picture"

SAMPLE = "grace_hopper.jpg"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="facekeypoints_demo.png", metavar="FILE", help="picture to write (default: %(default)s)"
    )


def sample_image_path() -> Path:
    """Path of matplotlib's bundled ``grace_hopper.jpg``."""
    from matplotlib import cbook

    from ..errors import InputError

    try:
        found = cbook.get_sample_data(SAMPLE, asfileobj=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"matplotlib's sample picture {SAMPLE} is missing ({exc})") from None
    path = Path(getattr(found, "name", found))  # a path in matplotlib >= 3.8; a file object in some older ones
    if hasattr(found, "close"):
        found.close()
    if not path.is_file():
        raise InputError(f"{path}: matplotlib's sample picture is missing")
    return path


def run(args: argparse.Namespace) -> int:
    from ..draw import draw_faces
    from ..image_io import load_image
    from ..outputs import save_image
    from ..pipeline import FaceKeypointDetector

    path = sample_image_path()
    rgb = load_image(path)
    faces = FaceKeypointDetector()(rgb)
    save_image(args.out, draw_faces(rgb, faces))
    print(f"{SAMPLE}: {len(faces)} face{'' if len(faces) == 1 else 's'} -> {args.out}")
    return 0
