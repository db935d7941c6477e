"""``facekeypoints detect --engine ray``: the local engine's per-image code on a Ray cluster, through Ray Data.

Needs the ``[ray]`` extra (``pip install 'facekeypoints[ray]'``); this module imports Ray only when it runs.

- Inputs (:func:`expand_inputs`): files, folders (searched recursively for pictures), globs, and text files
  (``*.txt``) listing one path, folder, glob or URI per line; URIs (``s3://``, ``gs://``, ``file://``...) are
  listed and read through pyarrow's file systems.
- Work: a Ray Data pipeline of image paths; each Ray actor (:class:`_ShardWriter`, one CPU each) builds the
  detector once and runs :func:`facekeypoints.commands.detect.image_record` on every image of its batches,
  the same function the local engine runs, so decoding, detection and landmarks are the same code.
- Outputs: each batch becomes one shard in the ``--shards`` folder, ``part-<hash>.parquet`` and
  ``part-<hash>.jsonl``, one record per image in the ``facekeypoints/v1`` schema of ``detect --jsonl``
  (a bad image gets an error record). The JSON Lines file is written last: a shard is finished when it
  exists. A rerun with the same folder skips the inputs its finished shards hold (:func:`finished_paths`).

For a ``ray.data.Dataset`` of images you already have, :func:`add_landmarks` adds landmark columns.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import hashlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FaceKeypointsError, InputError
from .image_io import MAX_PIXELS
from .outputs import IMAGE_SUFFIXES
from .quality import UNSURE_SCORE

ENGINES = ("local", "ray")

#: Images per Ray batch, and so per output shard (fewer when there are few images per actor).
DEFAULT_BATCH_SIZE = 256

#: Batches each actor should get (when they keep :data:`MIN_BATCH` images): the last batches end at
#: different times, and the smaller they are, the less the actors that finished first wait.
BATCHES_PER_ACTOR = 16

#: Smallest batch worth cutting the work into more pieces than ``--batch-size`` asks for.
MIN_BATCH = 8

#: Seconds to wait for a TCP connection to ``--ray-address`` before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0

#: Error lines printed at most per run (all of them are in the shards' error records).
MAX_ERROR_LINES = 20

_INSTALL = "pip install 'facekeypoints[ray]'"

#: Ray's logger announcing token authentication on a new local cluster (silenced while we start ours).
_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


# --- options ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and the Ray engine's options (added to ``detect``)."""
    group = parser.add_argument_group(f"Ray engine (many machines; needs {_INSTALL})")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="'local': this process (and --workers); 'ray': Ray Data on a Ray cluster, writing sharded "
        "JSON Lines and Parquet to --shards; its PATHs may also be globs, .txt files listing paths, and URIs "
        "(s3://, gs://...) (default: local)",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --engine ray: the cluster to join: 'auto' (the one this machine is part of), "
        "'ray://HOST:10001' (Ray Client) or HOST:6379 (default: start a local Ray on this machine's CPUs)",
    )
    group.add_argument(
        "--shards",
        metavar="DIR",
        help="with --engine ray: folder or URI (s3://, gs://, ...) getting part-*.jsonl and part-*.parquet; "
        "a rerun into the same folder skips the inputs it already holds",
    )
    group.add_argument(
        "--ray-actors",
        type=int,
        default=0,
        metavar="N",
        help="with --engine ray: model copies, one Ray actor with one CPU each (0: one per CPU of the cluster)",
    )
    group.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"with --engine ray: most images per batch and per shard (default: {DEFAULT_BATCH_SIZE})",
    )


def import_ray():
    """``ray`` with Ray Data, or a one-line error saying which extra installs it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "ray").split(".")[0]
        raise FaceKeypointsError(f"--engine ray needs the Python package '{missing}' (Ray Data): {_INSTALL}") from None
    return ray


# --- inputs ----------------------------------------------------------------------------------------


def is_uri(path: str) -> bool:
    """Whether ``path`` names a file system by its scheme (``s3://...``, ``gs://...``, ``file://...``)."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isidentifier()


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _is_picture(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and Path(base).suffix.lower() in IMAGE_SUFFIXES


def _glob_match(pattern: list[str], names: list[str]) -> bool:
    """Whether a path (split at ``/``) matches a glob (split the same way), as the shell's ``**`` globs do:
    ``*``, ``?`` and ``[...]`` within one name, ``**`` any number of folders."""
    if not pattern:
        return not names
    if pattern[0] == "**":
        return any(_glob_match(pattern[1:], names[i:]) for i in range(len(names) + 1))
    return bool(names) and fnmatch.fnmatchcase(names[0], pattern[0]) and _glob_match(pattern[1:], names[1:])


def _from_uri(uri: str):
    """(pyarrow file system, path inside it) of a URI."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError...: one line whatever it is
        raise InputError(f"{uri}: cannot open this file system ({str(exc).strip().splitlines()[0][:200]})") from None


def _expand_uri(uri: str) -> tuple[list[str], list[str]]:
    from pyarrow import fs

    scheme = uri.partition("://")[0]
    filesystem, path = _from_uri(uri)

    def as_uri(p: str) -> str:
        return f"{scheme}://{p}" if scheme != "file" else f"file://{p if p.startswith('/') else '/' + p}"

    if _has_magic(path):
        parts = path.split("/")
        fixed = parts[: next(i for i, p in enumerate(parts) if _has_magic(p))]
        base = "/".join(fixed) or "/"
        infos = filesystem.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
        found = sorted(i.path for i in infos if i.type == fs.FileType.File and _glob_match(parts, i.path.split("/")))
        return [as_uri(p) for p in found], [] if found else [f"{uri}: matches no file"]
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.Directory:
        infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
        found = sorted(
            i.path
            for i in infos
            if i.type == fs.FileType.File
            and _is_picture(i.path)
            and not any(part.startswith(".") for part in i.path[len(path) :].split("/")[:-1])
        )
        if not found:
            return [], [f"{uri}: no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})"]
        return [as_uri(p) for p in found], []
    return [uri], []  # a file, or a missing one: it fails when its turn comes


def _read_list(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read this list of inputs ({getattr(exc, 'strerror', None) or exc})") from None
    return [s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")]


def expand_inputs(specs: list[str]) -> tuple[list[str], list[str]]:
    """Images to process (each once, in order) and one-line problems (an empty folder, a glob matching nothing).

    Each spec is a file, a folder (searched recursively like the local engine's), a glob (``*``, ``?``,
    ``[...]``, ``**`` for any depth), a URI of any of those, or a ``.txt`` file listing one such spec per
    line (blank lines and ``#`` comments skipped; relative paths are taken from the current folder).
    """
    from .commands.batch import expand_inputs as expand_local

    files: list[str] = []
    problems: list[str] = []

    def add(spec: str, from_list: bool) -> None:
        if is_uri(spec):
            found, bad = _expand_uri(spec)
        elif not from_list and spec.lower().endswith(".txt") and os.path.isfile(spec):
            for line in _read_list(spec):
                add(line, True)
            return
        elif _has_magic(spec) and not os.path.exists(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                problems.append(f"{spec}: matches no file")
                return
            found, bad = expand_local(matches)
        else:
            found, bad = expand_local([spec])
        files.extend(found)
        problems.extend(bad)

    for spec in specs:
        add(spec, False)
    return list(dict.fromkeys(files)), problems


# --- outputs ---------------------------------------------------------------------------------------


def _record_schema():
    """The Parquet schema of a record: the ``facekeypoints/v1`` JSON record, typed (doubles, so the
    rounded values read back as the same numbers as in the JSON Lines)."""
    import pyarrow as pa

    f64 = pa.float64()
    face = pa.struct(
        [
            ("box", pa.list_(f64)),
            ("score", f64),
            ("keypoints", pa.list_(pa.list_(f64))),
            ("quality", f64),
            ("landmark_scores", pa.list_(f64)),
            ("pose", pa.struct([("yaw", f64), ("pitch", f64), ("roll", f64)])),
            ("turned", pa.int32()),  # only for a face found in a turned copy of the photo (else null)
        ]
    )
    return pa.schema(
        [
            ("schema", pa.string()),
            ("path", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("faces", pa.list_(face)),
            ("error", pa.string()),
        ]
    )


def _lists(pa, values, lengths, type_, mask=None):
    """A list array of ``type_`` from ``values`` cut into runs of ``lengths`` (null where ``mask`` is true)."""
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=type_, mask=mask)


def faces_array(rows: list[list[dict] | None]):
    """The ``faces`` column (:func:`_record_schema`) of records' face lists (None: an image with an error),
    built column by column from numpy arrays: the same array as ``pa.array(rows, type=...)``, which converts
    every one of a face's 68 points as a Python list (0.86 against 0.03 ms a 300-W photo, whose reading takes
    about 9 ms on one CPU)."""
    import pyarrow as pa

    face_type = _record_schema().field("faces").type
    faces = [f for row in rows if row for f in row]
    if any(f.get("landmark_scores") is None or len(f["keypoints"]) == 0 for f in faces):
        return pa.array(rows, type=face_type)  # a model without scores, or no points: the general conversion
    f64 = pa.float64()

    def floats(arrays: list[np.ndarray], size: int | None = None):
        """One list of doubles per array (per ``size`` doubles of them, when given)."""
        flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)
        lengths = [a.size for a in arrays] if size is None else np.full(flat.size // size, size)
        return _lists(pa, pa.array(flat, f64), lengths, pa.list_(f64))

    kps = [np.asarray(f["keypoints"], np.float64).reshape(-1, 2) for f in faces]
    keypoints = _lists(pa, floats(kps, 2), [len(k) for k in kps], pa.list_(pa.list_(f64)))  # [x, y] per point
    landmark_scores = floats([np.asarray(f["landmark_scores"], np.float64) for f in faces])
    box = floats([np.asarray(f["box"], np.float64) for f in faces])
    poses = [f.get("pose") for f in faces]
    pose = pa.StructArray.from_arrays(
        [pa.array([p[k] if p else None for p in poses], f64) for k in ("yaw", "pitch", "roll")],
        fields=list(face_type.value_type.field("pose").type),
        mask=pa.array([p is None for p in poses], pa.bool_()),
    )
    columns = {
        "box": box,
        "score": pa.array([f["score"] for f in faces], f64),
        "keypoints": keypoints,
        "quality": pa.array([f.get("quality") for f in faces], f64),
        "landmark_scores": landmark_scores,
        "pose": pose,
        "turned": pa.array([f.get("turned") for f in faces], pa.int32()),
    }
    fields = list(face_type.value_type)
    struct = pa.StructArray.from_arrays([columns[f.name] for f in fields], fields=fields)
    missing = pa.array([row is None for row in rows], pa.bool_())
    return _lists(pa, struct, [len(row) if row else 0 for row in rows], face_type, missing)


def records_table(records: list[dict], schema=None):
    """``facekeypoints/v1`` records (as ``detect --jsonl`` writes them, without ``schema``) as an Arrow table of
    :func:`_record_schema`."""
    import pyarrow as pa

    from .commands.detect import SCHEMA

    schema = schema or _record_schema()
    columns = {
        "schema": pa.array([SCHEMA] * len(records), pa.string()),
        "path": pa.array([r["path"] for r in records], pa.string()),
        "width": pa.array([r.get("width") for r in records], pa.int32()),
        "height": pa.array([r.get("height") for r in records], pa.int32()),
        "faces": faces_array([r.get("faces") for r in records]),
        "error": pa.array([r.get("error") for r in records], pa.string()),
    }
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def _out_fs(out: str):
    """(pyarrow file system, folder inside it) of ``--shards``: a URI, or a local folder made absolute."""
    if is_uri(out):
        return _from_uri(out)
    from pyarrow import fs

    return fs.LocalFileSystem(), os.path.abspath(out)


def _shard_files(filesystem, root: str) -> dict[str, set[str]]:
    """``{"jsonl": stems, "parquet": stems, "tmp": paths}`` of the shard folder (empty when it is missing)."""
    from pyarrow import fs

    found: dict[str, set[str]] = {"jsonl": set(), "parquet": set(), "tmp": set()}
    for info in filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True)):
        name = info.base_name
        if info.type != fs.FileType.File:
            continue
        if name.startswith(".part-") and name.endswith(".tmp"):
            found["tmp"].add(info.path)
        elif name.startswith("part-"):
            stem, _, ext = name.rpartition(".")
            if ext in ("jsonl", "parquet"):
                found[ext].add(stem)
    return found


def finished_paths(shards: str, clean: bool = True) -> set[str]:
    """The input paths the finished shards in ``shards`` hold (a shard is finished once its ``.jsonl``
    exists). ``clean``: delete what an interrupted run left (a ``.parquet`` without its ``.jsonl``,
    temporary files), so the next run's shards are the only copy of those records."""
    import json

    filesystem, root = _out_fs(shards)
    files = _shard_files(filesystem, root)
    if clean:
        for stem in files["parquet"] - files["jsonl"]:
            filesystem.delete_file(f"{root}/{stem}.parquet")
        for tmp in files["tmp"]:
            filesystem.delete_file(tmp)
    done: set[str] = set()
    with_parquet = sorted(files["jsonl"] & files["parquet"])
    if with_parquet:
        import pyarrow.dataset as pads

        table = pads.dataset(
            [f"{root}/{s}.parquet" for s in with_parquet], filesystem=filesystem, format="parquet"
        ).to_table(columns=["path"])
        done.update(table.column("path").to_pylist())
    for stem in sorted(files["jsonl"] - files["parquet"]):
        with filesystem.open_input_stream(f"{root}/{stem}.jsonl") as f:
            done.update(json.loads(line)["path"] for line in f.read().decode("utf-8").splitlines() if line)
    return done


def read_shards(shards: str) -> list[dict]:
    """Every record in the finished shards of ``shards`` (from the JSON Lines files), shard by shard."""
    import json

    filesystem, root = _out_fs(shards)
    records = []
    for stem in sorted(_shard_files(filesystem, root)["jsonl"]):
        with filesystem.open_input_stream(f"{root}/{stem}.jsonl") as f:
            records.extend(json.loads(line) for line in f.read().decode("utf-8").splitlines() if line)
    return records


def _write(filesystem, path: str, write) -> None:
    """``write(path)`` atomically on a local disk (a temporary file renamed); object stores' writes are."""
    from pyarrow import fs

    if not isinstance(filesystem, fs.LocalFileSystem):
        write(path)
        return
    folder, _, name = path.rpartition("/")
    tmp = f"{folder}/.{name}.{os.getpid()}.tmp"
    try:
        write(tmp)
        filesystem.move(tmp, path)
    except BaseException:
        try:
            filesystem.delete_file(tmp)
        except OSError:
            pass
        raise


# --- the actors --------------------------------------------------------------------------------------


def _read_image(photo: str, max_pixels: int | None):
    """``photo`` as RGB: a local path as the local engine reads it, a URI through pyarrow's file systems."""
    from .image_io import decode_image, load_image

    if not is_uri(photo):
        return load_image(photo, max_pixels)
    filesystem, path = _from_uri(photo)
    try:
        with filesystem.open_input_file(path) as f:
            data = f.readall()
    except FileNotFoundError:
        raise InputError(f"{photo}: no such file") from None
    except OSError as exc:
        raise InputError(f"{photo}: cannot read ({str(exc).strip().splitlines()[0][:200]})") from None
    return decode_image(data, photo, max_pixels)


class _Landmarker:
    """Builds the detector once per Ray actor (the local engine's :func:`build_detector`)."""

    def __init__(self, config):
        if config.threads:
            os.environ.setdefault("OMP_NUM_THREADS", str(config.threads))
        from .commands.detect import build_detector

        self.detector = build_detector(config)
        self.max_pixels = config.max_pixels


class _ShardWriter(_Landmarker):
    """``map_batches`` callable of ``detect --engine ray``: a batch of paths -> one shard written, one summary row."""

    def __init__(self, config, shards: str, cwd: str | None):
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)  # relative inputs mean what they mean on the driver (one machine, or a shared disk)
        super().__init__(config)
        self.filesystem, self.root = _out_fs(shards)
        self.schema = _record_schema()

    def __call__(self, batch: dict) -> dict:
        import pyarrow.parquet as pq

        from .commands.detect import image_record, record_line

        started = time.time()
        paths = [str(p) for p in batch["path"]]
        records = [image_record(self.detector, p, self.max_pixels, load=_read_image) for p in paths]
        # named by its inputs: a batch Ray runs again overwrites its own shard
        stem = "part-" + hashlib.sha1("\n".join(paths).encode("utf-8")).hexdigest()[:20]
        table = records_table(records, self.schema)
        text = "".join(record_line(r) for r in records).encode("utf-8")

        def write_jsonl(path: str) -> None:
            with self.filesystem.open_output_stream(path) as f:
                f.write(text)

        _write(
            self.filesystem,
            f"{self.root}/{stem}.parquet",
            lambda p: pq.write_table(table, p, filesystem=self.filesystem),
        )
        _write(self.filesystem, f"{self.root}/{stem}.jsonl", write_jsonl)  # last: the shard is finished
        errors = [r["error"] for r in records if "error" in r]
        return {
            "shard": np.array([stem]),
            "images": np.array([len(records)]),
            "faces": np.array([sum(len(r.get("faces", ())) for r in records)]),
            "errors": np.array([len(errors)]),
            "messages": np.array(["\n".join(errors[:MAX_ERROR_LINES])]),
            "started": np.array([started]),
            "ended": np.array([time.time()]),
            "actor": np.array([f"{os.uname().nodename}:{os.getpid()}"]),
        }


# --- the Python entry point ------------------------------------------------------------------------


def _config(
    model=None,
    detector=None,
    refine=True,
    flip=True,
    convention="ibug",
    min_face=None,
    max_megapixels=None,
    unsure_score=UNSURE_SCORE,
    turns=True,
):
    from .commands.detect import _Config
    from .detectors import DEFAULT_DETECTOR

    limit = None if not max_megapixels else int(max_megapixels * 1e6)
    return _Config(
        model,
        detector or DEFAULT_DETECTOR,
        refine,
        1,
        min_face,
        flip,
        convention,
        limit,
        unsure_score=unsure_score,
        turns=turns,
    )


class Landmarks(_Landmarker):
    """A ``map_batches`` callable class (``batch_format="pyarrow"``): adds ``faces`` (a list of faces, each
    ``box, score, keypoints, quality, landmark_scores, pose`` as in the ``facekeypoints/v1`` records) and
    ``error`` (None, or a one-line message for an image that could not be read) to a batch of images.

    ``column``: encoded images (bytes, as ``ray.data.read_binary_files`` gives; decoded by our own code,
    EXIF orientation and pixel limit included) or decoded ones (RGB arrays, as ``ray.data.read_images``
    gives); ``path_column`` names the images in error messages when present. The other arguments are
    :class:`~facekeypoints.FaceKeypointDetector`'s.
    """

    def __init__(
        self,
        column: str = "bytes",
        path_column: str = "path",
        model: str | None = None,
        detector: str | None = None,
        refine: bool = True,
        flip: bool = True,
        convention: str = "ibug",
        min_face: float | None = None,
        max_megapixels: float | None = MAX_PIXELS / 1e6,
        unsure_score: float | None = UNSURE_SCORE,
        turns: bool = True,
    ):
        super().__init__(
            _config(model, detector, refine, flip, convention, min_face, max_megapixels, unsure_score, turns)
        )
        self.column, self.path_column = column, path_column

    def __call__(self, table):
        import pyarrow as pa

        from .commands.detect import image_record
        from .image_io import decode_image, load_image

        if self.column not in table.column_names:
            raise InputError(f"no column {self.column!r} in this dataset (columns: {', '.join(table.column_names)})")
        col = table.column(self.column).combine_chunks()
        images = col.to_pylist() if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type) else None
        if images is None:
            images = list(col.to_numpy(zero_copy_only=False))
        names = (
            [str(p) for p in table.column(self.path_column).to_pylist()]
            if self.path_column in table.column_names
            else [f"row {i}" for i in range(len(images))]
        )

        def loader(image):
            def load(name: str, max_pixels: int | None):
                if isinstance(image, (bytes, bytearray, memoryview)):
                    return decode_image(bytes(image), name, max_pixels)
                return load_image(np.asarray(image))

            return load

        faces, errors = [], []
        for name, image in zip(names, images):
            record = image_record(self.detector, name, self.max_pixels, load=loader(image))
            faces.append(record.get("faces", []))
            errors.append(record.get("error"))
        table = table.append_column("faces", faces_array(faces))
        return table.append_column("error", pa.array(errors, type=pa.string()))


def add_landmarks(dataset, column: str = "bytes", *, concurrency: int | None = None, batch_size: int = 16, **options):
    """``dataset`` with landmark columns added by :class:`Landmarks` (one model per Ray actor, one CPU each).

    >>> import ray
    >>> from facekeypoints.ray_engine import add_landmarks
    >>> ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)  # columns: bytes, path
    >>> ds = add_landmarks(ds)  # + faces (box, score, keypoints 68 x [x, y] ...) and error
    >>> ds.write_parquet("s3://bucket/landmarks/")

    ``concurrency``: number of actors (default: one per CPU of the cluster); ``options`` go to
    :class:`Landmarks` (``model=``, ``detector=``, ``refine=``, ``convention=``...).
    """
    ray = import_ray()
    if concurrency is None:
        # from 1 up to one per CPU: a fixed pool holding every CPU would leave none to the tasks reading the images
        compute = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, int(ray.cluster_resources().get("CPU", 1))))
    else:
        compute = ray.data.ActorPoolStrategy(size=concurrency)
    return dataset.map_batches(
        Landmarks,
        fn_constructor_kwargs={"column": column, **options},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=compute,
        num_cpus=1,
    )


# --- the command line ------------------------------------------------------------------------------


def _check_reachable(address: str) -> None:
    """A one-line error, at once, when ``HOST:PORT`` (``ray://`` or not) takes no TCP connection
    (Ray itself would keep retrying for 30 s or more)."""
    import socket

    target = address.removeprefix("ray://").rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"--ray-address {address}: expected 'auto', 'ray://HOST:PORT' or HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise FaceKeypointsError(f"cannot reach the Ray cluster at {address} ({reason})") from None


def connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray on this machine's CPUs (None); a process
    already connected (``ray.init`` called before, as in a notebook) keeps its connection.
    Returns whether it connected here (then ``ray.shutdown()`` at the end stops or leaves what it joined)."""
    from .cpus import available_cpus

    if address not in (None, "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        # Ray turns token authentication on for a new local cluster and says so in a WARNING telling how to
        # opt out; the cluster is ours, lives as long as this command and keeps the token: no line for it
        auth_log = logging.getLogger(_RAY_AUTH_LOGGER)
        level = auth_log.level
        auth_log.setLevel(logging.ERROR)
        try:
            ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False, **quiet)
        finally:
            auth_log.setLevel(level)
        return True
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FaceKeypointsError(f"cannot join the Ray cluster at {address}: {reason}") from None
    return True


def batch_count(n_images: int, actors: int, batch_size: int) -> int:
    """How many batches (= shards) ``n_images`` are cut into: none over ``batch_size`` images, and
    :data:`BATCHES_PER_ACTOR` per actor while they keep :data:`MIN_BATCH` images, so that the actors
    finish together."""
    return max(math.ceil(n_images / batch_size), min(math.ceil(n_images / MIN_BATCH), BATCHES_PER_ACTOR * actors), 1)


def deal(paths: list[str], n_batches: int) -> list[str]:
    """``paths`` reordered so that cutting them into ``n_batches`` consecutive blocks deals them out like
    cards (batch j: paths j, j + n, j + 2n...): a run of big photos in one folder is shared among the
    batches instead of making one batch far slower than the others."""
    return [p for j in range(n_batches) for p in paths[j::n_batches]]


def _check_options(args: argparse.Namespace) -> None:
    from .commands import check_min_face
    from .detectors import available_detectors

    local_only = [f"--{o}" for o in ("json", "jsonl", "csv", "format", "out") if getattr(args, o, None)]
    if "-" in getattr(args, "photos", []):
        local_only.append("'-' (standard input)")
    if local_only:
        raise InputError(
            f"{', '.join(local_only)}: local engine only; --engine ray writes JSON Lines and Parquet to --shards DIR"
        )
    if getattr(args, "workers", 1) not in (0, 1):
        raise InputError("--workers is the local engine's; with --engine ray use --ray-actors N")
    if not args.shards:
        raise InputError("--engine ray needs --shards DIR (a folder or URI for its JSON Lines and Parquet shards)")
    if args.ray_actors < 0:
        raise InputError(f"--ray-actors must be 0 (one per CPU of the cluster) or more, got {args.ray_actors}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be 1 or more, got {args.batch_size}")
    if args.detector not in available_detectors():
        raise InputError(f"unknown face detector {args.detector!r}; valid names: {', '.join(available_detectors())}")
    check_min_face(args.min_face)


def run_detect(args: argparse.Namespace) -> int:
    """``facekeypoints detect --engine ray``: returns the exit status (1 when some inputs failed)."""
    from .commands import max_pixels
    from .commands.batch import progress_bar, say
    from .commands.detect import _Config, build_detector

    ray = import_ray()
    _check_options(args)
    config = _Config.from_args(args, 1, max_pixels(args))
    build_detector(config)  # a bad --model or detector fails here, in one line, before any cluster work
    files, problems = expand_inputs(args.photos)
    for msg in problems:
        print(f"facekeypoints: error: {msg}", file=sys.stderr, flush=True)
    filesystem, root = _out_fs(args.shards)
    try:
        done = finished_paths(args.shards)
    except OSError as exc:
        raise InputError(f"--shards {args.shards}: cannot use this folder ({str(exc).strip()[:200]})") from None
    todo = [f for f in files if f not in done]
    skipped = len(files) - len(todo)
    if not todo:
        print(f"detect --engine ray: nothing to do, all {len(files)} inputs already in {args.shards}")
        return 1 if problems else 0

    started = connect(ray, args.ray_address)
    try:
        filesystem.create_dir(root, recursive=True)
    except OSError as exc:
        if started:
            ray.shutdown()
        raise InputError(f"--shards {args.shards}: cannot make this folder ({str(exc).strip()[:200]})") from None
    images = faces = errors = 0
    busy = 0.0  # seconds the actors spent on batches
    bar = None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours, one bar for the job
        if hasattr(ctx, "print_on_execution_start"):  # newer Rays
            ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # our summary line says what its INFO lines say
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = max(1, min(args.ray_actors or cpus, len(todo)))
        n_batches = batch_count(len(todo), actors, args.batch_size)
        actors = min(actors, n_batches)  # an actor with no batch only starts, and Ray Data warns of it
        cwd = os.getcwd()
        t0 = time.perf_counter()
        # one block per batch and per shard (batch_size=None: a block is a batch); each actor holds one
        # batch in hand and one queued (no wait between batches), so a slow batch holds up little else
        ds = ray.data.from_items([{"path": p} for p in deal(todo, n_batches)], override_num_blocks=n_batches)
        ds = ds.map_batches(
            _ShardWriter,
            fn_constructor_args=(config, args.shards, cwd),
            batch_size=None,
            compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2),
            num_cpus=1,
        )
        bar = progress_bar(len(todo), args.progress, "detect (ray)")
        printed = 0
        for row in ds.iter_rows():
            images += int(row["images"])
            faces += int(row["faces"])
            errors += int(row["errors"])
            busy += float(row["ended"]) - float(row["started"])
            for msg in str(row["messages"]).splitlines():
                if printed < MAX_ERROR_LINES:
                    say(f"facekeypoints: error: {msg}", bar, sys.stderr)
                printed += 1
            if bar is not None:
                bar.update(int(row["images"]))
        seconds = time.perf_counter() - t0
    except FaceKeypointsError:
        raise
    except Exception as exc:  # noqa: BLE001 - a Ray task or actor failed: its last line, not Ray's traceback
        lines = [s for s in str(exc).strip().splitlines() if s.strip()]
        raise FaceKeypointsError(f"the Ray job failed: {lines[-1][:300] if lines else type(exc).__name__}") from None
    finally:
        if bar is not None:
            bar.close()
        if started:
            ray.shutdown()
    if errors > MAX_ERROR_LINES:
        print(
            f"facekeypoints: ... and {errors - MAX_ERROR_LINES} more errors (error records in {args.shards})",
            file=sys.stderr,
        )
    rate = images / seconds if seconds > 0 else 0.0
    note = f"; {skipped} skipped, already in the shards" if skipped else ""
    print(
        f"detect --engine ray: {images} images, {faces} faces, {errors} errors, {rate:.1f} images/s "
        f"({seconds:.1f} s, {actors} actor{'s' if actors != 1 else ''} {100 * busy / (actors * seconds or 1):.0f} % "
        f"busy){note} -> {args.shards}"
    )
    return 1 if errors or problems else 0
