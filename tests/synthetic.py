"""Synthetic faces made by the tests themselves: a procedural 68-point template and drawings of it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facekeypoints.landmarks import EDGES


def template() -> np.ndarray:
    """A plausible frontal 68-point face in unit coordinates (x right, y down)."""
    p = np.zeros((68, 2), np.float64)
    phi = np.pi - np.pi * np.arange(17) / 16
    p[0:17] = np.c_[0.5 + 0.4 * np.cos(phi), 0.45 + 0.45 * np.sin(phi)]
    for k in range(5):
        p[17 + k] = (0.2 + 0.055 * k, 0.33 - 0.03 * np.sin(np.pi * k / 4))
        p[26 - k] = (0.8 - 0.055 * k, 0.33 - 0.03 * np.sin(np.pi * k / 4))
    p[27:31] = np.c_[np.full(4, 0.5), np.linspace(0.42, 0.58, 4)]
    p[31:36] = np.c_[np.linspace(0.43, 0.57, 5), 0.63 + 0.01 * np.array([0, 1, 2, 1, 0])]

    def eye(cx: float, sign: float) -> np.ndarray:
        # outer corner, two top points, inner corner, two bottom points (image-clockwise on the right eye)
        xs = np.array([-0.08, -0.03, 0.03, 0.08, 0.03, -0.03]) * sign
        ys = np.array([0.0, -0.03, -0.03, 0.0, 0.03, 0.03])
        return np.c_[cx + xs, 0.45 + ys]

    p[36:42] = eye(0.32, 1.0)
    left = eye(0.68, -1.0)  # built outer-first; reorder so 42 is the inner corner
    p[42:48] = left[[3, 2, 1, 0, 5, 4]]
    t = np.linspace(np.pi, 0, 7)
    p[48:55] = np.c_[0.5 + 0.12 * np.cos(t), 0.76 - 0.04 * np.sin(t)]
    t = np.linspace(0, np.pi, 7)[1:-1]
    p[55:60] = np.c_[0.5 + 0.12 * np.cos(t), 0.76 + 0.05 * np.sin(t)]
    t = np.linspace(np.pi, 0, 5)
    p[60:65] = np.c_[0.5 + 0.09 * np.cos(t), 0.76 - 0.015 * np.sin(t)]
    t = np.linspace(0, np.pi, 5)[1:-1]
    p[65:68] = np.c_[0.5 + 0.09 * np.cos(t), 0.76 + 0.015 * np.sin(t)]
    return p


def draw_face(size: tuple[int, int], keypoints: np.ndarray, seed: int = 0) -> np.ndarray:
    """RGB uint8 image of a cartoon face whose features sit on ``keypoints``."""
    h, w = size
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), rng.integers(30, 90, 3), np.uint8)
    hull = cv2.convexHull(keypoints.astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(img, hull, tuple(int(v) for v in rng.integers(150, 230, 3)))
    for a, b in EDGES:
        cv2.line(
            img,
            tuple(np.round(keypoints[a]).astype(int)),
            tuple(np.round(keypoints[b]).astype(int)),
            (40, 20, 20),
            1,
            cv2.LINE_AA,
        )
    return img


def random_face(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(image, keypoints) with the template placed at a random scale, shift and small rotation."""
    rng = np.random.default_rng(seed)
    p = template() - 0.5
    a = rng.uniform(-0.2, 0.2)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    scale = rng.uniform(0.5, 0.7) * size
    kps = (p @ rot.T) * scale + size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    kps = kps.astype(np.float32)
    return draw_face((size, size), kps, seed), kps


def write_udacity(root: Path, n_train: int = 40, n_test: int = 6, size: int = 96) -> Path:
    """A tiny Udacity-layout folder (RGBA PNGs named .jpg, CSVs of 136 coordinates)."""
    root = Path(root)
    for split, n, csv_name in (
        ("training", n_train, "training_frames_keypoints.csv"),
        ("test", n_test, "test_frames_keypoints.csv"),
    ):
        (root / split).mkdir(parents=True, exist_ok=True)
        lines = ["," + ",".join(str(i) for i in range(136))]
        for i in range(n):
            img, kps = random_face(i + (0 if split == "training" else 10_000), size)
            name = f"Person_{i % 7}_{i:02d}.jpg"
            rgba = cv2.cvtColor(img, cv2.COLOR_RGB2BGRA)
            ok, buf = cv2.imencode(".png", rgba)
            assert ok
            (root / split / name).write_bytes(buf.tobytes())
            lines.append(name + "," + ",".join(f"{v:.2f}" for v in kps.reshape(-1)))
        (root / csv_name).write_text("\n".join(lines) + "\n")
    return root
