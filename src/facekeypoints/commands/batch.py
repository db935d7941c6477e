"""What the verbs that work photo by photo (detect, align, filter) share: their inputs, where their
pictures go, their progress bar and their end summary.

- Inputs: files and folders; a folder is searched recursively for pictures (:func:`expand_inputs`).
- ``--out``: a name with a picture extension (``.png``, ``.jpg``...) is one picture and needs exactly
  one input; a name with any other extension is a one-line error (``result.gif``: not a picture type we
  write); anything else is a folder (:func:`picture_targets`).
- A progress bar on stderr when it is a terminal (or ``--progress``), and, when more than one input
  failed among several, a summary naming each failure (:func:`summary`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import InputError
from ..outputs import IMAGE_SUFFIXES


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--progress / --no-progress``."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )


def expand_inputs(paths: list[str]) -> tuple[list[str], list[str]]:
    """Files to process, and one-line errors for folders holding no image.

    A folder is searched recursively for :data:`~facekeypoints.outputs.IMAGE_SUFFIXES` (any case),
    in sorted order, skipping hidden files and folders; a file is taken whatever its name (and a
    missing one fails when its turn comes, like any unreadable file).
    """
    files: list[str] = []
    problems: list[str] = []
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            files.append(p)
            continue
        found = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(
                os.path.join(root, n)
                for n in sorted(names)
                if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES
            )
        if not found:
            problems.append(f"{p}: no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files.extend(found)
    return files, problems


def out_is_one_picture(out: str | os.PathLike, n_inputs: int) -> bool:
    """Whether ``--out`` names one picture (True) or a folder (False), by the rule above; a one-line
    :class:`InputError` for an unknown extension, a picture name with several inputs, or a file
    where a folder is meant."""
    path = Path(out)
    if path.is_dir():
        return False
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if n_inputs != 1:
            raise InputError(f"--out {out} names one picture but {n_inputs} photos were given; give a folder")
        return True
    if suffix:
        raise InputError(
            f"--out {out}: {suffix} is not a picture type we write ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "give a picture name or a folder name without an extension"
        )
    if path.exists():
        raise InputError(f"--out {out}: exists and is not a folder")
    return False


def picture_targets(files: list[str], out: str | os.PathLike, label: str) -> list[Path]:
    """Where each input's picture goes: ``out`` itself when it names one picture, else
    ``out/<stem>_<label>.png`` (``_2``, ``_3``... for repeated stems)."""
    if out_is_one_picture(out, len(files)):
        return [Path(out)]
    used: set[str] = set()
    paths = []
    for f in files:
        stem = "stdin" if f == "-" else (Path(f).stem or "image")
        name, k = f"{stem}_{label}.png", 2
        while name in used:  # two inputs with the same stem from different folders
            name, k = f"{stem}_{k}_{label}.png", k + 1
        used.add(name)
        paths.append(Path(out) / name)
    return paths


def progress_bar(total: int, enabled: bool | None, verb: str):
    """A tqdm bar on stderr (None when disabled; by default only on a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="image", desc=verb, leave=False, dynamic_ncols=True)


def say(line: str, bar, file=None) -> None:
    """Print a line without breaking the progress bar."""
    file = file or sys.stdout
    if bar is not None:
        bar.write(line, file=file)
    else:
        print(line, file=file, flush=True)


def summary(failures: list[str], n_inputs: int) -> None:
    """With several inputs, the failed ones listed again at the end (stderr)."""
    if failures and n_inputs > 1:
        print(f"facekeypoints: {len(failures)} of {n_inputs} inputs failed:", file=sys.stderr)
        for msg in failures:
            print(f"  {msg}", file=sys.stderr)


def run_each(files: list[str], problems: list[str], verb: str, progress: bool | None, work) -> int:
    """Run ``work(index, path) -> line`` on every input, printing its line (or its one-line error:
    a :class:`~facekeypoints.errors.FaceKeypointsError` is that input's failure, the rest go on)
    under a progress bar, then the summary; ``problems`` are inputs that already failed. Returns
    the exit status: 1 when some input failed, else 0."""
    from ..errors import FaceKeypointsError
    from ..outputs import name_file

    failures: list[str] = []
    for msg in problems:
        failures.append(msg)
        print(f"facekeypoints: error: {msg}", file=sys.stderr, flush=True)
    bar = progress_bar(len(files), progress, verb)
    try:
        for i, path in enumerate(files):
            try:
                line = work(i, path)
            except FaceKeypointsError as exc:
                msg = name_file(str(exc), path)
                failures.append(msg)
                say(f"facekeypoints: error: {msg}", bar, sys.stderr)
            else:
                say(line, bar)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    summary(failures, len(files) + len(problems))
    return 1 if failures else 0


def plural(n: int, word: str = "face") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
