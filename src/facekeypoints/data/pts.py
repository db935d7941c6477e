"""300-W style folders: ``*.pts`` landmark files beside images of the same stem.

A ``.pts`` file looks like::

    version: 1
    n_points: 68
    {
    x0 y0
    ...
    x67 y67
    }

and ``face_001.pts`` annotates ``face_001.jpg`` (or ``.png`` / ``.jpeg``) in the
same folder. Folders are searched recursively.

Coordinates: 300-W annotations are 1-based (Matlab convention: the centre of
the top-left pixel is (1, 1)). This package uses 0-based pixel coordinates
with the origin at the centre of the top-left pixel (OpenCV's convention), so
:func:`read_pts` subtracts 1 from every coordinate and :func:`write_pts` adds
it back. A file written by :func:`write_pts` is therefore a valid 300-W file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..image_io import load_image
from ..landmarks import NUM_LANDMARKS
from .udacity import Sample

#: Image extensions looked for beside a ``.pts`` file, in this order.
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG")

#: Added to 0-based coordinates to get 300-W's 1-based ones.
PTS_OFFSET = 1.0

#: Landmark convention of 300-W annotations (facekeypoints.conventions); they are mirror-consistent.
PTS_CONVENTION = "ibug"


def is_pts_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a 300-W style folder: a folder with a ``.pts`` file somewhere under it."""
    path = Path(path)
    return path.is_dir() and next(path.rglob("*.pts"), None) is not None


def read_pts(path: str | os.PathLike) -> np.ndarray:
    """Read a 68-point ``.pts`` file; returns (68, 2) float32 in 0-based pixels."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{path}: no such .pts file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None

    lines = [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1)]
    lines = [(i, ln) for i, ln in lines if ln]
    n_points = None
    body: list[tuple[int, str]] = []
    state = "header"
    for lineno, ln in lines:
        if state == "header":
            if ln == "{":
                state = "body"
                continue
            key, sep, value = ln.partition(":")
            if not sep:
                raise DataError(f"{path}:{lineno}: malformed header line {ln!r} (expected 'key: value' or '{{')")
            if key.strip() == "n_points":
                try:
                    n_points = int(value.strip())
                except ValueError:
                    raise DataError(f"{path}:{lineno}: n_points is not an integer: {value.strip()!r}") from None
        elif state == "body":
            if ln == "}":
                state = "done"
                continue
            body.append((lineno, ln))
        else:
            raise DataError(f"{path}:{lineno}: unexpected text after the closing '}}'")
    if state == "header":
        raise DataError(f"{path}: not a .pts file (no opening '{{')")
    if state == "body":
        raise DataError(f"{path}: missing the closing '}}'")
    if n_points is not None and n_points != NUM_LANDMARKS:
        raise DataError(f"{path}: n_points is {n_points}, expected {NUM_LANDMARKS}")
    if len(body) != NUM_LANDMARKS:
        raise DataError(f"{path}: found {len(body)} points, expected {NUM_LANDMARKS}")

    out = np.empty((NUM_LANDMARKS, 2), dtype=np.float32)
    for k, (lineno, ln) in enumerate(body):
        parts = ln.split()
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: malformed point line {ln!r} (expected 'x y')")
        try:
            xy = [float(parts[0]), float(parts[1])]
        except ValueError:
            raise DataError(f"{path}:{lineno}: non-numeric coordinate in {ln!r}") from None
        if not np.isfinite(xy).all():
            raise DataError(f"{path}:{lineno}: non-finite coordinate in {ln!r}")
        out[k] = xy
    return out - np.float32(PTS_OFFSET)


def write_pts(path: str | os.PathLike, keypoints: np.ndarray) -> Path:
    """Write (68, 2) 0-based keypoints as a 1-based 300-W ``.pts`` file."""
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.shape != (NUM_LANDMARKS, 2):
        raise DataError(f"{path}: expected ({NUM_LANDMARKS}, 2) keypoints, got shape {kps.shape}")
    lines = ["version: 1", f"n_points: {NUM_LANDMARKS}", "{"]
    lines += [f"{x + PTS_OFFSET:.6g} {y + PTS_OFFSET:.6g}" for x, y in kps]
    lines.append("}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _image_for(pts_path: Path) -> Path:
    for ext in IMAGE_EXTENSIONS:
        cand = pts_path.with_suffix(ext)
        if cand.is_file():
            return cand
    raise DataError(f"{pts_path}: no image beside it (looked for {pts_path.stem}.jpg/.png/.jpeg)")


class PtsDataset:
    """A folder (searched recursively) of 300-W ``.pts`` files with their images."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.exists():
            raise DataError(f"{self.root}: folder not found")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: not a folder")
        self.pts_files = sorted(self.root.rglob("*.pts"))
        if not self.pts_files:
            raise DataError(f"{self.root}: no .pts files found")

    def __len__(self) -> int:
        return len(self.pts_files)

    def annotations(self) -> list[tuple[str, np.ndarray]]:
        """``[(image path, (68, 2) float32 keypoints in 0-based pixels)]``, sorted by path."""
        return [(str(_image_for(p)), read_pts(p)) for p in self.pts_files]

    def iter_samples(self) -> Iterator[Sample]:
        """Decode each image (RGB uint8) with its keypoints; ``name`` is the path relative to the root."""
        for image_path, kps in self.annotations():
            try:
                img = load_image(image_path)
            except InputError as exc:
                raise DataError(str(exc)) from None
            name = Path(image_path).relative_to(self.root).as_posix()
            yield Sample(name, img, kps)

    def load(self) -> list[Sample]:
        return list(self.iter_samples())
