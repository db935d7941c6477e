"""The filter interface: ``filter(image, faces) -> new image``, drawn one face at a time."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError
from ..landmarks import NUM_LANDMARKS


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as an RGB uint8 (H, W, 3) array, or a one-line :class:`InputError`."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"filters need an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    return img


def face_keypoints(faces) -> list[np.ndarray]:
    """(68, 2) float64 keypoints of each face.

    ``faces`` is a list of objects with ``.keypoints`` (such as :class:`facekeypoints.Face`),
    a list of (68, 2) arrays, one (N, 68, 2) array, or None (no faces).
    """
    if faces is None:
        return []
    if isinstance(faces, np.ndarray):
        arr = np.asarray(faces, dtype=np.float64)
        if arr.shape == (NUM_LANDMARKS, 2):
            return [arr]
        if arr.ndim != 3 or arr.shape[1:] != (NUM_LANDMARKS, 2):
            raise InputError(f"faces: expected (N, 68, 2) keypoints, got shape {arr.shape}")
        return list(arr)
    if not isinstance(faces, Iterable):
        raise InputError(f"faces: expected a list of faces, got {type(faces).__name__}")
    out = []
    for i, face in enumerate(faces):
        kps = np.asarray(getattr(face, "keypoints", face), dtype=np.float64)
        if kps.shape != (NUM_LANDMARKS, 2):
            raise InputError(f"face {i}: keypoints have shape {kps.shape}, expected (68, 2)")
        out.append(kps)
    return out


class Filter:
    """Base class: subclasses draw one face in place with :meth:`draw`."""

    name: str = "filter"

    def draw(self, canvas: np.ndarray, keypoints: np.ndarray) -> None:  # pragma: no cover - abstract
        """Draw on ``canvas`` (RGB uint8, modified in place) for one face's (68, 2) keypoints."""
        raise NotImplementedError

    def __call__(self, image: np.ndarray, faces) -> np.ndarray:
        """A copy of ``image`` with the filter applied to every face; ``image`` is left untouched."""
        canvas = check_image(image).copy()
        for kps in face_keypoints(faces):
            if np.isfinite(kps).all():
                self.draw(canvas, kps)
        return canvas

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
