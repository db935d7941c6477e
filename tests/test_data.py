import argparse
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from facekeypoints.commands import data as data_cmd
from facekeypoints.data import fetch as fetch_mod
from facekeypoints.data.fetch import UDACITY_SHA256, default_data_dir, default_udacity_path, fetch, sha256_file
from facekeypoints.data.pts import PtsDataset, read_pts, write_pts
from facekeypoints.data.udacity import Sample, UdacityDataset, identity, train_val_split
from facekeypoints.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_ZIP = SHARED_DATA / "train-test-data.zip"

# ---------------------------------------------------------------------------
# Fixtures: a tiny Udacity layout


TRAIN_NAMES = ["Ann_Lee_00.jpg", "Ann_Lee_01.jpg", "Bob_Ray_Day_10.jpg", "Cy_Young_20.jpg", "Cy_Young_21.jpg"]
TEST_NAMES = ["Dee_Dee_30.jpg", "Eve_Ng_40.jpg"]


def _keypoints(seed: int, w: int = 40, h: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0, w - 1, 68), rng.uniform(0, h - 1, 68)], axis=1).astype(np.float32)


def _png_rgba(seed: int, w: int = 40, h: int = 30) -> tuple[bytes, np.ndarray]:
    """An RGBA PNG (as Udacity ships them, under a .jpg name) and its RGB pixels."""
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert ok
    return buf.tobytes(), rgba[:, :, :3]


def _csv(names: list[str], kps: dict[str, np.ndarray], extra_column: bool = False) -> str:
    header = "," + ",".join(str(i) for i in range(136))
    rows = [header]
    for n in names:
        vals = [f"{v:.3f}" for v in kps[n].reshape(-1)]
        if extra_column:
            vals.append("0")
        rows.append(",".join([n] + vals))
    return "\n".join(rows) + "\n"


def _layout(extra_column: bool = False) -> tuple[dict[str, bytes], dict, dict]:
    """Member name -> bytes of a tiny Udacity layout, plus expected keypoints and pixels."""
    members: dict[str, bytes] = {}
    kps, pixels = {}, {}
    for seed, (split, names) in enumerate([("training", TRAIN_NAMES), ("test", TEST_NAMES)]):
        for k, n in enumerate(names):
            png, rgb = _png_rgba(100 * seed + k)
            members[f"{split}/{n}"] = png
            kps[n] = _keypoints(100 * seed + k)
            pixels[n] = rgb
    members["training_frames_keypoints.csv"] = _csv(TRAIN_NAMES, kps, extra_column).encode()
    members["test_frames_keypoints.csv"] = _csv(TEST_NAMES, kps).encode()
    return members, kps, pixels


def _write_folder(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture()
def udacity(tmp_path):
    members, kps, pixels = _layout()
    folder = _write_folder(tmp_path / "folder", members)
    zpath = _write_zip(tmp_path / "data.zip", members)
    return folder, zpath, kps, pixels


# ---------------------------------------------------------------------------
# Udacity reader


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_udacity_reads_zip_and_folder(udacity, kind):
    folder, zpath, kps, pixels = udacity
    ds = UdacityDataset(folder if kind == "folder" else zpath)
    train = ds.annotations("training")
    assert [n for n, _ in train] == TRAIN_NAMES
    for n, k in train:
        assert k.shape == (68, 2) and k.dtype == np.float32
        np.testing.assert_allclose(k, kps[n], atol=1e-3)
    assert [n for n, _ in ds.annotations("test")] == TEST_NAMES

    samples = ds.load("test")
    assert len(samples) == 2 and isinstance(samples[0], Sample)
    for s in samples:
        assert s.image.dtype == np.uint8 and s.image.shape == (30, 40, 3)
        np.testing.assert_array_equal(s.image, pixels[s.name])  # RGB, alpha dropped
    only = ds.load("training", names={"Cy_Young_20.jpg"})
    assert [s.name for s in only] == ["Cy_Young_20.jpg"]


def test_udacity_zip_with_a_top_folder(tmp_path):
    members, _, _ = _layout()
    zpath = _write_zip(tmp_path / "nested.zip", {f"data/{k}": v for k, v in members.items()})
    ds = UdacityDataset(zpath)
    assert len(ds.annotations("training")) == len(TRAIN_NAMES)
    assert len(ds.load("test")) == len(TEST_NAMES)


def test_udacity_wrong_column_count(tmp_path):
    members, _, _ = _layout(extra_column=True)
    ds = UdacityDataset(_write_folder(tmp_path, members))
    with pytest.raises(DataError, match="columns"):
        ds.annotations("training")


def test_udacity_corrupt_zip(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip file" * 10)
    with pytest.raises(DataError, match="bad.zip"):
        UdacityDataset(bad)


def test_udacity_missing_dataset(tmp_path):
    with pytest.raises(DataError, match="not found"):
        UdacityDataset(tmp_path / "nope.zip")


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_udacity_missing_image(tmp_path, kind):
    members, _, _ = _layout()
    del members["test/Eve_Ng_40.jpg"]
    root = _write_folder(tmp_path / "f", members) if kind == "folder" else _write_zip(tmp_path / "z.zip", members)
    ds = UdacityDataset(root)
    with pytest.raises(DataError, match="Eve_Ng_40.jpg"):
        ds.load("test")


def test_udacity_unreadable_image(tmp_path):
    members, _, _ = _layout()
    members["test/Eve_Ng_40.jpg"] = b"not an image"
    ds = UdacityDataset(_write_folder(tmp_path, members))
    with pytest.raises(DataError, match="Eve_Ng_40.jpg"):
        ds.load("test")


def test_train_val_split_by_identity_and_deterministic():
    names = [f"Person_{p:02d}_{k:02d}.jpg" for p in range(30) for k in range(3)]
    train, val = train_val_split(names, val_fraction=0.2, seed=3)
    assert sorted(train + val) == sorted(names)
    assert {identity(n) for n in train}.isdisjoint({identity(n) for n in val})
    assert len({identity(n) for n in val}) == 6
    assert train_val_split(names, val_fraction=0.2, seed=3) == (train, val)
    assert train_val_split(names, val_fraction=0.2, seed=4) != (train, val)
    assert identity("Bob_Ray_Day_10.jpg") == "Bob_Ray_Day"


# ---------------------------------------------------------------------------
# 300-W .pts


def test_pts_round_trip_and_one_based(tmp_path):
    kps = _keypoints(7)
    p = write_pts(tmp_path / "a.pts", kps)
    text = p.read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"
    # 300-W files are 1-based: the file holds our 0-based coordinates plus one.
    x, y = (float(v) for v in text[3].split())
    assert x == pytest.approx(kps[0, 0] + 1, abs=1e-4) and y == pytest.approx(kps[0, 1] + 1, abs=1e-4)
    back = read_pts(p)
    assert back.shape == (68, 2) and back.dtype == np.float32
    np.testing.assert_allclose(back, kps, atol=1e-4)


def test_pts_reads_300w_style_file(tmp_path):
    lines = ["version: 1", "n_points:  68", "{"] + [f"{i + 1}.5 {2 * i + 1}" for i in range(68)] + ["}", ""]
    p = tmp_path / "indoor_001.pts"
    p.write_text("\r\n".join(lines))
    kps = read_pts(p)
    assert kps[0].tolist() == [0.5, 0.0]
    assert kps[67].tolist() == [67.5, 134.0]


def _pts_text(n: int = 68, n_points: int = 68, bad_line: str | None = None) -> str:
    body = [f"{i}.0 {i}.0" for i in range(n)]
    if bad_line is not None:
        body[5] = bad_line
    return "\n".join(["version: 1", f"n_points: {n_points}", "{", *body, "}"]) + "\n"


@pytest.mark.parametrize(
    "text, match",
    [
        (_pts_text(n=67, n_points=68), r"found 67 points, expected 68"),
        (_pts_text(n=39, n_points=39), r"n_points is 39, expected 68"),
        (_pts_text(bad_line="1.0"), r":9: malformed point line"),
        (_pts_text(bad_line="1.0 abc"), r":9: non-numeric"),
        (_pts_text().replace("}\n", ""), r"closing"),
        ("just some text\n", r"malformed header"),
    ],
)
def test_pts_errors_name_the_file(tmp_path, text, match):
    p = tmp_path / "face.pts"
    p.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        read_pts(p)
    msg = str(info.value)
    assert str(p) in msg and "\n" not in msg


def test_pts_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing.pts"):
        read_pts(tmp_path / "missing.pts")


def test_pts_write_rejects_wrong_shape(tmp_path):
    with pytest.raises(DataError, match=r"\(68, 2\)"):
        write_pts(tmp_path / "x.pts", np.zeros((5, 2)))


def test_pts_dataset(tmp_path):
    root = tmp_path / "300w"
    (root / "sub").mkdir(parents=True)
    expected = {}
    for k, (rel, ext) in enumerate([("a", ".png"), ("b", ".jpg"), ("sub/c", ".jpeg")]):
        png, rgb = _png_rgba(k)
        img_path = root / f"{rel}{ext}"
        if ext == ".png":
            img_path.write_bytes(png)
        else:
            assert cv2.imwrite(str(img_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        kps = _keypoints(k)
        write_pts(root / f"{rel}.pts", kps)
        expected[f"{rel}{ext}"] = (kps, rgb)

    ds = PtsDataset(root)
    assert len(ds) == 3
    ann = ds.annotations()
    assert [Path(p).relative_to(root).as_posix() for p, _ in ann] == ["a.png", "b.jpg", "sub/c.jpeg"]
    for p, k in ann:
        np.testing.assert_allclose(k, expected[Path(p).relative_to(root).as_posix()][0], atol=1e-4)
    samples = ds.load()
    assert [s.name for s in samples] == ["a.png", "b.jpg", "sub/c.jpeg"]
    for s in samples:
        assert isinstance(s, Sample)
        assert s.image.dtype == np.uint8 and s.image.shape == (30, 40, 3)
    np.testing.assert_array_equal(samples[0].image, expected["a.png"][1])  # lossless PNG, RGB order


def test_pts_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        PtsDataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no .pts files"):
        PtsDataset(tmp_path)
    write_pts(tmp_path / "lonely.pts", _keypoints(0))
    with pytest.raises(DataError, match=r"lonely.pts: no image beside it"):
        PtsDataset(tmp_path).annotations()
    (tmp_path / "lonely.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="lonely.jpg"):
        PtsDataset(tmp_path).load()


# ---------------------------------------------------------------------------
# fetch


@pytest.fixture()
def payload(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
    src = tmp_path / "src" / "payload.zip"
    src.parent.mkdir()
    src.write_bytes(data)
    return src, data, hashlib.sha256(data).hexdigest()


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEKEYPOINTS_DATA", raising=False)
    assert default_data_dir() == Path.home() / ".cache" / "facekeypoints" / "data"
    monkeypatch.setenv("FACEKEYPOINTS_DATA", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    assert default_udacity_path() == tmp_path / "d" / "train-test-data.zip"


def test_fetch_file_url_with_checksum(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "out" / "deep" / "file.zip"
    got = fetch(src.as_uri(), dest, sha256=sha.upper(), progress=False)
    assert got == dest and dest.read_bytes() == data
    assert not dest.with_name("file.zip.part").exists()
    # Already present and matching: nothing is copied again (the source may even be gone).
    src.unlink()
    assert fetch(src.as_uri(), dest, sha256=sha, progress=False) == dest


def test_fetch_plain_path_and_folder_dest(tmp_path, payload):
    src, data, sha = payload
    out = tmp_path / "out"
    out.mkdir()
    got = fetch(str(src), out, sha256=sha, progress=True)
    assert got == out / "payload.zip" and got.read_bytes() == data


def test_fetch_resumes_from_part(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "file.zip"
    part = tmp_path / "file.zip.part"
    part.write_bytes(data[: len(data) // 2])
    got = fetch(src.as_uri(), dest, sha256=sha, progress=False)
    assert got.read_bytes() == data and sha256_file(got) == sha
    assert not part.exists()

    # Proof that it appended rather than restarted: a marked prefix survives (no checksum here).
    dest.unlink()
    marked = b"X" * 1000 + data[1000 : len(data) // 2]
    part.write_bytes(marked)
    fetch(src.as_uri(), dest, progress=False)
    assert dest.read_bytes() == marked + data[len(data) // 2 :]


def test_fetch_checksum_mismatch_leaves_no_file(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "file.zip"
    wrong = "0" * 64
    with pytest.raises(DataError) as info:
        fetch(src.as_uri(), dest, sha256=wrong, progress=False)
    msg = str(info.value)
    assert "file.zip" in msg and wrong in msg and sha in msg and "\n" not in msg
    assert not dest.exists() and not (tmp_path / "file.zip.part").exists()

    # A corrupt .part is thrown away too, so the next run starts clean and succeeds.
    (tmp_path / "file.zip.part").write_bytes(b"garbage" * 10)
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(src.as_uri(), dest, sha256=sha, progress=False)
    assert not dest.exists() and not (tmp_path / "file.zip.part").exists()
    assert fetch(src.as_uri(), dest, sha256=sha, progress=False).read_bytes() == data


def test_fetch_replaces_a_corrupt_existing_dest(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "file.zip"
    dest.write_bytes(b"old and wrong")
    assert fetch(src.as_uri(), dest, sha256=sha, progress=False).read_bytes() == data


def test_fetch_from_path(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "copy.zip"
    got = fetch("https://example.invalid/never-used.zip", dest, sha256=sha, progress=False, from_path=src)
    assert got == dest and dest.read_bytes() == data


def test_fetch_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        fetch((tmp_path / "missing.zip").as_uri(), tmp_path / "d.zip", progress=False)
    with pytest.raises(DataError, match="invalid sha256"):
        fetch(str(tmp_path), tmp_path / "d.zip", sha256="abc", progress=False)
    with pytest.raises(DataError, match="unsupported URL scheme"):
        fetch("gopher://x/y.zip", tmp_path / "d.zip", progress=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    data = b""
    honour_range = True
    ranges: ClassVar[list] = []

    def do_GET(self):
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = 0
        if rng and self.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(self.data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(self.data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}")
        else:
            self.send_response(200)
        body = self.data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(payload):
    _, data, _ = payload

    class Handler(_Handler):
        pass

    Handler.data, Handler.ranges, Handler.honour_range = data, [], True
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", Handler
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("honour_range", [True, False])
def test_fetch_http_resume(tmp_path, payload, server, honour_range):
    _, data, sha = payload
    base, handler = server
    handler.honour_range = honour_range
    dest = tmp_path / "file.zip"
    half = len(data) // 2
    (tmp_path / "file.zip.part").write_bytes(data[:half])
    got = fetch(f"{base}/file.zip", dest, sha256=sha, progress=False)
    assert got.read_bytes() == data
    assert handler.ranges == [f"bytes={half}-"]  # asked to resume; 200 answers restart from zero


def test_fetch_http_complete_part_and_errors(tmp_path, payload, server):
    _, data, sha = payload
    base, _ = server
    dest = tmp_path / "file.zip"
    (tmp_path / "file.zip.part").write_bytes(data)  # complete but not yet renamed
    assert fetch(f"{base}/file.zip", dest, sha256=sha, progress=False).read_bytes() == data

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DataError, match="HTTP 404"):
            fetch(f"http://127.0.0.1:{srv.server_address[1]}/x.zip", tmp_path / "x.zip", progress=False)
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------------------
# CLI verb


def _run_data_verb(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="facekeypoints data")
    data_cmd.add_arguments(parser)
    return data_cmd.run(parser.parse_args(argv))


def test_data_verb_in_process(tmp_path, payload, capsys, udacity):
    src, data, sha = payload
    dest = tmp_path / "cli.zip"
    assert _run_data_verb(["fetch", "--url", src.as_uri(), "--dest", str(dest), "--sha256", sha, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    assert dest.read_bytes() == data

    # --from defaults to the Udacity checksum, which this payload does not have.
    with pytest.raises(DataError, match=UDACITY_SHA256):
        _run_data_verb(["fetch", "--from", str(src), "--dest", str(tmp_path / "u.zip"), "--no-progress"])
    assert not (tmp_path / "u.zip").exists()
    assert _run_data_verb(["fetch", "--from", str(src), "--dest", str(tmp_path / "u.zip"), "--sha256", "none"]) == 0
    capsys.readouterr()

    _, zpath, _, _ = udacity
    assert _run_data_verb(["info", str(zpath)]) == 0
    out = capsys.readouterr().out
    assert f"training: {len(TRAIN_NAMES)} faces" in out and f"test: {len(TEST_NAMES)} faces" in out


def test_data_verb_requires_a_sub_verb():
    with pytest.raises(SystemExit):
        _run_data_verb([])


def test_cli_fetch_shared_udacity_zip(tmp_path):
    if not SHARED_ZIP.is_file():
        pytest.skip(f"shared Udacity data not present at {SHARED_ZIP}")
    dest = tmp_path / "train-test-data.zip"
    env = dict(os.environ, FACEKEYPOINTS_DATA=str(tmp_path / "cache"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "facekeypoints.cli", "data", *args]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)

    res = cli("fetch", "--from", str(SHARED_ZIP), "--dest", str(dest))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(dest)
    res = cli("info", str(dest))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert dest.stat().st_size == SHARED_ZIP.stat().st_size
    assert not dest.with_name(dest.name + ".part").exists()
    assert "training: 3462 faces" in out and "test: 770 faces" in out


def test_fetch_module_constants():
    assert fetch_mod.UDACITY_URL.startswith("https://") and fetch_mod.UDACITY_URL.endswith("train-test-data.zip")
    assert len(fetch_mod.UDACITY_SHA256) == 64
