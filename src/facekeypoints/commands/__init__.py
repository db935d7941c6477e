"""CLI verbs: one module per verb, each with ``add_arguments(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse


def add_detector_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--detector NAME`` and ``--min-face PX``, shared by the verbs that find faces."""
    from ..detectors import DEFAULT_DETECTOR, available_detectors

    parser.add_argument(
        "--detector",
        metavar="NAME",
        default=default,
        help=f"face detector: {', '.join(available_detectors())} (default: {DEFAULT_DETECTOR})",
    )
    parser.add_argument(
        "--min-face",
        type=float,
        default=None,
        metavar="PX",
        help="smallest face to look for, in pixels across (about the width of its landmarks); "
        "smaller finds tiny faces in big photos, at a higher cost (default: the detector's own, 48 for yunet)",
    )


def detector_from_args(args: argparse.Namespace):
    """What ``FaceKeypointDetector(detector=...)`` should get: a name, or a detector built with ``--min-face``."""
    from ..detectors import DEFAULT_DETECTOR, create_detector
    from ..errors import InputError

    name = args.detector or DEFAULT_DETECTOR
    if args.min_face is None:
        return name
    if not args.min_face > 0:
        raise InputError(f"--min-face must be a positive number of pixels, got {args.min_face}")
    return create_detector(name, min_face=args.min_face)
