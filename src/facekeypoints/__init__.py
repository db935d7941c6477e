"""facekeypoints: find faces and place the 68 iBUG landmarks on each.

>>> import facekeypoints as fk
>>> faces = fk.FaceKeypointDetector()("photo.jpg")   # list[Face]: .box, .score, .keypoints (68, 2) pixels

Submodules (``fk.align``, ``fk.video``, ``fk.models``, ``fk.server``...) are imported on first
access, so ``import facekeypoints`` stays light: it never imports torch or FastAPI.
"""

import importlib as _importlib
import importlib.util as _importlib_util
import pkgutil as _pkgutil

from .image_io import load_image
from .pipeline import Face, FaceKeypointDetector

__version__ = "0.3.0"

__all__ = ["FaceKeypointDetector", "Face", "load_image", "__version__"]


def __getattr__(name: str):
    """``facekeypoints.<submodule>`` without importing it first: imported here on first access."""
    if not name.startswith("_"):
        try:
            found = _importlib_util.find_spec(f"{__name__}.{name}") is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return _importlib.import_module(f"{__name__}.{name}")  # also sets it as an attribute here
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and its submodules' (for completion), none of them imported."""
    subs = {m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return sorted(set(globals()) | subs)
