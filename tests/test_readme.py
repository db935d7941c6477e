"""The README's Python runs as written (docs/ pages: tests/test_docs.py, with the same helpers).

Every ```python block of README.md is run in a fresh namespace, in a temporary working folder
that holds the files the README names as placeholders: ``photo.jpg`` (matplotlib's Grace Hopper
portrait), ``clip.mp4`` (a few frames of it) and ``my_overlay.json`` (a small RGBA overlay spec).
Whatever a block writes lands in that folder. A block may be skipped only by a marker comment in
the block itself that says why, ``# test: skip (needs training data)``.

The dotted ``facekeypoints.x.y`` names in the README's text must resolve after a plain
``import facekeypoints`` (submodules are imported on first access).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
_SKIP = re.compile(r"#\s*test:\s*skip\b(?:\s*\((?P<reason>[^)]*)\))?")


def readme_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, dedented source) of every ```python block of ``text``, indented ones too."""
    out = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start("body")) + 1
        out.append((line, textwrap.dedent(m.group("body"))))
    return out


def _sample_photo() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _write_placeholders(folder: Path) -> None:
    """The files README snippets read, under the names the README gives them."""
    photo = _sample_photo()
    shutil.copyfile(photo, folder / "photo.jpg")
    bgr = cv2.imread(str(photo))
    h, w = bgr.shape[:2]
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    assert writer.isOpened(), "OpenCV cannot write an mp4 here"
    for i in range(6):
        writer.write(np.roll(bgr, 2 * i, axis=1))
    writer.release()
    rgba = np.zeros((40, 120, 4), np.uint8)
    cv2.circle(rgba, (30, 20), 15, (20, 20, 20, 255), -1)
    cv2.circle(rgba, (90, 20), 15, (20, 20, 20, 255), -1)
    cv2.imwrite(str(folder / "my_overlay.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    spec = {
        "image": "my_overlay.png",
        "anchors": [
            {"point": [30, 20], "landmarks": list(range(36, 42))},
            {"point": [90, 20], "landmarks": list(range(42, 48))},
        ],
    }
    (folder / "my_overlay.json").write_text(json.dumps(spec))


def run_block(source: str, where: str, folder: Path, monkeypatch, name: str) -> None:
    """Run one block as a reader would: skipped only by its own ``# test: skip (reason)`` marker,
    else in ``folder`` (made the working folder, the placeholders written there), in a fresh
    namespace called ``name``; ``where`` (``FILE:LINE``) names it in skips and tracebacks."""
    marker = _SKIP.search(source)
    if marker:
        reason = (marker.group("reason") or "").strip()
        assert reason, f"{where}: '# test: skip' needs a reason in parentheses"
        pytest.skip(f"{where}: {reason}")
    _write_placeholders(folder)
    monkeypatch.chdir(folder)
    exec(compile(source, where, "exec"), {"__name__": name})


_BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_they_are_found():
    assert len(_BLOCKS) >= 1  # the API in ten lines; the longer examples live in docs/ (tests/test_docs.py)
    indented = readme_blocks("- a list item:\n\n  ```python\n  x = 1\n  ```\n")
    assert indented == [(4, "x = 1\n")]


@pytest.mark.parametrize("line,source", _BLOCKS, ids=[f"README.md:{line}" for line, _ in _BLOCKS])
def test_readme_python_block_runs(line, source, tmp_path, monkeypatch):
    run_block(source, f"README.md:{line}", tmp_path, monkeypatch, "__readme__")


_FILE_SUFFIXES = {"png", "jpg", "json", "jsonl", "onnx", "csv", "mp4", "npz", "py"}
_NAMES = sorted(
    {
        m.group(0)
        for m in re.finditer(r"\bfacekeypoints(?:\.[A-Za-z_]\w*)+", README.read_text(encoding="utf-8"))
        if m.group(0).split(".")[1] not in _FILE_SUFFIXES
    }
)


@pytest.mark.parametrize("dotted", _NAMES)
def test_dotted_names_in_the_readme_resolve_after_import_facekeypoints(dotted):
    """``facekeypoints.align.align_face`` and the like work after ``import facekeypoints`` alone."""
    import facekeypoints

    obj = facekeypoints
    for part in dotted.split(".")[1:]:
        try:
            obj = getattr(obj, part)
        except ModuleNotFoundError as exc:  # an optional extra this installation lacks
            if (exc.name or "").split(".")[0] in ("torch", "onnx", "fastapi", "uvicorn", "multipart"):
                pytest.skip(f"{dotted} needs {exc.name}")
            raise


def test_submodules_are_reachable_from_the_package_lazily():
    import subprocess
    import sys

    code = (
        "import sys, facekeypoints as fk\n"
        "assert 'facekeypoints.align' not in sys.modules\n"
        "assert callable(fk.align.align_face) and fk.smoothing.OneEuroParams and fk.server.ServerConfig\n"
        "assert 'align' in dir(fk) and 'models' in dir(fk)\n"
        "try:\n    fk.no_such_module\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "has no attribute 'no_such_module'" in res.stdout


def test_the_readme_states_the_figures_the_tests_pin_and_the_terms():
    """The accuracy table shows what tests/test_pipeline.py pins, beside dlib's better real-photo figure,
    and the README says what the bundled model was trained on and under which terms."""
    from test_pipeline import REAL_PHOTOS_E2E_NME, UDACITY_E2E_NME, UDACITY_GT_NME

    text = README.read_text(encoding="utf-8")
    table = text.split("## How good it is", 1)[1].split("\n## ", 1)[0]
    for figure in (REAL_PHOTOS_E2E_NME, UDACITY_E2E_NME, UDACITY_GT_NME, 2.82):
        assert f"{figure:.2f} %" in table, figure
    assert "dlib is still more accurate on real photos" in table
    assert "300-W" in table and "research use only" in table and "Udacity" in table
    assert "[model card](docs/model_card.md)" in table
