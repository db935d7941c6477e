"""What the per-face timing benches share (pipeline_cost.py, threads_busy.py): the faces they time
and one timed round. Importing it changes nothing (no thread settings)."""

from __future__ import annotations

import time

import numpy as np

from facekeypoints.data.pts import PtsDataset
from facekeypoints.geometry import keypoint_box


def true_box_faces(folder: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` faces spread evenly over a .pts folder: (RGB image, (1, 4) tight box of its true points)."""
    ds = PtsDataset(folder)
    samples = ds.load()[:: max(1, len(ds) // n)][:n]
    return [(s.image, keypoint_box(s.keypoints)[None]) for s in samples]


def ms_per_face(detector, faces: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """One round of ``detector.keypoints`` over ``faces`` from their true boxes: milliseconds per face."""
    t = time.perf_counter()
    for img, box in faces:
        detector.keypoints(img, box, box="landmarks")
    return (time.perf_counter() - t) / len(faces) * 1000
