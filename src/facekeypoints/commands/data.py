"""``facekeypoints data``: fetch the Udacity dataset and describe a dataset.

``facekeypoints data fetch [--url URL] [--from PATH] [--dest FILE] [--sha256 HEX] [--no-progress]``
``facekeypoints data info [PATH]``
"""

from __future__ import annotations

import argparse

from ..data.fetch import UDACITY_SHA256, UDACITY_URL, default_udacity_path, fetch
from ..data.udacity import SPLITS, UdacityDataset

HELP = "fetch the Udacity dataset, or describe one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="{fetch,info}")
    sub.required = True

    p = sub.add_parser(
        "fetch",
        help="download the Udacity facial keypoints zip (resumable, checksummed)",
        description="Download the Udacity facial keypoints zip, or copy an offline copy of it, "
        f"to {default_udacity_path()} (folder overridable with $FACEKEYPOINTS_DATA). "
        "An interrupted download resumes; the file is verified with SHA-256 before it is renamed into place.",
    )
    p.add_argument("--url", default=UDACITY_URL, help="http(s)://, file:// URL or local path (default: Udacity's)")
    p.add_argument(
        "--from",
        dest="from_path",
        metavar="PATH",
        default=None,
        help="copy this local file instead of downloading (e.g. a zip fetched on another machine)",
    )
    p.add_argument(
        "--dest",
        metavar="FILE",
        default=None,
        help=f"destination file, or an existing folder (default: {default_udacity_path()})",
    )
    p.add_argument(
        "--sha256",
        metavar="HEX",
        default=None,
        help="expected SHA-256; 'none' skips the check "
        "(default: the Udacity zip's checksum, unless --url names another file)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "info",
        help="count the training/test faces of a Udacity zip or folder",
        description="Print the number of annotated training and test faces in a Udacity-layout zip or folder.",
    )
    p.add_argument("path", nargs="?", default=None, help=f"zip or folder (default: {default_udacity_path()})")


def _resolve_sha256(args: argparse.Namespace) -> str | None:
    if args.sha256 is not None:
        return None if args.sha256.strip().lower() in ("", "none", "skip") else args.sha256
    if args.from_path is not None or args.url == UDACITY_URL:
        return UDACITY_SHA256
    return None


def _run_fetch(args: argparse.Namespace) -> int:
    path = fetch(
        args.url,
        args.dest,
        sha256=_resolve_sha256(args),
        progress=not args.no_progress,
        from_path=args.from_path,
    )
    print(path)
    return 0


def _run_info(args: argparse.Namespace) -> int:
    path = args.path if args.path is not None else default_udacity_path()
    ds = UdacityDataset(path)
    counts = {split: len(ds.annotations(split)) for split in SPLITS}
    print(f"{path}")
    for split, n in counts.items():
        print(f"{split}: {n} faces")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_command == "fetch":
        return _run_fetch(args)
    if args.data_command == "info":
        return _run_info(args)
    raise SystemExit(f"facekeypoints data: unknown command {args.data_command!r}")
