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

    def __init__(self, model=None, detector="haar", refine=True):
        self.model, self.detector_name, self.refine = model, detector, refine

    def __call__(self, image):
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        side = min(h, w) / 2
        x0, y0 = (w - side) / 2, (h - side) / 2
        kps = (template() * side + [x0, y0]).astype(np.float32)
        return [FakeFace(np.array([x0, y0, x0 + side, y0 + side], np.float32), 0.75, kps)]

    def model_info(self) -> dict:
        return {"name": "fake", "version": "0", "detector": self.detector_name, "refine": self.refine}


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
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"facekeypoints {__version__}"


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
    assert cli.main(["detect", str(bad)]) != 0
    assert_one_line_error(capsys.readouterr().err, "bad.jpg")


def test_detect_carries_on_after_a_bad_file(tmp_path, capsys, fake_pipeline):
    good = write_photo(tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    out_json = tmp_path / "out.json"
    assert cli.main(["detect", str(bad), str(good), "--json", str(out_json)]) == 1
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, "bad.jpg")
    assert "good.png: 1 face" in captured.out
    doc = json.loads(out_json.read_text())
    assert [im["path"] for im in doc["images"]] == [str(good)]


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

    with pytest.raises(InputError):
        detect_cmd.save_image(tmp_path / "x.txt", np.zeros((4, 4, 3), np.uint8))
