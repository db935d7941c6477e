"""detect, align and filter take the same inputs (files, folders searched recursively), follow one
``--out`` rule (a picture name is one picture, an unknown extension an error, else a folder) and
end with the same progress bar and summary."""

import shutil

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from facekeypoints import cli

GRACE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)

VERBS = {
    "detect": [],
    "align": [],
    "filter": ["--filter", "sunglasses"],
}


def _one_line_error(err: str, *words: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("facekeypoints: error:"), err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def photos(tmp_path):
    """A folder with a photo at the top, one in a sub-folder, a hidden one and a text file."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    shutil.copy(GRACE, root / "a.jpg")
    shutil.copy(GRACE, root / "sub" / "b.jpg")
    shutil.copy(GRACE, root / ".hidden" / "c.jpg")
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.mark.parametrize("verb", VERBS)
def test_a_picture_name_is_one_picture(verb, tmp_path, capsys):
    out = tmp_path / "result.png"
    assert cli.main([verb, str(GRACE), *VERBS[verb], "--out", str(out)]) == 0
    assert out.is_file() and cv2.imread(str(out)) is not None
    assert not (tmp_path / "result.png").is_dir()
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("verb", VERBS)
def test_an_unknown_extension_is_a_one_line_error(verb, tmp_path, capsys):
    out = tmp_path / "result.gif"
    assert cli.main([verb, str(GRACE), *VERBS[verb], "--out", str(out)]) == 2
    _one_line_error(capsys.readouterr().err, "result.gif", ".gif")
    assert not out.exists()


@pytest.mark.parametrize("verb", VERBS)
def test_a_picture_name_needs_exactly_one_input(verb, tmp_path, capsys, photos):
    assert cli.main([verb, str(photos), *VERBS[verb], "--out", str(tmp_path / "one.png")]) == 2
    _one_line_error(capsys.readouterr().err, "one.png", "folder")


@pytest.mark.parametrize("verb", VERBS)
def test_folders_are_searched_recursively_with_a_progress_bar(verb, tmp_path, capsys, photos):
    out = tmp_path / "out"
    assert cli.main([verb, str(photos), *VERBS[verb], "--out", str(out), "--progress"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == [str(photos / "a.jpg"), str(photos / "sub" / "b.jpg")]
    assert all("1 face" in ln for ln in lines)
    assert "image" in captured.err  # tqdm's bar, unit "image"
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and all(name.endswith(".png") for name in written)
    assert not any("c" == name[0] for name in written)  # the hidden folder is skipped


@pytest.mark.parametrize("verb", ["align", "filter"])
def test_failures_are_listed_at_the_end(verb, tmp_path, capsys, photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    code = cli.main([verb, str(photos), str(empty), str(bad), *VERBS[verb], "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "2 of 4 inputs failed" in err
    assert f"{empty}: no images in this folder" in err and f"{bad}:" in err


def test_align_writes_further_faces_beside_a_picture_name(tmp_path, capsys):
    rgb = cv2.imread(str(GRACE))
    two = np.concatenate([rgb, rgb], axis=1)
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), two)
    out = tmp_path / "face.png"
    assert cli.main(["align", str(photo), "--out", str(out)]) == 0
    assert out.is_file() and (tmp_path / "face_1.png").is_file()
    assert "2 faces" in capsys.readouterr().out


def test_detect_reads_one_image_from_standard_input_and_caps_faces(tmp_path):
    """``detect -`` reads the image piped in; ``--max-faces N`` keeps the N largest faces."""
    import json
    import subprocess
    import sys

    rgb = cv2.imread(str(GRACE))
    small = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2))
    two = np.zeros((rgb.shape[0], rgb.shape[1] + small.shape[1], 3), np.uint8)
    two[:, : rgb.shape[1]] = rgb
    two[: small.shape[0], rgb.shape[1] :] = small
    ok, png = cv2.imencode(".png", two)
    cmd = [sys.executable, "-m", "facekeypoints", "detect", "-", "--format", "jsonl"]
    res = subprocess.run(cmd, input=png.tobytes(), capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    record = json.loads(res.stdout.decode().strip().splitlines()[-1])
    assert record["path"] == "-" and len(record["faces"]) == 2
    res = subprocess.run(cmd + ["--max-faces", "1"], input=png.tobytes(), capture_output=True, timeout=120)
    faces = json.loads(res.stdout.decode().strip().splitlines()[-1])["faces"]
    assert len(faces) == 1 and faces[0]["box"][0] < rgb.shape[1]  # the large face
    res = subprocess.run(cmd, input=b"", capture_output=True, timeout=120)
    err = res.stderr.decode().strip().splitlines()
    assert res.returncode == 2 and len(err) == 1 and "standard input is empty" in err[0]
