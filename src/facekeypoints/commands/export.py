"""``facekeypoints export``: checkpoint -> ONNX + JSON metadata (+ torch weights for --init)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "export a training checkpoint to ONNX with its metadata"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a run folder (uses best.pt) or a .pt checkpoint")
    parser.add_argument("--out", required=True, help="output .onnx path (.json and .npz are written beside it)")
    parser.add_argument("--name", default=None, help="model name in the metadata (default: file stem)")
    parser.add_argument("--version", default="1")
    parser.add_argument("--metrics", default=None, help="evaluation report.json to embed as the model's metrics")
    parser.add_argument("--data-sha256", default=None, help="sha256 of the training data archive, recorded as is")
    parser.add_argument("--raw", action="store_true", help="export the raw weights instead of their moving average")
    parser.add_argument(
        "--data",
        default=None,
        help="training data to measure the mirror offset of test-time flip on (default: the run's own --data)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing model at --out")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    try:
        import torch  # noqa: F401  (before any file is looked at: say which extra is missing first)

        from ..export import export_checkpoint
    except ModuleNotFoundError as exc:
        raise _missing_extra(exc) from None

    if Path(args.out).exists() and not args.force:
        raise InputError(f"{args.out}: already exists (pass --force to replace it)")
    ckpt = Path(args.checkpoint)
    if ckpt.is_dir():
        ckpt = ckpt / "best.pt"
    metrics = None
    if args.metrics:
        try:
            metrics = json.loads(Path(args.metrics).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.metrics}: cannot read metrics ({exc})") from None
    data_info = {"sha256": args.data_sha256} if args.data_sha256 else None
    try:
        out = export_checkpoint(
            ckpt,
            args.out,
            name=args.name,
            version=args.version,
            metrics=metrics,
            data_info=data_info,
            use_ema=not args.raw,
            calibration_data=args.data,
        )
    except ModuleNotFoundError as exc:  # e.g. onnx, imported by torch's exporter
        raise _missing_extra(exc) from None
    print(out)
    return 0


def _missing_extra(exc: ModuleNotFoundError) -> Exception:
    """A one-line error naming the extra to install for a missing optional package, else ``exc``."""
    from ..cli import missing_extra

    return missing_extra("export", exc) or exc
