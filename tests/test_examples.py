"""Every script in examples/ runs as a user runs it (a fresh process) on sample data, so none of them rots.

The sample photo is matplotlib's Grace Hopper portrait; the video a few frames of it; the ``.pts``
folder ten synthetic faces (tests/synthetic.py). Fine-tuning needs torch and is skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(EXAMPLES / name), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from matplotlib import cbook

    out = tmp_path_factory.mktemp("photo") / "grace_hopper.jpg"
    shutil.copyfile(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), out)
    return out


def test_every_example_is_tested():
    tested = {"photo_to_json.py", "webcam_filter.py", "aligned_crops.py", "finetune_pts.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_photo_to_json(photo, tmp_path):
    res = run_example("photo_to_json.py", photo, tmp_path / "missing.jpg", "--out", "faces.json", cwd=tmp_path)
    assert res.returncode == 1, res.stderr  # one input failed: said so, the rest still done
    assert "missing.jpg" in res.stderr
    doc = json.loads((tmp_path / "faces.json").read_text())
    assert doc["model"]["name"] == "facekeypoints-pip-w112" and doc["model"]["version"]
    (entry,) = doc["photos"]
    assert (entry["width"], entry["height"]) == (512, 600)
    (face,) = entry["faces"]
    kps = np.asarray(face["keypoints"])
    assert kps.shape == (68, 2) and face["quality"] >= 0.2
    x0, y0, x1, y1 = face["box"]
    assert x0 < kps[:, 0].mean() < x1 and y0 < kps[:, 1].mean() < y1


def test_webcam_filter_on_a_video_file(photo, tmp_path):
    bgr = cv2.imread(str(photo))
    h, w = bgr.shape[:2]
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for i in range(6):
        writer.write(np.roll(bgr, 3 * i, axis=1))
    writer.release()

    res = run_example("webcam_filter.py", clip, "--filter", "sunglasses", "--out", "shades.mp4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "wrote 6 frames" in res.stdout
    cap = cv2.VideoCapture(str(tmp_path / "shades.mp4"))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == bgr.shape
    assert np.abs(first.astype(int) - bgr.astype(int)).mean() > 1  # the sunglasses are drawn

    res = run_example("webcam_filter.py", clip, "--max-frames", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["frame 0: 1 face(s), ids [1]", "frame 1: 1 face(s), ids [1]"]


def test_aligned_crops(photo, tmp_path):
    res = run_example("aligned_crops.py", photo, "--out", "crops", "--size", "112", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    batch = np.load(tmp_path / "crops" / "batch.npy")
    assert batch.shape == (1, 3, 112, 112) and batch.dtype == np.float32
    assert -1.0 <= batch.min() and batch.max() <= 1.0
    index = json.loads((tmp_path / "crops" / "batch.json").read_text())
    assert index[0]["photo"] == str(photo) and (tmp_path / "crops" / index[0]["crop"]).is_file()
    crop = cv2.imread(str(tmp_path / "crops" / index[0]["crop"]))
    assert crop.shape == (112, 112, 3)


def test_finetune_on_a_pts_folder(tmp_path):
    pytest.importorskip("torch", reason="fine-tuning needs the [train] extra (torch)")
    from facekeypoints.data.pts import write_pts
    from synthetic import random_face

    folder = tmp_path / "my_faces"
    folder.mkdir()
    for i in range(10):
        img, kps = random_face(700 + i, size=128)
        cv2.imwrite(str(folder / f"face_{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        write_pts(folder / f"face_{i}.pts", kps)

    res = run_example(
        "finetune_pts.py", folder, "--epochs", "2", "--batch-size", "4", "--val-fraction", "0.2", "--out", "runs",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    model = tmp_path / "runs" / "1" / "finetuned.onnx"
    assert model.is_file() and model.with_suffix(".json").is_file() and model.with_suffix(".npz").is_file()
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["name"] == "finetuned" and meta["training_config"]["init"] == "bundled"
    scores = [line.split("NME_io") for line in res.stdout.splitlines() if "NME_io" in line]
    lines = {name.strip(): float(value.split()[0]) for name, value in scores}
    assert set(lines) == {"bundled model", "fine-tuned"}
    assert lines["fine-tuned"] < 20  # it still places the points on these faces after two epochs


def test_finetune_without_torch_names_the_extra(tmp_path):
    """Where torch is missing, the script says which extra to install (simulated by hiding torch)."""
    hide = tmp_path / "hide"
    (hide / "torch").mkdir(parents=True)
    stub = "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    (hide / "torch" / "__init__.py").write_text(stub)
    env = {**os.environ, "PYTHONPATH": f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    res = subprocess.run(
        [sys.executable, str(EXAMPLES / "finetune_pts.py"), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    assert "facekeypoints[train]" in res.stderr
