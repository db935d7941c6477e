"""The wheel a user installs holds what it needs and nothing else, and works on its own.

The full check builds the sdist and the wheel, runs ``twine check``, installs the wheel into a
fresh virtual environment outside the checkout and runs ``facekeypoints demo`` and ``detect``
there: ``.ci/check_wheel.py``, a step of ``.ci/run`` (about 35 s with pip's cache warm, more
without; it needs the package index for the dependencies). Here it runs only when
``FACEKEYPOINTS_CHECK_WHEEL=1``; the quick tests below always run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "facekeypoints"


def _check_wheel_module():
    spec = importlib.util.spec_from_file_location("check_wheel", ROOT / ".ci" / "check_wheel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_data_file_of_the_package_is_shipped_and_explained():
    """A new non-Python file in the package must be added to the wheel check's list and to docs/package.md."""
    data_files = _check_wheel_module().DATA_FILES
    in_source = {
        f"facekeypoints/{p.relative_to(PACKAGE).as_posix()}"
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert in_source == data_files
    page = (ROOT / "docs" / "package.md").read_text()
    for name in data_files:
        assert Path(name).name in page, f"docs/package.md does not say what {name} is for"
    pyproject = (ROOT / "pyproject.toml").read_text()
    globs = re.search(r"^facekeypoints = \[(.*)\]$", pyproject.split("[tool.setuptools.package-data]")[1], re.M)
    patterns = re.findall(r'"([^"]+)"', globs.group(1))
    for name in data_files:
        assert any(Path(name.removeprefix("facekeypoints/")).match(p) for p in patterns), f"{name} not in package-data"


def test_the_wheel_check_catches_what_a_wheel_must_not_hold():
    check = _check_wheel_module()
    good = [*sorted(check.DATA_FILES), "facekeypoints/__init__.py", "facekeypoints-0.3.0.dist-info/METADATA"]
    assert check.wheel_problems(good) == []
    assert check.wheel_problems([*good, "facekeypoints/weights/extra.npz"])
    assert check.wheel_problems([*good, "tests/test_x.py"])
    assert check.wheel_problems([*good, "facekeypoints/__pycache__/cli.cpython-311.pyc"])
    assert check.wheel_problems([g for g in good if not g.endswith(".onnx")])


@pytest.mark.skipif(
    os.environ.get("FACEKEYPOINTS_CHECK_WHEEL") != "1",
    reason="builds and installs the wheel (about 35 s, needs the package index): .ci/run runs .ci/check_wheel.py; "
    "set FACEKEYPOINTS_CHECK_WHEEL=1 to run it here",
)
def test_the_wheel_works_on_its_own():
    for module in ("build", "twine"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"'{module}' is not installed (pip install -e '.[dev]')")
    cmd = [sys.executable, str(ROOT / ".ci" / "check_wheel.py")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "wheel check passed" in res.stdout
