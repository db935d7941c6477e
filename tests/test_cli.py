import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints import __version__, cli
from facekeypoints.commands import detect as detect_cmd
from facekeypoints.image_io import load_image
from synthetic import template


@dataclass
class FakeFace:
    box: np.ndarray
    score: float
    keypoints: np.ndarray

    def to_dict(self) -> dict:
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
            "keypoints": [[float(x), float(y)] for x, y in self.keypoints],
        }


class FakeDetector:
    """Stands in for the ONNX pipeline: one face filling the middle half of any image."""

    def __init__(
        self,
        model=None,
        detector="yunet",
        refine=True,
        threads=None,
        flip=True,
        convention="ibug",
        unsure_score=0.3,
        turns=True,
    ):
        self.model, self.detector_name, self.refine, self.flip = model, detector, refine, flip
        self.convention, self.unsure_score, self.turns = convention, unsure_score, turns

    def __call__(self, image):
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        side = min(h, w) / 2
        x0, y0 = (w - side) / 2, (h - side) / 2
        kps = (template() * side + [x0, y0]).astype(np.float32)
        return [FakeFace(np.array([x0, y0, x0 + side, y0 + side], np.float32), 0.75, kps)]

    def model_info(self) -> dict:
        info = {"name": "fake", "version": "0", "detector": self.detector_name}
        return info | {"refine": self.refine, "flip": self.flip}


@pytest.fixture
def fake_pipeline(monkeypatch):
    module = types.ModuleType("facekeypoints.pipeline")
    module.FaceKeypointDetector = FakeDetector
    module.Face = FakeFace
    monkeypatch.setitem(sys.modules, "facekeypoints.pipeline", module)
    return FakeDetector


def write_photo(path: Path, w: int = 120, h: int = 100) -> Path:
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def test_help_lists_verbs(capsys):
    assert cli.main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for verb in cli.available_verbs():
        assert f"{verb} {cli.VERBS[verb]}" in out
    assert set(cli.available_verbs()) >= {"demo", "detect", "train", "evaluate", "export", "data"}


def test_no_verb_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_version(capsys):
    """The package version, then the bundled model's name and version from its metadata."""
    from facekeypoints.runtime import DEFAULT_MODEL

    meta = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert cli.main(["--version"]) == 0
    package, model = capsys.readouterr().out.strip().split("\n")
    assert package == f"facekeypoints {__version__}"
    assert model.startswith(f"model {meta['name']} version {meta['version']} (")
    assert "iBUG 300-W convention" in model  # the bundled model's output convention, by name


def test_version_follows_semantic_versioning():
    import re

    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__
    changelog = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text()
    assert f"## [{__version__}] - " in changelog, "CHANGELOG.md has no section for this version"
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^version = "(.*)"$', pyproject, re.M).group(1) == __version__


def test_verb_help_does_not_import_torch():
    import subprocess

    code = "import sys; from facekeypoints import cli; cli.main(['demo', '--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def assert_one_line_error(err: str, name: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("facekeypoints: error: ") and name in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["missing", "text", "empty"])
def test_detect_bad_file(tmp_path, capsys, fake_pipeline, kind):
    bad = tmp_path / "bad.jpg"
    if kind == "text":
        bad.write_text("this is not a picture\n")
    elif kind == "empty":
        bad.write_bytes(b"")
    assert cli.main(["detect", str(bad)]) == 1  # README: a bad file in a batch makes the exit status 1
    assert_one_line_error(capsys.readouterr().err, "bad.jpg")


def test_detect_carries_on_after_a_bad_file(tmp_path, capsys, fake_pipeline):
    good = write_photo(tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    out_json = tmp_path / "out.json"
    assert cli.main(["detect", str(bad), str(good), "--json", str(out_json)]) == 1
    captured = capsys.readouterr()
    first, *summary = captured.err.strip().splitlines()
    assert_one_line_error(first, "bad.jpg")
    assert summary[0] == "facekeypoints: 1 of 2 inputs failed:"
    assert len(summary) == 2 and "bad.jpg" in summary[1]
    assert "good.png: 1 face" in captured.out
    doc = json.loads(out_json.read_text())
    assert [im["path"] for im in doc["images"]] == [str(good)]
    assert [e["path"] for e in doc["errors"]] == [str(bad)] and "text file" in doc["errors"][0]["error"]


def test_detect_writes_json(tmp_path, capsys, fake_pipeline):
    photos = [write_photo(tmp_path / "a.png", 120, 100), write_photo(tmp_path / "b.jpg", 64, 80)]
    out_json = tmp_path / "sub" / "result.json"
    rc = cli.main(["detect", *map(str, photos), "--json", str(out_json), "--no-refine", "--detector", "haar"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "a.png: 1 face" in out and "b.jpg: 1 face" in out
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "facekeypoints/v1"
    assert doc["model"]["name"] == "fake" and doc["model"]["refine"] is False
    assert [(im["width"], im["height"]) for im in doc["images"]] == [(120, 100), (64, 80)]
    face = doc["images"][0]["faces"][0]
    assert len(face["box"]) == 4 and isinstance(face["score"], float)
    assert np.asarray(face["keypoints"]).shape == (68, 2)
    assert not list(out_json.parent.glob("*.tmp")), "no temporary files left behind"


def test_detect_no_refine_no_flip_reach_the_pipeline(tmp_path, capsys, fake_pipeline):
    photo = write_photo(tmp_path / "p.png")
    out = tmp_path / "r.json"
    assert cli.main(["detect", str(photo), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["model"]["flip"] is True
    assert cli.main(["detect", str(photo), "--json", str(out), "--no-flip", "--no-refine"]) == 0
    model = json.loads(out.read_text())["model"]
    assert model["flip"] is False and model["refine"] is False


def test_detect_json_to_stdout(tmp_path, capsys, fake_pipeline):
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["detect", str(photo), "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"][0]["path"] == str(photo)
    assert "p.png: 1 face" in captured.err


def test_detect_out_file_and_folder(tmp_path, capsys, fake_pipeline):
    (tmp_path / "in").mkdir()
    a = write_photo(tmp_path / "in" / "a.png")
    b = write_photo(tmp_path / "in" / "b.jpg")
    single = tmp_path / "single.jpg"
    assert cli.main(["detect", str(a), "--out", str(single)]) == 0
    assert load_image(single).shape == (100, 120, 3)
    folder = tmp_path / "pictures"
    assert cli.main(["detect", str(a), str(b), "--out", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["a_keypoints.png", "b_keypoints.png"]
    # one picture path for several photos is a user error
    assert cli.main(["detect", str(a), str(b), "--out", str(tmp_path / "x.png")]) == 2
    assert_one_line_error(capsys.readouterr().err, "x.png")


def test_detect_never_overwrites_an_input(tmp_path, capsys, fake_pipeline):
    photo = write_photo(tmp_path / "p.png")
    before = photo.read_bytes()
    assert cli.main(["detect", str(photo), "--out", str(photo)]) == 1
    assert_one_line_error(capsys.readouterr().err, "p.png")
    assert cli.main(["detect", str(photo), "--json", str(photo)]) == 2
    assert photo.read_bytes() == before


def test_detect_unique_names_for_same_stems(tmp_path, fake_pipeline):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write_photo(tmp_path / "x" / "p.png")
    b = write_photo(tmp_path / "y" / "p.png")
    assert cli.main(["detect", str(a), str(b), "--out", str(tmp_path / "o")]) == 0
    assert len(list((tmp_path / "o").iterdir())) == 2


def test_user_error_from_the_pipeline_is_one_line(tmp_path, capsys, monkeypatch, fake_pipeline):
    from facekeypoints.errors import ModelError

    def broken(*args, **kwargs):
        raise ModelError("model.onnx: model file not found")

    monkeypatch.setattr(fake_pipeline, "__init__", broken)
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["detect", str(photo), "--model", "model.onnx"]) == 2
    assert_one_line_error(capsys.readouterr().err, "model.onnx")


def test_keyboard_interrupt_exits_130(monkeypatch, fake_pipeline, tmp_path):
    def interrupted(self, image):
        raise KeyboardInterrupt

    monkeypatch.setattr(fake_pipeline, "__call__", interrupted)
    assert cli.main(["detect", str(write_photo(tmp_path / "p.png"))]) == 130


def test_demo_writes_png(tmp_path, capsys, fake_pipeline):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_image(out).shape == (600, 512, 3)
    assert "1 face" in capsys.readouterr().out


def test_demo_default_output_in_cwd(tmp_path, monkeypatch, fake_pipeline):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo"]) == 0
    assert (tmp_path / "facekeypoints_demo.png").is_file()


def test_save_image_rejects_unknown_suffix(tmp_path):
    from facekeypoints.errors import InputError
    from facekeypoints.outputs import save_image

    with pytest.raises(InputError):
        save_image(tmp_path / "x.txt", np.zeros((4, 4, 3), np.uint8))


# --- detect: folders, bad files, JSON Lines / CSV, workers -----------------------------------------


def make_folder(root: Path) -> dict[str, Path]:
    """Good pictures (one in a sub-folder) and the bad files of the issue, all made here."""
    (root / "sub").mkdir(parents=True)
    files = {
        "a": write_photo(root / "a.png", 120, 100),
        "b": write_photo(root / "sub" / "b.jpg", 64, 80),
        "empty": root / "empty.jpg",
        "text": root / "notes.jpg",
        "truncated": root / "cut.png",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a picture\n")
    files["truncated"].write_bytes(write_photo(root / "full.png").read_bytes()[:200])
    (root / "full.png").unlink()
    (root / "readme.txt").write_text("skipped: not an image suffix\n")
    (root / ".hidden.png").write_bytes(b"skipped: hidden")
    return files


def test_expand_inputs(tmp_path):
    files = make_folder(tmp_path / "in")
    (tmp_path / "none").mkdir()
    found, problems = detect_cmd.expand_inputs([str(tmp_path / "in"), str(tmp_path / "none"), "missing.png"])
    order = ("a", "truncated", "empty", "text", "b")  # sorted, the sub-folder's after the files beside it
    assert found == [str(files[k]) for k in order] + ["missing.png"]
    assert len(problems) == 1 and "none" in problems[0] and "no images" in problems[0]


def test_detect_folder_with_bad_files_jsonl_and_csv(tmp_path, capsys, fake_pipeline):
    files = make_folder(tmp_path / "in")
    jsonl, table = tmp_path / "out" / "r.jsonl", tmp_path / "out" / "r.csv"
    rc = cli.main(["detect", str(tmp_path / "in"), "--jsonl", str(jsonl), "--csv", str(table)])
    assert rc == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    # one line per bad file as it happens, then the summary naming them again
    assert [line for line in err if line.startswith("facekeypoints: error: ")] == err[:3]
    for line, key in zip(err[:3], ["truncated", "empty", "text"]):
        assert_one_line_error(line, files[key].name)
    assert err[3] == "facekeypoints: 3 of 5 inputs failed:" and len(err) == 7
    assert "a.png: 1 face" in captured.out and "b.jpg: 1 face" in captured.out

    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["path"] for r in records] == [str(files[k]) for k in ("a", "truncated", "empty", "text", "b")]
    assert all(r["schema"] == "facekeypoints/v1" for r in records)
    assert ["error" in r for r in records] == [False, True, True, True, False]
    good = records[0]
    assert (good["width"], good["height"]) == (120, 100) and len(good["faces"]) == 1
    assert np.asarray(good["faces"][0]["keypoints"]).shape == (68, 2)

    import csv

    rows = list(csv.DictReader(table.open(newline="")))
    assert list(rows[0].keys()) == list(detect_cmd.CSV_COLUMNS)
    assert [r["path"] for r in rows] == [r["path"] for r in records]
    assert [bool(r["error"]) for r in rows] == [False, True, True, True, False]
    row = rows[0]
    assert row["face"] == "0" and float(row["score"]) == 0.75
    np.testing.assert_allclose([float(row["box_x0"]), float(row["box_y1"])], good["faces"][0]["box"][::3])
    np.testing.assert_allclose([float(row["x67"]), float(row["y67"])], good["faces"][0]["keypoints"][67])
    assert not list(jsonl.parent.glob(".*.tmp")), "no temporary files left behind"


def test_detect_format_to_stdout(tmp_path, capsys, fake_pipeline):
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["detect", str(photo), "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.out.strip().splitlines()
    assert json.loads(line)["path"] == str(photo) and "p.png: 1 face" in captured.err
    assert cli.main(["detect", str(photo), "--format", "csv"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("path,width,height,face,score,box_x0") and len(out) == 2
    # two outputs cannot share stdout; --format json with --json FILE is contradictory
    assert cli.main(["detect", str(photo), "--format", "csv", "--jsonl", "-"]) == 2
    assert cli.main(["detect", str(photo), "--format", "json", "--json", str(tmp_path / "x.json")]) == 2
    capsys.readouterr()


def test_detect_image_without_faces_in_csv():
    rows = detect_cmd.csv_rows({"path": "x.png", "width": 4, "height": 3, "faces": []})
    assert rows == [["x.png", 4, 3] + [""] * (len(detect_cmd.CSV_COLUMNS) - 3)]


def test_detect_empty_folder_and_unknown_detector(tmp_path, capsys, fake_pipeline):
    (tmp_path / "nothing").mkdir()
    assert cli.main(["detect", str(tmp_path / "nothing")]) == 1
    assert_one_line_error(capsys.readouterr().err, "no images")
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["detect", str(photo), "--detector", "nope"]) == 2
    assert_one_line_error(capsys.readouterr().err, "yunet")


def test_detect_progress_bar(tmp_path, capsys, fake_pipeline):
    photos = [str(write_photo(tmp_path / f"{i}.png")) for i in range(3)]
    assert cli.main(["detect", *photos, "--progress"]) == 0
    captured = capsys.readouterr()
    assert "detect:" in captured.err and "/3 [" in captured.err
    assert all(f"{i}.png: 1 face" in captured.out for i in range(3))


def _face_summary(records):
    return [(r["path"], r.get("error", "")[:30], len(r.get("faces", []))) for r in records]


def test_detect_workers_give_the_same_results(tmp_path, capsys):
    """The real pipeline (bundled model, default detector) in one process and in two workers."""
    from matplotlib import cbook

    folder = tmp_path / "in"
    folder.mkdir()
    grace = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    for i, scale in enumerate([1.0, 0.5, 0.75]):
        small = cv2.resize(grace, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"grace{i}.jpg"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    write_photo(folder / "noise.png", 160, 120)
    (folder / "bad.jpg").write_text("nope")
    outs = {}
    for n in (1, 2):
        out = tmp_path / f"w{n}.jsonl"
        assert cli.main(["detect", str(folder), "--workers", str(n), "--jsonl", str(out)]) == 1
        outs[n] = [json.loads(line) for line in out.read_text().splitlines()]
    capsys.readouterr()
    assert _face_summary(outs[1]) == _face_summary(outs[2])
    assert [n for _, _, n in _face_summary(outs[1])] == [0, 1, 1, 1, 0]
    for a, b in zip(outs[1], outs[2]):
        for fa, fb in zip(a.get("faces", []), b.get("faces", [])):
            np.testing.assert_allclose(fa["box"], fb["box"], atol=0.02)
            np.testing.assert_allclose(fa["keypoints"], fb["keypoints"], atol=0.05)


def test_detect_min_face_finds_a_tiny_face_in_a_big_photo(tmp_path, capsys):
    """A face about 22 px across on a 2400x1800 canvas: below yunet's default search size, found with --min-face."""
    from matplotlib import cbook

    grace = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    small = cv2.resize(grace, None, fx=30 / 250, fy=30 / 250, interpolation=cv2.INTER_AREA)
    canvas = np.full((1800, 2400, 3), 200, np.uint8)
    canvas[900 : 900 + small.shape[0], 1200 : 1200 + small.shape[1]] = small
    photo = tmp_path / "crowd.png"
    cv2.imwrite(str(photo), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    counts, found = {}, {}
    for flags in ([], ["--min-face", "16"], ["--min-face", "16", "--detector", "haar"]):
        out = tmp_path / "r.jsonl"
        assert cli.main(["detect", str(photo), "--jsonl", str(out), *flags]) == 0
        found[" ".join(flags)] = json.loads(out.read_text())["faces"]
        counts[" ".join(flags)] = len(found[" ".join(flags)])
    capsys.readouterr()
    assert counts["--min-face 16"] == 1 and found["--min-face 16"][0]["score"] > 0.5
    # the default search (a copy sized for faces from 48 px) is unsure of it (score under 0.5), and reports
    # it because its landmarks fit as a face's do (quality.UNSURE_SCORE): the same points to under a pixel
    assert counts[""] == 1 and found[""][0]["score"] < 0.5 and found[""][0]["quality"] > 0.5
    apart = np.abs(np.array(found[""][0]["keypoints"]) - np.array(found["--min-face 16"][0]["keypoints"]))
    assert apart.mean() < 1.0
    # --unsure-score off: the detector's sure faces only, so this one is not read at all
    out = tmp_path / "r.jsonl"
    assert cli.main(["detect", str(photo), "--jsonl", str(out), "--unsure-score", "off"]) == 0
    record = json.loads(out.read_text())
    assert record["faces"] == []
    # haar cannot see a face this small here, whatever --min-face asks: it searches a copy at most
    # 1280 px long with its 24 px window, i.e. faces of 45 px and more on this canvas (docs/detection.md).
    assert counts["--min-face 16 --detector haar"] == 0
    # But haar takes the flag: where it finds the face (about 68 px wide), a larger --min-face hides it.
    photo = tmp_path / "small.png"
    small = cv2.resize(grace, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photo), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    for flags, expect in ((["--detector", "haar"], 1), (["--detector", "haar", "--min-face", "100"], 0)):
        out = tmp_path / "r.jsonl"
        assert cli.main(["detect", str(photo), "--jsonl", str(out), *flags]) == 0
        assert len(json.loads(out.read_text())["faces"]) == expect, flags
    capsys.readouterr()


@pytest.mark.parametrize("verb", ["detect", "align", "filter"])
def test_min_face_must_be_positive(tmp_path, capsys, verb):
    photo = write_photo(tmp_path / "p.png")
    extra = ["--filter", "sunglasses"] if verb == "filter" else []
    out = ["--out", str(tmp_path / "o")] if verb != "detect" else []
    assert cli.main([verb, str(photo), *extra, *out, "--min-face", "0"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--min-face")


def test_serve_refuses_a_non_positive_min_face(capsys):
    pytest.importorskip("uvicorn")
    assert cli.main(["serve", "--min-face", "-3"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--min-face")


def test_detect_reads_unusual_images_and_refuses_huge_ones(tmp_path, capsys, fake_pipeline):
    """16-bit PNG, CMYK JPEG and EXIF-rotated JPEG are read (rotated as viewers show it); an image over
    ``--max-megapixels`` is refused from its header."""
    from test_image_io import marked_rgb, png_header_only, with_exif

    folder = tmp_path / "in"
    folder.mkdir()
    deep = marked_rgb(100, 120).astype(np.uint16) * 257
    assert cv2.imwrite(str(folder / "deep.png"), deep)
    ok, jpg = cv2.imencode(".jpg", marked_rgb(100, 120))
    (folder / "rotated.jpg").write_bytes(with_exif(jpg.tobytes(), 6))
    (folder / "huge.png").write_bytes(png_header_only(10000, 5000))
    expected = {"deep.png": (120, 100), "rotated.jpg": (100, 120)}
    try:
        from PIL import Image

        Image.fromarray(marked_rgb(100, 120)).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
        expected["cmyk.jpg"] = (120, 100)
    except ImportError:
        pass
    out = tmp_path / "r.jsonl"
    assert cli.main(["detect", str(folder), "--jsonl", str(out), "--max-megapixels", "40"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert_one_line_error(err[0], "huge.png")
    assert "10000x5000" in err[0] and "megapixel" in err[0]
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert "error" in records.pop("huge.png")
    assert {name: (r["width"], r["height"]) for name, r in records.items()} == expected


def test_written_pictures_have_normal_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the result gets the usual umask bits."""
    import os

    from facekeypoints.outputs import save_image

    umask = os.umask(0)
    os.umask(umask)
    save_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_demo_draws_the_real_landmarks_and_leaves_the_rest_alone(tmp_path, capsys):
    """The real demo (bundled model on matplotlib's Grace Hopper) against the real detector's own answer.

    ``demo`` draws each face's box, the landmark contours and a filled dot (``draw.POINT_COLOR``, radius
    face size / 90, about 2.3 px here) on every landmark, and writes a lossless PNG: every landmark's
    pixel must be that dot's colour, and pixels well away from the face exactly those of the photo.
    """
    import facekeypoints
    from facekeypoints.commands.demo import sample_image_path
    from facekeypoints.draw import POINT_COLOR

    out = tmp_path / "d.png"
    assert cli.main(["demo", "--out", str(out)]) == 0
    assert "grace_hopper.jpg: 1 face" in capsys.readouterr().out
    photo = load_image(sample_image_path())
    drawn = load_image(out)
    assert drawn.shape == photo.shape
    (face,) = facekeypoints.FaceKeypointDetector()(photo)
    kps = np.asarray(face.keypoints, np.float64)
    xs, ys = np.round(kps).astype(int).T
    diff = np.abs(drawn.astype(int) - photo.astype(int)).sum(axis=2)

    # every landmark: a dot of the point colour where the photo had something else
    off = np.abs(drawn[ys, xs].astype(int) - POINT_COLOR).max(axis=1)
    assert (off <= 10).all(), f"landmarks without their dot: {np.flatnonzero(off > 10).tolist()}"
    assert (np.abs(photo[ys, xs].astype(int) - POINT_COLOR).max(axis=1) > 40).all()
    # the box: its top edge, a line a pixel or so wide, is drawn across its width
    x0, y0, x1, y1 = np.asarray(face.box, np.float64)
    top = int(round(y0))
    assert diff[top - 1 : top + 2, int(x0) + 5 : int(x1) - 5].max(axis=0).min() > 40
    # far from the face (10 px, 5 % of its size, beyond the box and the landmarks): the photo, unchanged
    lo = np.minimum(kps.min(axis=0), [x0, y0]) - 10
    hi = np.maximum(kps.max(axis=0), [x1, y1]) + 10
    h, w = photo.shape[:2]
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    near = (gx >= lo[0]) & (gx <= hi[0]) & (gy >= lo[1]) & (gy <= hi[1])
    assert near.mean() < 0.25  # most of the photo is being compared
    assert not diff[~near].any(), f"{np.count_nonzero(diff[~near])} pixels changed far from the face"


def test_import_facekeypoints_stays_light():
    """``import facekeypoints`` loads neither torch nor FastAPI (its submodules are imported on first use)."""
    import subprocess

    code = "import sys, facekeypoints; print(sorted({'torch', 'fastapi', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_export_without_torch_names_the_extra(tmp_path):
    """``export`` without torch installed said ModuleNotFoundError; now it names the extra, as ``train`` does."""
    import subprocess

    code = (
        "import sys; sys.modules['torch'] = None\n"  # import torch -> ModuleNotFoundError
        "from facekeypoints import cli\n"
        f"raise SystemExit(cli.main(['export', {str(tmp_path / 'run')!r}, '--out', {str(tmp_path / 'm.onnx')!r}]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2
    assert_one_line_error(res.stderr, "pip install 'facekeypoints[train]'")
    assert "'torch'" in res.stderr and not (tmp_path / "m.onnx").exists()


def test_detect_turned_search_and_its_opt_out(tmp_path, capsys):
    """Grace on her side: found by the turned search (and marked so) by default; --no-turns reads the
    photo upright only, and the record's model block says which search ran."""
    from matplotlib import cbook

    grace = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    photo = tmp_path / "side.png"
    cv2.imwrite(str(photo), cv2.cvtColor(np.ascontiguousarray(np.rot90(grace)), cv2.COLOR_RGB2BGR))
    records = {}
    for flags in ([], ["--no-turns"]):
        out = tmp_path / "r.json"
        assert cli.main(["detect", str(photo), "--json", str(out), *flags]) == 0
        records[" ".join(flags)] = json.loads(out.read_text())
    capsys.readouterr()
    found, upright = records[""], records["--no-turns"]
    assert found["model"]["turns"] is True and upright["model"]["turns"] is False
    (face,) = found["images"][0]["faces"]
    assert face["turned"] == 270 and face["quality"] > 0.5
    assert all("turned" not in f and f["quality"] < face["quality"] for f in upright["images"][0]["faces"])


@pytest.mark.parametrize("value", ["2", "-0.1", "abc", "nan"])
def test_unsure_score_must_be_a_score_or_off(tmp_path, capsys, value):
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["detect", str(photo), "--unsure-score", value]) == 2
    assert "--unsure-score: expected a score from 0 to 1 or 'off'" in capsys.readouterr().err
