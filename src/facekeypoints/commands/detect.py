"""``facekeypoints detect PATH...``: faces and 68 landmarks per photo, as pictures, JSON, JSON Lines or CSV.

Inputs are image files and folders (searched recursively for :data:`IMAGE_SUFFIXES`).
Results keep the order of the inputs, also with ``--workers N`` (a pool of processes,
each with its own detector). A bad file is reported on stderr when its turn comes, the
batch carries on, a summary lists every failure at the end, and the exit status is 1.
The records follow the versioned schema :data:`SCHEMA` (``docs/json_schema.md``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..cpus import available_cpus
from ..outputs import IMAGE_SUFFIXES, name_file, same_file, save_image
from ..quality import UNSURE_SCORE
from . import (
    add_detector_arguments,
    add_max_megapixels_argument,
    add_pass_arguments,
    check_min_face,
    detector_spec,
    max_pixels,
    pass_settings,
)
from .batch import add_progress_argument, expand_inputs, picture_targets, plural, progress_bar, say, summary

HELP = "find faces and their 68 landmarks in photos (annotated pictures, JSON, JSON Lines, CSV)"

#: Version of the records written by ``detect`` (and the video writer and web API).
SCHEMA = "facekeypoints/v1"

FORMATS = ("json", "jsonl", "csv")

#: CSV columns: one row per face (an image without faces, or one that failed, gets one row
#: with ``face`` empty); keypoints are x0, y0, ..., x67, y67 in image pixels.
CSV_COLUMNS = (
    ["path", "width", "height", "face", "score", "box_x0", "box_y0", "box_x1", "box_y1"]
    + ["yaw", "pitch", "roll", "track_id"]
    + [f"{c}{i}" for i in range(68) for c in "xy"]
    + ["error"]
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..detectors import DEFAULT_DETECTOR

    parser.add_argument(
        "photos",
        nargs="+",
        metavar="PATH",
        help="image files (JPEG, PNG, ...) and folders (searched recursively); '-' reads one image from standard input",
    )
    parser.add_argument(
        "--max-faces", type=int, default=None, metavar="N", help="report at most N faces per photo, the largest first"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default=None, help="write the results to stdout in this format (log to stderr)"
    )
    parser.add_argument("--json", metavar="FILE", help="write all results as one JSON document ('-': stdout)")
    parser.add_argument("--jsonl", metavar="FILE", help="write one JSON record per image, a line each ('-': stdout)")
    parser.add_argument("--csv", metavar="FILE", help="write one CSV row per face ('-': stdout)")
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="annotated picture: a file (.png, .jpg) for one photo, else a folder getting <stem>_keypoints.png",
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser, default=DEFAULT_DETECTOR)
    add_max_megapixels_argument(parser)
    add_pass_arguments(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes working in parallel, each with its own detector "
        "(0: one per CPU this process may use; default: 1)",
    )
    add_progress_argument(parser)
    from ..ray_engine import add_arguments as add_ray_arguments

    add_ray_arguments(parser)  # --engine ray and its options


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def record_line(record: dict) -> str:
    """One image's record as a JSON Lines line (with its newline), as ``--jsonl`` writes it."""
    return json.dumps({"schema": SCHEMA, **record}, default=_json_default, separators=(",", ":")) + "\n"


# --- inputs ---------------------------------------------------------------------------------------


def _picture_paths(photos: list[str], out: str | None) -> list[Path | None]:
    """Where each photo's annotated picture goes (None: nowhere): the shared ``--out`` rule."""
    if out is None:
        return [None] * len(photos)
    return list(picture_targets(photos, out, "keypoints")) if photos else []


# --- the work, in this process or in a pool's -------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    model: str | None
    detector: str
    refine: bool
    threads: int | None
    min_face: float | None = None
    flip: bool = True
    convention: str = "ibug"
    max_pixels: int | None = None
    max_faces: int | None = None
    #: where the photo read from standard input (the input "-") was saved, for every worker
    stdin_file: str | None = None
    #: the face detector's candidates from this score up are read too (None: its sure faces only)
    unsure_score: float | None = UNSURE_SCORE
    #: a photo that gives no face upright is searched again turned
    turns: bool = True

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, threads: int | None, limit: int | None, stdin_file: str | None = None
    ) -> _Config:
        """The detector settings of ``detect``'s flags (local and Ray engines alike)."""
        passes = pass_settings(args)
        return cls(
            args.model,
            args.detector,
            passes["refine"],
            threads,
            args.min_face,
            passes["flip"],
            passes["convention"],
            limit,
            getattr(args, "max_faces", None),
            stdin_file,
            passes["unsure_score"],
            passes["turns"],
        )


_DETECTOR: Any = None
_MAX_PIXELS: int | None = None
_STDIN_FILE: str | None = None


def _init_worker(config: _Config, in_pool: bool = False) -> None:
    """Build this process's detector (in a pool's worker, or once in the main process)."""
    global _DETECTOR, _MAX_PIXELS, _STDIN_FILE
    if in_pool:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
        if config.threads:
            # before the face detector's OpenMP runtime starts: N workers must not each use every core
            os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
    _DETECTOR = build_detector(config)
    _MAX_PIXELS = config.max_pixels
    _STDIN_FILE = config.stdin_file


def _save_stdin() -> str:
    """Standard input's bytes (one image) saved to a temporary file, removed at exit."""
    import atexit
    import shutil

    from ..errors import InputError

    data = sys.stdin.buffer.read()
    if not data:
        raise InputError("-: standard input is empty (pipe an image into 'facekeypoints detect -')")
    folder = tempfile.mkdtemp(prefix="facekeypoints-stdin-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "stdin")
    with open(path, "wb") as f:
        f.write(data)
    return path


def build_detector(config: _Config):
    """The detector ``config`` describes (also what each Ray actor of ``--engine ray`` builds once)."""
    from ..pipeline import FaceKeypointDetector

    detector = detector_spec(config.detector, config.min_face, config.threads)
    kwargs: dict[str, Any] = {
        "model": config.model,
        "detector": detector,
        "refine": config.refine,
        "flip": config.flip,
        "convention": config.convention,
        "unsure_score": config.unsure_score,
        "turns": config.turns,
    }
    if config.threads:
        kwargs["threads"] = config.threads
    if config.max_faces:
        kwargs["max_faces"] = config.max_faces
    return FaceKeypointDetector(**kwargs)


def _process(job: tuple[str, str | None]) -> dict:
    """One photo -> its record (:func:`image_record` with this process's detector)."""
    photo, picture = job
    if photo == "-" and _STDIN_FILE is not None:  # standard input, saved once by the main process
        from ..image_io import load_image

        def load(_, limit):
            return load_image(_STDIN_FILE, limit)

        return image_record(_DETECTOR, photo, _MAX_PIXELS, picture, load=load)
    return image_record(_DETECTOR, photo, _MAX_PIXELS, picture)


def image_record(detector, photo: str, max_pixels: int | None, picture: str | None = None, load=None) -> dict:
    """One photo -> its record: ``path, width, height, faces`` or ``path, error`` (a one-line message).

    ``load(photo, max_pixels)`` reads it as RGB (default :func:`~facekeypoints.image_io.load_image`);
    ``picture``: where its annotated picture goes (None: nowhere).
    """
    from ..errors import FaceKeypointsError
    from ..image_io import load_image

    try:
        rgb = (load or load_image)(photo, max_pixels)
        faces = detector(rgb)
        if picture is not None:
            from ..draw import draw_faces

            save_image(picture, draw_faces(rgb, faces))
    except FaceKeypointsError as exc:
        return {"path": photo, "error": name_file(str(exc), photo)}
    except Exception as exc:  # noqa: BLE001 - one odd file must not end a batch; the message says what it was
        reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else ""
        return {"path": photo, "error": name_file(f"unexpected {type(exc).__name__}: {reason}", photo)}
    h, w = rgb.shape[:2]
    return {"path": photo, "width": int(w), "height": int(h), "faces": [f.to_dict() for f in faces]}


def _results(jobs: list[tuple[str, str | None]], config: _Config, workers: int) -> Iterator[dict]:
    """Records in the order of ``jobs``; the first thing yielded is the detector's model info.

    The detector is built here first (so a bad model fails at once, with its own message),
    then, with ``workers`` > 1, once more in each worker process.
    """
    _init_worker(dataclasses.replace(config, threads=None))
    yield _DETECTOR.model_info()
    if workers <= 1:
        for job in jobs:
            yield _process(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from ..errors import FaceKeypointsError

    # spawn: neither ONNX Runtime's nor OpenMP's thread pools survive a fork
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(config, True))
    try:
        futures = [pool.submit(_process, job) for job in jobs]
        for fut in futures:
            yield fut.result()
    except BrokenProcessPool:
        raise FaceKeypointsError("a worker process died (out of memory?); try fewer --workers") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- writers -------------------------------------------------------------------------------------


class _Sink:
    """A text output: stdout, or a file written through a temporary file and renamed when complete."""

    def __init__(self, target: str):
        self.target = target
        self.path: Path | None = None if target == "-" else Path(target)
        self.tmp: str | None = None
        if self.path is None:
            self.stream: TextIO = sys.stdout
            return
        from ..errors import InputError

        try:
            if self.path.parent != Path(""):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        self.stream = open(fd, "w", encoding="utf-8", newline="")

    def write(self, text: str) -> None:
        self.stream.write(text)
        if self.path is None:
            self.stream.flush()

    def close(self) -> None:
        if self.path is None:
            self.stream.flush()
            return
        from ..errors import InputError

        try:
            self.stream.close()
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise InputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def abort(self) -> None:
        if self.path is None:
            return
        try:
            self.stream.close()
        except OSError:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def csv_rows(record: dict) -> list[list]:
    """The CSV rows (lists in :data:`CSV_COLUMNS` order) of one image record."""
    head = [record["path"], record.get("width", ""), record.get("height", "")]
    if "error" in record:
        return [head + [""] * (len(CSV_COLUMNS) - 4) + [record["error"]]]
    faces = record["faces"]
    if not faces:
        return [head + [""] * (len(CSV_COLUMNS) - 3)]
    rows = []
    for i, face in enumerate(faces):
        pose = face.get("pose") or {}
        row = head + [i, face["score"], *face["box"]]
        row += [pose.get("yaw", ""), pose.get("pitch", ""), pose.get("roll", ""), face.get("track_id", "")]
        row += [v for xy in face["keypoints"] for v in xy]
        rows.append(row + [""])
    return rows


def _csv_text(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _check_output(option: str, target: str, inputs: list[Path]) -> None:
    from ..errors import InputError

    path = Path(target)
    if path.suffix.lower() in IMAGE_SUFFIXES or any(same_file(path, p) for p in inputs):
        raise InputError(f"{option} {target}: refusing to overwrite an input or a picture; name a .{option[2:]} file")
    if path.is_dir():
        raise InputError(f"{option} {target}: is a folder; name a .{option[2:]} file")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "engine", "local") == "ray":
        from ..ray_engine import run_detect

        return run_detect(args)
    from ..errors import InputError

    targets = {fmt: getattr(args, fmt) for fmt in FORMATS if getattr(args, fmt)}
    if args.format:
        if targets.get(args.format, "-") != "-":
            raise InputError(f"--format {args.format} writes to stdout, but --{args.format} names a file")
        targets[args.format] = "-"
    if sum(t == "-" for t in targets.values()) > 1:
        raise InputError("only one output can go to stdout ('-')")
    from ..detectors import available_detectors

    if args.detector not in available_detectors():
        raise InputError(f"unknown face detector {args.detector!r}; valid names: {', '.join(available_detectors())}")
    check_min_face(args.min_face)
    limit = max_pixels(args)
    if args.max_faces is not None and args.max_faces < 1:
        raise InputError(f"--max-faces must be 1 or more, got {args.max_faces}")
    if args.photos.count("-") > 1:
        raise InputError("standard input ('-') can be read only once")
    stdin_file = _save_stdin() if "-" in args.photos else None
    if args.workers < 0:
        raise InputError(f"--workers must be 0 (one per CPU) or more, got {args.workers}")
    workers = args.workers or available_cpus()

    files, problems = expand_inputs(args.photos)
    inputs = [Path(p) for p in files]
    pictures = _picture_paths(files, args.out)
    for option, target in targets.items():
        if target != "-":
            _check_output(f"--{option}", target, inputs)
    to_stdout = "-" in targets.values()
    log = sys.stderr if to_stdout else sys.stdout

    failures: list[str] = []

    def report(msg: str, bar) -> None:
        failures.append(msg)
        say(f"facekeypoints: error: {msg}", bar, sys.stderr)

    for msg in problems:
        report(msg, None)

    jobs: list[tuple[str, str | None]] = []
    pre_failed: dict[int, str] = {}
    for i, (photo, picture) in enumerate(zip(files, pictures)):
        if picture is not None and any(same_file(picture, p) for p in inputs):
            pre_failed[i] = f"{picture}: is an input photo; refusing to overwrite it"
        jobs.append((photo, None if picture is None or i in pre_failed else str(picture)))

    workers = max(1, min(workers, len(jobs)))
    threads = max(1, available_cpus() // workers) if workers > 1 else None  # workers x threads <= CPUs
    config = _Config.from_args(args, threads, limit, stdin_file)
    sinks: dict[str, _Sink] = {}
    images: list[dict] = []
    errors: list[dict] = []
    bar = None
    stream = None
    try:
        for fmt, target in targets.items():
            sinks[fmt] = _Sink(target)
        stream = _results([j for i, j in enumerate(jobs) if i not in pre_failed], config, workers)
        model_info = next(stream)
        if "csv" in sinks:
            sinks["csv"].write(_csv_text([CSV_COLUMNS]))
        bar = progress_bar(len(jobs), args.progress, "detect")
        for i, (photo, picture) in enumerate(jobs):
            record = {"path": photo, "error": pre_failed[i]} if i in pre_failed else next(stream)
            if "error" in record:
                report(record["error"], bar)
                errors.append(record)
            else:
                line = f"{photo}: {plural(len(record['faces']))}"
                if picture is not None:
                    line += f" -> {picture}"
                say(line, bar, log)
                images.append(record)
            if "jsonl" in sinks:
                sinks["jsonl"].write(record_line(record))
            if "csv" in sinks:
                sinks["csv"].write(_csv_text(csv_rows(record)))
            if bar is not None:
                bar.update(1)
        stream.close()  # the worker pool, if any, is shut down here
        if bar is not None:
            bar.close()
            bar = None
        if "json" in sinks:
            doc = {"schema": SCHEMA, "model": model_info, "images": images, "errors": errors}
            sinks["json"].write(json.dumps(doc, default=_json_default) + "\n")
        for sink in sinks.values():
            sink.close()
    except BaseException:
        if stream is not None:
            stream.close()  # stops the worker pool
        if bar is not None:
            bar.close()
        for sink in sinks.values():
            sink.abort()
        raise

    summary(failures, len(files) + len(problems))
    return 1 if failures else 0
