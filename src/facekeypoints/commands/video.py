"""``facekeypoints video SRC``: landmarks on every frame of a video file or webcam, tracked and smoothed."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import add_convention_argument, add_detector_arguments, detector_from_args

HELP = "landmarks on a video file or webcam, tracked and smoothed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..smoothing import OneEuroParams
    from ..video import WRITER_CODECS, TrackerOptions

    smooth, track = OneEuroParams(), TrackerOptions()
    parser.add_argument("src", metavar="SRC", help="a video file, or a webcam index (0 is the first camera)")
    parser.add_argument(
        "--out",
        metavar="FILE",
        help=f"annotated video to write ({', '.join(sorted(WRITER_CODECS))}; mp4v in .mp4, MJPG in .avi)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help='per-frame landmarks as JSON Lines, one {"frame", "time", "faces"} record per frame (\'-\': stdout)',
    )
    parser.add_argument(
        "--filter", metavar="NAME", help="draw this filter (e.g. sunglasses) on the faces in --out, not landmarks"
    )
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames (a webcam runs until Ctrl-C)")
    parser.add_argument("--pose", action="store_true", help="draw each face's head-pose axes on --out")
    parser.add_argument("--no-landmarks", action="store_true", help="do not draw landmarks and boxes on --out")
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser)
    add_convention_argument(parser)
    parser.add_argument(
        "--detect-every",
        type=int,
        default=track.detect_every,
        metavar="N",
        help="look for new faces every N frames while tracking (0: only when no face is tracked; default: %(default)s)",
    )
    group = parser.add_argument_group("smoothing (One Euro filter, speed measured in face sizes per second)")
    group.add_argument(
        "--min-cutoff",
        type=float,
        default=smooth.min_cutoff,
        metavar="HZ",
        help="cutoff frequency at rest: lower = less jitter, more lag (default: %(default)s)",
    )
    group.add_argument(
        "--beta",
        type=float,
        default=smooth.beta,
        help="how fast the cutoff rises with speed: higher = less lag in motion (default: %(default)s)",
    )
    group.add_argument(
        "--d-cutoff",
        type=float,
        default=smooth.d_cutoff,
        metavar="HZ",
        help="cutoff frequency of the speed estimate (default: %(default)s)",
    )
    group.add_argument("--no-smooth", action="store_true", help="raw landmarks, no smoothing")


def _load_filter(name: str):
    """The per-frame filter function for ``--filter NAME`` (imported only when asked for)."""
    from ..errors import InputError

    try:
        from .. import filters
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"{__package__.rsplit('.', 1)[0]}.filters"):
            raise InputError("--filter: this installation has no filters module (facekeypoints.filters)") from None
        raise
    if hasattr(filters, "get"):
        flt = filters.load_for_cli(name)  # checks the name once, up front
        return lambda rgb, faces: flt(rgb, faces)
    return lambda rgb, faces: filters.apply(rgb, faces, name)


def _check_outputs(args: argparse.Namespace) -> None:
    from ..errors import InputError
    from ..outputs import same_file
    from ..video import WRITER_CODECS, parse_source

    src = parse_source(args.src)
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.detect_every < 0:
        raise InputError(f"--detect-every must be 0 or more, got {args.detect_every}")
    if args.filter and not args.out:
        raise InputError("--filter draws on the output video; give --out FILE")
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() not in WRITER_CODECS:
            raise InputError(f"--out {args.out}: unknown video type; use one of {', '.join(sorted(WRITER_CODECS))}")
        if out.is_dir():
            raise InputError(f"--out {args.out}: is a folder; name a video file")
        if isinstance(src, Path) and same_file(out, src):
            raise InputError(f"--out {args.out}: is the input video; refusing to overwrite it")
    if args.json and args.json != "-":
        js = Path(args.json)
        if js.is_dir():
            raise InputError(f"--json {args.json}: is a folder; name a .jsonl file")
        if (isinstance(src, Path) and same_file(js, src)) or (args.out and Path(args.out) == js):
            raise InputError(f"--json {args.json}: refusing to overwrite the input or output video")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from tqdm import tqdm

    from ..draw import draw_faces
    from ..errors import InputError
    from ..pipeline import FaceKeypointDetector
    from ..pose import draw_pose_axes
    from ..smoothing import OneEuroParams
    from ..video import Tracker, TrackerOptions, VideoWriter, frame_record, open_video, write_jsonl
    from .detect import SCHEMA

    _check_outputs(args)
    try:
        smoothing = None if args.no_smooth else OneEuroParams(args.min_cutoff, args.beta, args.d_cutoff)
    except ValueError as exc:
        raise InputError(f"smoothing: {exc}") from None
    apply_filter = _load_filter(args.filter) if args.filter else None

    source = open_video(args.src)
    detector = FaceKeypointDetector(model=args.model, detector=detector_from_args(args), convention=args.convention)
    options = dataclasses.replace(TrackerOptions(), detect_every=args.detect_every, smoothing=smoothing, fps=source.fps)
    tracker = Tracker(detector, options)

    to_stdout = args.json == "-"
    log = sys.stderr if to_stdout else sys.stdout
    writer = json_file = None
    n = 0
    ids: set[int] = set()
    interrupted = False
    t_start = time.perf_counter()
    try:
        if args.out:
            writer = VideoWriter(args.out, source.fps, source.size)
        if args.json:
            if to_stdout:
                json_file = sys.stdout
            else:
                json_path = Path(args.json)
                try:
                    if json_path.parent != Path(""):
                        json_path.parent.mkdir(parents=True, exist_ok=True)
                    json_file = open(json_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
                except OSError as exc:
                    raise InputError(f"{json_path}: cannot write ({exc.strerror or exc})") from None
        total = source.frame_count
        if args.max_frames:
            total = min(total, args.max_frames) if total else args.max_frames
        with tqdm(total=total, unit="frame", desc=source.name, disable=None, leave=False, file=sys.stderr) as bar:
            for frame in source:
                if args.max_frames and frame.index >= args.max_frames:
                    break
                faces = tracker.update(frame.rgb, frame.time)
                ids.update(f.track_id for f in faces)
                if writer is not None:
                    img = frame.rgb
                    if apply_filter is not None:
                        img = apply_filter(img, faces)
                    elif not args.no_landmarks:
                        img = draw_faces(img, faces)
                    if args.pose:
                        for face in faces:
                            img = draw_pose_axes(img, face)
                    writer.write(img)
                if json_file is not None:
                    write_jsonl(json_file, frame_record(frame.index, frame.time, faces, SCHEMA))
                n += 1
                bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
        if writer is not None:
            writer.close()
        if json_file is not None and not to_stdout:
            json_file.close()

    if n == 0 and not interrupted:
        raise InputError(f"{source.name}: no frame could be decoded")
    elapsed = max(time.perf_counter() - t_start, 1e-9)
    outputs = [str(p) for p in (args.out, args.json) if p and p != "-"]
    # track ids, not people: a face lost and found again far away may start a new track
    tracks = f"{len(ids)} track{'' if len(ids) == 1 else 's'}"
    line = f"{source.name}: {n} frames, {tracks}, {n / elapsed:.1f} frames/s"
    if outputs:
        line += " -> " + ", ".join(outputs)
    if interrupted:
        line += " (stopped)"
    print(line, file=log, flush=True)
    if interrupted and not source.is_webcam:
        return 130
    return 0
