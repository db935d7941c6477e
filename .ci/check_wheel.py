"""Check the package a user installs: build it, check it, install the wheel on its own and run it.

    python .ci/check_wheel.py [--keep DIR]

1. ``python -m build``: the sdist, then the wheel built from that sdist (so a file the sdist
   forgets fails here too);
2. ``twine check --strict`` on both (metadata, README rendering);
3. the wheel's files: exactly the data files in :data:`DATA_FILES` (each described in
   docs/package.md), Python modules only under ``facekeypoints/``, no tests, caches or build
   leftovers, and the ``facekeypoints`` command as an entry point;
4. a fresh virtual environment in a temporary folder outside the checkout, the wheel installed
   there (not editable; dependencies from the package index, through pip's usual cache; the base
   install only, so no torch), then, from another temporary folder: ``facekeypoints --version``,
   ``import facekeypoints`` (from the environment, not the checkout; torch neither installed nor
   imported), ``facekeypoints demo`` and ``facekeypoints detect`` on a sample photo, their outputs
   checked.

Exit status 0 when every check passes; otherwise 1 and the failing step's output. ``--keep DIR``
copies the checked sdist and wheel to DIR. Run from anywhere; CI runs it from .ci/run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Every file of the wheel that is not Python code, and nothing else (docs/package.md says what each is for).
DATA_FILES = {
    "facekeypoints/conventions.json",
    "facekeypoints/mean_face.json",
    "facekeypoints/weights/facekeypoints-pip-w112.onnx",
    "facekeypoints/weights/facekeypoints-pip-w112.json",
    "facekeypoints/weights/facekeypoints-pip-w112.npz",
    "facekeypoints/server/static/index.html",
    "facekeypoints/server/static/app.js",
    "facekeypoints/server/static/style.css",
}

_STEP_TIMES: list[tuple[str, float]] = []


class CheckFailed(Exception):
    pass


def run(step: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """Run ``cmd``; its stdout (stderr too on failure, in the exception)."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    _STEP_TIMES.append((step, time.perf_counter() - t0))
    if res.returncode != 0:
        raise CheckFailed(
            f"{step}: exit status {res.returncode}\n$ {' '.join(cmd)}\n{res.stdout[-4000:]}{res.stderr[-4000:]}"
        )
    return res.stdout


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def wheel_problems(names: list[str]) -> list[str]:
    """What is wrong with a wheel holding ``names`` (empty: nothing)."""
    problems = []
    package = [n for n in names if not n.startswith("facekeypoints-") or ".dist-info/" not in n]
    data = {n for n in package if not n.endswith(".py")}
    if data != DATA_FILES:
        if data - DATA_FILES:
            problems.append(
                f"files the wheel should not hold (or docs/package.md should explain): {sorted(data - DATA_FILES)}"
            )
        if DATA_FILES - data:
            problems.append(f"files missing from the wheel: {sorted(DATA_FILES - data)}")
    outside = [n for n in package if not n.startswith("facekeypoints/")]
    if outside:
        problems.append(f"files outside the facekeypoints package: {outside}")
    junk = [n for n in names if re.search(r"(__pycache__|\.pyc$|(^|/)tests?/|\.egg-info|\.orig$|\.rej$)", n)]
    if junk:
        problems.append(f"caches, tests or build leftovers: {junk}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", metavar="DIR", help="copy the checked sdist and wheel here")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="facekeypoints-wheel-"))
    try:
        check(ROOT not in tmp.parents, f"{tmp} is inside the checkout")
        dist = tmp / "dist"
        print(f"building the sdist and the wheel into {dist}", flush=True)
        run("build", [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=tmp)
        (wheel,) = dist.glob("*.whl")
        (sdist,) = dist.glob("*.tar.gz")
        run("twine check", [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], cwd=tmp)

        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        problems = wheel_problems(names)
        check(not problems, f"{wheel.name}:\n  " + "\n  ".join(problems))
        check("facekeypoints = facekeypoints.cli:main" in entry_points, "no facekeypoints command in entry_points.txt")
        version = wheel.name.split("-")[1]
        size_mb = wheel.stat().st_size / 1e6
        print(f"{wheel.name}: {len(names)} files, {size_mb:.1f} MB; {sdist.name}: {sdist.stat().st_size / 1e6:.1f} MB")

        venv = tmp / "venv"
        print(f"installing {wheel.name} into a fresh virtual environment ({venv})", flush=True)
        run("venv", [sys.executable, "-m", "venv", str(venv)], cwd=tmp)
        bindir = venv / ("Scripts" if os.name == "nt" else "bin")
        python = bindir / "python"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        run("pip install", [str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp, env=env)

        work = tmp / "work"
        work.mkdir()
        command = str(bindir / "facekeypoints")
        out = run("--version", [command, "--version"], cwd=work, env=env)
        check(
            out.startswith(f"facekeypoints {version}\nmodel facekeypoints-pip-w112 version "), f"--version said {out!r}"
        )
        probe = (
            "import importlib.util, sys, facekeypoints as fk\n"
            "print(fk.__file__)\n"
            "assert 'torch' not in sys.modules and importlib.util.find_spec('torch') is None, 'torch is there'\n"
            "from matplotlib import cbook\n"
            "print(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))\n"
        )
        module_file, sample = run("import", [str(python), "-c", probe], cwd=work, env=env).split()
        check(Path(module_file).is_relative_to(venv), f"facekeypoints was imported from {module_file}, not the venv")

        out = run("demo", [command, "demo", "--out", "demo.png"], cwd=work, env=env)
        check("1 face" in out and (work / "demo.png").stat().st_size > 10_000, f"demo said {out!r}")

        photo = work / "photo.jpg"
        shutil.copyfile(sample, photo)
        run(
            "detect",
            [command, "detect", str(photo), "--json", "faces.json", "--out", "annotated.png"],
            cwd=work,
            env=env,
        )
        doc = json.loads((work / "faces.json").read_text())
        meta = json.loads((Path(module_file).parent / "weights" / "facekeypoints-pip-w112.json").read_text())
        check(doc["model"]["version"] == meta["version"], f"detect's model {doc['model']} is not the bundled one")
        (image,) = doc["images"]
        check(len(image["faces"]) == 1, f"detect found {len(image['faces'])} faces on Grace Hopper")
        face = image["faces"][0]
        check(len(face["keypoints"]) == 68 and face["quality"] > 0.5, f"an odd face: {face}")
        check((work / "annotated.png").is_file(), "detect --out wrote no picture")

        if args.keep:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for f in (wheel, sdist):
                shutil.copy2(f, keep / f.name)
        steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in _STEP_TIMES)
        print(f"wheel check passed in {time.perf_counter() - t_start:.0f} s ({steps})")
        return 0
    except CheckFailed as exc:
        print(f"wheel check FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
