"""The Udacity facial keypoints layout, read from its zip or an extracted folder.

Layout: ``training/`` and ``test/`` image folders, and ``training_frames_keypoints.csv``
/ ``test_frames_keypoints.csv`` whose rows are a file name followed by 136 pixel
coordinates (x0, y0, ..., x67, y67). Images are RGBA PNG files named ``.jpg``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..image_io import decode_image
from ..landmarks import NUM_LANDMARKS

SPLITS = {"training": "training_frames_keypoints.csv", "test": "test_frames_keypoints.csv"}

#: Landmark convention of the Udacity labels (facekeypoints.conventions); not mirror-consistent.
UDACITY_CONVENTION = "udacity"


@dataclass
class Sample:
    """One annotated face: RGB uint8 image and (68, 2) float32 keypoints in its pixels."""

    name: str
    image: np.ndarray
    keypoints: np.ndarray


class _Source:
    """Reads members by relative name from a zip file or a folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if not self.root.exists():
            raise DataError(f"{self.root}: dataset not found (run `facekeypoints data fetch`)")
        if self.root.is_file():
            try:
                self._zip = zipfile.ZipFile(self.root)
                names = self._zip.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{self.root}: corrupt or unreadable zip ({exc})") from None
            csv_names = [n for n in names if n.endswith(SPLITS["training"]) or n.endswith(SPLITS["test"])]
            if csv_names:
                self._prefix = csv_names[0].rsplit("/", 1)[0] + "/" if "/" in csv_names[0] else ""
            self._names = set(names)

    def read(self, rel: str) -> bytes:
        if self._zip is not None:
            name = self._prefix + rel
            if name not in self._names:
                raise DataError(f"{self.root}: missing {rel}")
            try:
                return self._zip.read(name)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"{self.root}: corrupt member {rel} ({exc})") from None
        path = self.root / rel
        if not path.is_file():
            raise DataError(f"{path}: missing from the dataset")
        return path.read_bytes()


def parse_keypoint_csv(text: str, origin: str) -> list[tuple[str, np.ndarray]]:
    """Parse a keypoints CSV: header row, then ``name, x0, y0, ..., x67, y67``."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DataError(f"{origin}: empty CSV")
    want = 1 + 2 * NUM_LANDMARKS
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != want:
            raise DataError(f"{origin}:{lineno}: expected {want} columns (name + 136 coordinates), found {len(row)}")
        try:
            vals = np.asarray([float(v) for v in row[1:]], dtype=np.float32)
        except ValueError:
            raise DataError(f"{origin}:{lineno}: non-numeric coordinate") from None
        if not np.isfinite(vals).all():
            raise DataError(f"{origin}:{lineno}: non-finite coordinate")
        out.append((row[0], vals.reshape(NUM_LANDMARKS, 2)))
    if not out:
        raise DataError(f"{origin}: no rows")
    return out


class UdacityDataset:
    """Reader for the Udacity layout from a zip file or an extracted folder."""

    def __init__(self, root: str | Path):
        self.source = _Source(Path(root))
        self.root = Path(root)

    def annotations(self, split: str) -> list[tuple[str, np.ndarray]]:
        """``[(file name, (68, 2) keypoints)]`` of ``split`` ("training" or "test")."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        raw = self.source.read(SPLITS[split])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{self.root}/{SPLITS[split]}: not a text CSV") from None
        return parse_keypoint_csv(text, f"{self.root}/{SPLITS[split]}")

    def iter_samples(self, split: str, names: set[str] | None = None) -> Iterator[Sample]:
        """Decode the images of ``split`` (optionally only ``names``) with their keypoints."""
        for name, kps in self.annotations(split):
            if names is not None and name not in names:
                continue
            data = self.source.read(f"{split}/{name}")
            try:
                img = decode_image(data, f"{self.root}/{split}/{name}")
            except InputError as exc:
                raise DataError(str(exc)) from None
            yield Sample(name, img, kps)

    def load(self, split: str, names: set[str] | None = None) -> list[Sample]:
        return list(self.iter_samples(split, names))


def identity(name: str) -> str:
    """Person of a Udacity file name: ``Luis_Fonsi_21.jpg`` -> ``Luis_Fonsi``."""
    return name.rsplit("_", 1)[0]


def train_val_split(names: list[str], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split training file names into (train, val) by person, so no person is in both.

    Deterministic for a given ``seed``. The 770 test faces are never involved.
    """
    people = sorted({identity(n) for n in names})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(people))
    n_val = max(1, int(round(len(people) * val_fraction))) if val_fraction > 0 else 0
    val_people = {people[i] for i in order[:n_val]}
    train = [n for n in names if identity(n) not in val_people]
    val = [n for n in names if identity(n) in val_people]
    return train, val
