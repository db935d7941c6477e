"""Writing results safely: atomic file writes, pictures, input protection, one-line error messages.

Shared by the command-line verbs, the web service and model export.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError

#: Suffixes of the pictures we read from folders and write.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def _default_mode() -> int:
    """Permission bits of a newly created file under the process umask (what ``open`` would give)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    ``mode``: permission bits of the finished file (None: those of a file created normally,
    not the private 0600 of the temporary file).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def encode_image(rgb: np.ndarray, suffix: str = ".png") -> bytes:
    """Encode an RGB uint8 image (format from ``suffix``) to bytes."""
    import cv2

    ok, buf = cv2.imencode(suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot encode a picture as {suffix}")
    return buf.tobytes()


def save_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB uint8 picture atomically; the format follows the file suffix."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: unknown picture type; use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    data = encode_image(rgb, path.suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def same_file(a: Path, b: Path) -> bool:
    """Whether both paths exist and are the same file (links included)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def name_file(msg: str, path: str) -> str:
    """``msg`` as one line that names ``path`` (prefixed with it unless it already says it)."""
    if path not in msg and str(Path(path)) not in msg:
        msg = f"{path}: {msg}"
    return " ".join(msg.split())
