"""``detect --engine ray`` (facekeypoints.ray_engine) on a local Ray with 2 CPUs, started once per session.

The tests that need Ray skip when it is not installed (CI installs the [train,serve,dev] extras; Ray
comes with [ray]); the one-line error for a missing Ray is checked either way.
"""

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints import cli
from facekeypoints.commands.demo import sample_image_path


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


HAVE_RAY = _installed("ray") and _installed("pyarrow")
needs_ray = pytest.mark.skipif(
    not HAVE_RAY, reason="ray is not installed (pip install 'facekeypoints[ray]'); CI installs only [train,serve,dev]"
)

BAD = {
    "empty.jpg": "empty file (0 bytes)",
    "notes.png": "is a text file, not an image",
    "truncated.jpg": "truncated JPEG file",
}


def _photos(root: Path) -> Path:
    """A handful of photos: a real face (matplotlib's Grace Hopper), two of them side by side, a small
    rotated copy, a picture without a face, and three bad files."""
    root.mkdir(parents=True, exist_ok=True)
    grace = cv2.imread(str(sample_image_path()))
    cv2.imwrite(str(root / "grace.jpg"), grace)
    cv2.imwrite(str(root / "two.png"), np.hstack([grace, grace[:, ::-1]]))
    sub = root / "sub"
    sub.mkdir(exist_ok=True)
    cv2.imwrite(
        str(sub / "small_turned.jpg"), cv2.rotate(cv2.resize(grace, None, fx=0.5, fy=0.5), cv2.ROTATE_90_CLOCKWISE)
    )
    cv2.imwrite(str(sub / "blank.png"), np.full((120, 160, 3), 90, np.uint8))
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("hello, not an image\n")
    data = (root / "grace.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return root


def _detect(*args: str) -> int:
    return cli.main(["detect", *args])


def _jsonl(path: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray with 2 CPUs for the whole test session; ``detect --engine ray`` in this process joins it."""
    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install 'facekeypoints[ray]')")
    import logging

    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def first_run(ray_session, tmp_path_factory):
    """The photos, the local engine's JSON Lines and one ``--engine ray`` run over them (folder + a file:// URI)."""
    base = tmp_path_factory.mktemp("ray_engine")
    photos = _photos(base / "photos")
    uri = (base / "elsewhere" / "grace_again.jpg").as_posix()
    Path(uri).parent.mkdir()
    shutil.copy(photos / "grace.jpg", uri)
    import os

    cwd = os.getcwd()
    os.chdir(base)  # relative paths in the records, as a user would type them
    try:
        local_rc = _detect("photos", "--jsonl", "local.jsonl")
        ray_rc = _detect("--engine", "ray", "photos", f"file://{uri}", "--shards", "shards", "--batch-size", "3")
    finally:
        os.chdir(cwd)
    return {"base": base, "uri": f"file://{uri}", "local_rc": local_rc, "ray_rc": ray_rc}


@needs_ray
def test_records_equal_the_local_engines(first_run, capsys):
    from facekeypoints.ray_engine import read_shards

    base = first_run["base"]
    local = _jsonl(base / "local.jsonl")
    records = read_shards(str(base / "shards"))
    ray_records = {r["path"]: r for r in records}
    assert len(records) == len(ray_records) == len(local) + 1  # each input once, the URI too
    assert {p: r for p, r in ray_records.items() if p != first_run["uri"]} == local
    assert sum(len(r.get("faces", ())) for r in local.values()) >= 3  # the test is about real detections
    again = ray_records[first_run["uri"]]
    assert {**again, "path": "photos/grace.jpg"} == local["photos/grace.jpg"]  # read through pyarrow's file system
    # the Parquet shards hold the same records, typed
    import pyarrow.parquet as pq

    rows = pq.read_table(sorted((base / "shards").glob("*.parquet"))).to_pylist()

    def without_nulls(value):
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_nulls(v) for v in value]
        return value

    assert {r["path"]: without_nulls(r) for r in rows} == ray_records
    assert len(list((base / "shards").glob("part-*.jsonl"))) >= 3  # 8 images, --batch-size 3


@needs_ray
def test_bad_images_become_error_records(first_run):
    from facekeypoints.ray_engine import read_shards

    assert first_run["ray_rc"] == first_run["local_rc"] == 1  # some inputs failed; the job went on
    records = {Path(r["path"]).name: r for r in read_shards(str(first_run["base"] / "shards"))}
    for name, message in BAD.items():
        assert set(records[name]) == {"schema", "path", "error"}
        assert records[name]["error"].startswith(f"photos/{name}: {message}")
    good = [r for n, r in records.items() if n not in BAD]
    assert all("error" not in r and r["schema"] == "facekeypoints/v1" for r in good)
    assert [len(records[n]["faces"]) for n in ("grace.jpg", "two.png", "blank.png")] == [1, 2, 0]


@needs_ray
def test_rerun_skips_finished_inputs(first_run, tmp_path, capsys, monkeypatch):
    from facekeypoints.ray_engine import finished_paths, read_shards

    base = first_run["base"]
    shards = tmp_path / "shards"
    shutil.copytree(base / "shards", shards)
    # a job that died: one shard's Parquet written but not its JSON Lines, and a temporary file
    lost = sorted(shards.glob("part-*.jsonl"))[0]
    lost_paths = set(_jsonl(lost))
    lost.unlink()
    (shards / ".part-x.jsonl.123.tmp").write_text("half")
    kept = {p.name: p.stat().st_mtime_ns for p in shards.glob("part-*")}
    kept.pop(lost.with_suffix(".parquet").name)
    shutil.copy(base / "photos" / "grace.jpg", base / "photos" / "sub" / "new.jpg")  # and one more photo since
    monkeypatch.chdir(base)
    capsys.readouterr()

    rc = _detect("--engine", "ray", "photos", first_run["uri"], "--shards", str(shards))
    out = capsys.readouterr().out
    assert rc == (1 if lost_paths & {f"photos/{n}" for n in BAD} else 0)
    assert f"detect --engine ray: {len(lost_paths) + 1} images" in out
    assert f"{8 - len(lost_paths)} skipped, already in the shards" in out
    for name, mtime in kept.items():  # finished shards untouched
        assert (shards / name).stat().st_mtime_ns == mtime
    assert not (shards / ".part-x.jsonl.123.tmp").exists()
    records = read_shards(str(shards))
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == 9 and "photos/sub/new.jpg" in paths
    assert finished_paths(str(shards)) == set(paths)
    assert len(list(shards.glob("*.parquet"))) == len(list(shards.glob("*.jsonl")))
    # no more actors than batches (an actor without one would only start, and Ray Data warns of it)
    new_shards = [p for p in shards.glob("part-*.jsonl") if p.name not in kept]
    actors = int(re.search(r"s, (\d+) actors? \d+ % busy", out).group(1))
    assert 1 <= actors <= len(new_shards)

    # everything done: nothing to run, not even Ray's job
    rc = _detect("--engine", "ray", "photos", first_run["uri"], "--shards", str(shards))
    assert rc == 0
    assert "nothing to do, all 9 inputs already in" in capsys.readouterr().out
    (base / "photos" / "sub" / "new.jpg").unlink()


@needs_ray
def test_inputs_folders_globs_lists_and_uris(tmp_path, monkeypatch):
    from facekeypoints.ray_engine import expand_inputs

    photos = _photos(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    folder, problems = expand_inputs(["photos"])
    assert problems == [] and len(folder) == 7 and folder[:2] == ["photos/empty.jpg", "photos/grace.jpg"]
    assert expand_inputs(["photos/*.jpg"])[0] == ["photos/empty.jpg", "photos/grace.jpg", "photos/truncated.jpg"]
    assert expand_inputs(["photos/**/*.png"])[0] == ["photos/notes.png", "photos/sub/blank.png", "photos/two.png"]
    Path("list.txt").write_text("# inputs\nphotos/grace.jpg\n\nphotos/sub\nphotos/grace.jpg\nmissing.jpg\n")
    listed, problems = expand_inputs(["list.txt"])
    assert listed == ["photos/grace.jpg", "photos/sub/blank.png", "photos/sub/small_turned.jpg", "missing.jpg"]
    assert expand_inputs(["nothing/*.jpg"]) == ([], ["nothing/*.jpg: matches no file"])
    uri = f"file://{photos.as_posix()}"
    by_uri, problems = expand_inputs([uri, f"{uri}/sub/*.png"])
    assert problems == [] and len(by_uri) == 7 and by_uri[0] == f"{uri}/empty.jpg"
    assert expand_inputs([f"{uri}/*.png"])[0] == [f"{uri}/notes.png", f"{uri}/two.png"]  # * stays in its folder
    assert expand_inputs([f"{uri}/**/*.png"])[0] == [f"{uri}/notes.png", f"{uri}/sub/blank.png", f"{uri}/two.png"]


@needs_ray
def test_add_landmarks_to_a_dataset(first_run, ray_session):
    import ray

    from facekeypoints.ray_engine import add_landmarks

    base = first_run["base"]
    local = _jsonl(base / "local.jsonl")
    ds = ray.data.read_binary_files(str(base / "photos"), include_paths=True)
    rows = add_landmarks(ds, concurrency=1).take_all()
    assert len(rows) == len(local)
    for row in rows:
        rel = "photos/" + Path(row["path"]).relative_to(base / "photos").as_posix()
        want = local[rel]
        if "error" in want:
            assert row["faces"] == [] and row["error"].startswith(str(base / rel))
            continue
        assert row["error"] is None
        got = [{k: v for k, v in face.items() if v is not None} for face in row["faces"]]
        assert got == want["faces"]


@needs_ray
@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_address_is_a_one_line_error(tmp_path, capsys, address):
    _photos(tmp_path / "photos")
    rc = _detect("--engine", "ray", str(tmp_path / "photos"), "--shards", str(tmp_path / "s"), "--ray-address", address)
    err = capsys.readouterr().err
    assert rc == 2
    assert err == f"facekeypoints: error: cannot reach the Ray cluster at {address} (Connection refused)\n"
    assert not (tmp_path / "s").exists()


def test_without_ray_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    rc = _detect("--engine", "ray", str(tmp_path), "--shards", str(tmp_path / "s"))
    assert rc == 2
    assert capsys.readouterr().err == (
        "facekeypoints: error: --engine ray needs the Python package 'ray' (Ray Data): "
        "pip install 'facekeypoints[ray]'\n"
    )


@needs_ray
@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--engine ray needs --shards DIR"),
        (["--shards", "s", "--jsonl", "x.jsonl"], "--jsonl: local engine only"),
        (["--shards", "s", "--workers", "2"], "--workers is the local engine's; with --engine ray use --ray-actors N"),
        (["--shards", "s", "--batch-size", "0"], "--batch-size must be 1 or more"),
    ],
)
def test_option_errors(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    assert _detect("--engine", "ray", ".", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"facekeypoints: error: {message}") and err.count("\n") == 1


def test_starting_a_local_ray_says_nothing_of_its_token(monkeypatch):
    """Ray's WARNING that it turned token authentication on for the new local cluster is not printed
    (the cluster is the command's own); its errors still are, and the logger's level is restored."""
    import logging
    import types

    from facekeypoints import ray_engine

    log = logging.getLogger(ray_engine._RAY_AUTH_LOGGER)
    heard: list[str] = []

    class Ear(logging.Handler):
        def emit(self, record):
            heard.append(record.getMessage())

    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        log.warning("Token authentication is enabled for this Ray cluster.")
        log.error("a real problem")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init)
    ear = Ear()
    log.addHandler(ear)
    try:
        monkeypatch.setattr(log, "level", logging.NOTSET)
        assert ray_engine.connect(fake, None) is True
    finally:
        log.removeHandler(ear)
    assert heard == ["a real problem"]
    assert log.level == logging.NOTSET
    assert calls and calls[0]["address"] == "local" and calls[0]["include_dashboard"] is False


def test_records_table_is_the_general_conversion(tmp_path):
    """The shards' Arrow table, built column by column, equals pyarrow's own conversion of the records:
    errors, a face found turned, one without pose or quality, and a model without landmark scores."""
    pa = pytest.importorskip("pyarrow")
    from facekeypoints.commands.detect import SCHEMA, image_record
    from facekeypoints.pipeline import FaceKeypointDetector
    from facekeypoints.ray_engine import _record_schema, faces_array, records_table

    photos = _photos(tmp_path / "photos")
    det = FaceKeypointDetector(threads=1)
    paths = sorted(str(p) for p in photos.rglob("*") if p.is_file())
    records = [image_record(det, p, None) for p in paths]
    with_faces = [r for r in records if r.get("faces")]
    assert len(with_faces) >= 3 and any("error" in r for r in records) and any(r.get("faces") == [] for r in records)
    with_faces[0]["faces"][0]["turned"] = 90
    with_faces[1]["faces"][0]["pose"] = None
    with_faces[2]["faces"][-1]["quality"] = None
    schema = _record_schema()

    def general(recs):
        return pa.Table.from_pylist([{"schema": SCHEMA, **r} for r in recs], schema=schema)

    assert records_table(records, schema).equals(general(records))
    assert records_table([], schema).equals(general([]))
    rows = [r.get("faces", []) for r in records]
    assert faces_array(rows).equals(pa.array(rows, type=schema.field("faces").type))
    for r in with_faces:  # a model without landmark scores: pyarrow's conversion, the same table
        for f in r["faces"]:
            f.pop("landmark_scores"), f.pop("quality")
    assert records_table(records, schema).equals(general(records))
