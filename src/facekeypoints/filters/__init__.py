"""Filters that follow the face: overlays (sunglasses, moustache, hat, cat, any RGBA picture) and privacy blur.

>>> from facekeypoints import FaceKeypointDetector, filters
>>> faces = FaceKeypointDetector()(rgb)
>>> out = filters.apply(rgb, faces, "sunglasses")          # a built-in name
>>> out = filters.apply(rgb, faces, "my_overlay.json")     # or a custom overlay spec (file or dict)

Images are RGB uint8 (H, W, 3); ``apply`` returns a new image and never changes
its input. ``faces`` are objects with ``.keypoints`` (68, 2) in image pixels
(such as :class:`facekeypoints.Face`), (68, 2) arrays, or one (N, 68, 2) array.
Built-in filters are rendered once and cached, so calling ``apply`` on every
frame of a video is cheap; for a spec given as a dict, build it once with
:func:`get` and call the returned filter per frame.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError
from .art import CANONICAL, SPRITES
from .base import Filter, check_image, face_keypoints
from .overlay import Anchor, Overlay, fit_similarity, load_spec, overlay_from_spec, read_rgba
from .privacy import Blur, Pixelate, face_mask, face_region

#: Every built-in filter by name: overlays drawn by our own code, then the privacy filters.
BUILTIN = {**SPRITES, "blur": Blur, "pixelate": Pixelate}

#: Other spellings accepted for built-in names.
ALIASES = {"mustache": "moustache", "glasses": "sunglasses", "pixelize": "pixelate", "mosaic": "pixelate"}

SPEC_SUFFIX = ".json"

_lock = threading.Lock()
_builtins: dict[str, Filter] = {}
_specs: dict[tuple, Filter] = {}


def names() -> list[str]:
    """Names of the built-in filters."""
    return list(BUILTIN)


def _valid() -> str:
    return f"valid filters: {', '.join(BUILTIN)}, or the path of an overlay spec ({SPEC_SUFFIX})"


def _builtin(name: str) -> Filter:
    with _lock:
        flt = _builtins.get(name)
        if flt is None:
            flt = _builtins[name] = BUILTIN[name]()
        return flt


def _spec_file(path: Path) -> Filter:
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return load_spec(path)  # gives the one-line error
    with _lock:
        flt = _specs.get(key)
    if flt is None:
        flt = load_spec(path)
        with _lock:
            if len(_specs) >= 16:
                _specs.clear()
            _specs[key] = flt
    return flt


def get(name_or_spec: str | os.PathLike | Mapping | Filter) -> Filter:
    """The filter for a built-in name, an overlay spec (path to a .json file, or a dict), or a filter object.

    Built-ins and spec files are cached (a spec file is re-read when it changes).
    Raises :class:`~facekeypoints.errors.InputError` with the valid names for an unknown one.
    """
    if isinstance(name_or_spec, Filter):
        return name_or_spec
    if isinstance(name_or_spec, Mapping):
        return overlay_from_spec(name_or_spec)
    if isinstance(name_or_spec, os.PathLike):
        return _spec_file(Path(name_or_spec))
    if not isinstance(name_or_spec, str):
        raise InputError(f"filter must be a name or an overlay spec, got {type(name_or_spec).__name__}; {_valid()}")
    key = name_or_spec.strip().lower()
    key = ALIASES.get(key, key)
    if key in BUILTIN:
        return _builtin(key)
    path = Path(name_or_spec)
    if path.suffix.lower() == SPEC_SUFFIX or path.is_file() or os.sep in name_or_spec or "/" in name_or_spec:
        return _spec_file(path)
    raise InputError(f"unknown filter '{name_or_spec}'; {_valid()}")


def apply(image: np.ndarray, faces, name_or_spec: str | os.PathLike | Mapping | Filter) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with the filter applied to every face.

    ``name_or_spec``: a built-in name (:func:`names`), the path of an overlay spec
    JSON file, a spec dict, or a filter object. A picture with no face comes back
    unchanged (as a copy).
    """
    flt = get(name_or_spec)
    return flt(image, faces)


__all__ = [
    "ALIASES",
    "Anchor",
    "BUILTIN",
    "Blur",
    "CANONICAL",
    "Filter",
    "Overlay",
    "Pixelate",
    "apply",
    "check_image",
    "face_keypoints",
    "face_mask",
    "load_for_cli",
    "face_region",
    "fit_similarity",
    "get",
    "load_spec",
    "names",
    "overlay_from_spec",
    "read_rgba",
]


def load_for_cli(name_or_spec: str | os.PathLike) -> Filter:
    """:func:`get` for a command line: an overlay's orientation warning (``Overlay.warning``) is
    printed once as ``facekeypoints: warning: ...`` on stderr instead of Python's warning format."""
    import sys
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        flt = get(name_or_spec)
    message = getattr(flt, "warning", None)
    if message:
        print(f"facekeypoints: warning: {message}", file=sys.stderr, flush=True)
    return flt
