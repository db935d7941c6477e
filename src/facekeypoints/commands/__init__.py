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


def add_max_megapixels_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels MP``: the largest photo decoded (checked from its header first)."""
    from ..image_io import MAX_PIXELS

    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=MAX_PIXELS / 1e6,
        metavar="MP",
        help="largest photo to read, in megapixels, refused from its header before decoding "
        "(default: %(default)g; 0: no limit)",
    )


def max_pixels(args: argparse.Namespace) -> int | None:
    """``--max-megapixels`` in pixels (None: no limit); a one-line error for a negative value."""
    from ..errors import InputError

    mp = getattr(args, "max_megapixels", None)
    if mp is None or mp == 0:
        return None
    if not mp > 0:
        raise InputError(f"--max-megapixels must be a positive number (or 0: no limit), got {mp}")
    return int(mp * 1e6)


def add_pass_arguments(parser: argparse.ArgumentParser) -> None:
    """``--no-refine``, ``--no-flip``, ``--unsure-score`` and ``--no-turns``: the pipeline's optional passes and
    searches, on by default; ``--convention``. :func:`pass_settings` reads them back."""
    from ..quality import UNSURE_SCORE

    parser.add_argument("--no-refine", action="store_true", help="skip the second, landmark-aligned pass")
    parser.add_argument("--no-flip", action="store_true", help="skip the mirrored crop in the last pass (faster)")
    parser.add_argument(
        "--unsure-score",
        type=unsure_score,
        default=UNSURE_SCORE,
        metavar="S",
        help="also read the face detector's candidates scored from S up to its own threshold, and report them "
        "when their landmarks fit as a face's do (faces in noisy, dark or tilted photos); 'off': the detector's "
        "sure faces only, a little faster (default: %(default)s)",
    )
    parser.add_argument(
        "--no-turns",
        action="store_true",
        help="don't search a photo again turned a quarter turn either way and upside down when it gives no face "
        "upright (a picture without a face then costs one detection instead of four)",
    )
    add_convention_argument(parser)


def unsure_score(text: str) -> float | None:
    """``--unsure-score``'s value: a detector score in [0, 1], or ``off`` (None): :func:`quality.parse_unsure_score`."""
    from ..quality import parse_unsure_score

    try:
        return parse_unsure_score(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pass_settings(args: argparse.Namespace) -> dict:
    """The :class:`~facekeypoints.pipeline.FaceKeypointDetector` keywords of :func:`add_pass_arguments`' flags:
    ``refine``, ``flip``, ``convention``, ``unsure_score`` and ``turns``."""
    from ..quality import UNSURE_SCORE

    return {
        "refine": not args.no_refine,
        "flip": not args.no_flip,
        "convention": args.convention,
        "unsure_score": getattr(args, "unsure_score", UNSURE_SCORE),
        "turns": not getattr(args, "no_turns", False),
    }


def add_convention_argument(parser: argparse.ArgumentParser) -> None:
    """``--convention ibug|udacity``: where the output points sit (facekeypoints.conventions)."""
    from ..conventions import CONVENTIONS

    parser.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="ibug",
        help="landmark convention of the output: 'ibug' (iBUG 300-W, as dlib and 300-W) or 'udacity' "
        "(the Udacity keypoints labels') (default: ibug)",
    )


def check_min_face(min_face: float | None) -> None:
    """One-line error unless ``--min-face`` is absent or a positive number of pixels."""
    from ..errors import InputError

    if min_face is not None and not min_face > 0:
        raise InputError(f"--min-face must be a positive number of pixels, got {min_face}")


def detector_spec(name: str | None, min_face: float | None = None, threads: int | None = None):
    """:func:`detectors.detector_for`, after a one-line error for a ``--min-face`` that is not positive."""
    from ..detectors import detector_for

    check_min_face(min_face)
    return detector_for(name, min_face, threads)


def detector_from_args(args: argparse.Namespace):
    """:func:`detector_spec` for the ``--detector`` and ``--min-face`` flags."""
    return detector_spec(args.detector, args.min_face)
