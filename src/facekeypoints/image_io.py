"""Load, decode and validate images. Everything returned is RGB uint8 H x W x 3."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

ImageLike = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray

#: Largest image accepted, in pixels (width * height).
MAX_PIXELS = 40_000_000


def _to_rgb_uint8(img: np.ndarray, name: str) -> np.ndarray:
    if img.dtype == np.uint16:
        img = (img / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{name}: unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    raise InputError(f"{name}: expected an H x W, H x W x 3 or H x W x 4 image, got shape {img.shape}")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, ...) to RGB uint8, EXIF orientation applied."""
    if len(data) == 0:
        raise InputError(f"{name}: empty file (0 bytes)")
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{name}: not a readable image")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return check_image(_to_rgb_uint8(img, name), name)


def check_image(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an RGB uint8 array's size; returns it unchanged."""
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"{name}: empty image")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise InputError(
            f"{name}: image is {img.shape[1]}x{img.shape[0]}, over the {MAX_PIXELS // 1_000_000} megapixel limit"
        )
    return img


def load_image(source: ImageLike) -> np.ndarray:
    """Load an image from a path, encoded bytes or an array.

    Returns RGB uint8 (H, W, 3). Arrays are taken as RGB (or RGBA / gray) and
    converted; paths and bytes are decoded. Raises :class:`InputError` with a
    one-line message for a missing, empty, unreadable or oversized image.
    """
    if isinstance(source, np.ndarray):
        return check_image(np.ascontiguousarray(_to_rgb_uint8(source, "array")), "array")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), "image bytes")
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path))
