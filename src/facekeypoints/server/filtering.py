"""The glue to :mod:`facekeypoints.filters` (imported lazily): the names a client may ask for, and applying one.

A client's filter name is matched against the built-in names only; it is never
looked up as a path or a spec file.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from ..errors import FaceKeypointsError
from .errors import ApiError

log = logging.getLogger("facekeypoints.server")

_FILTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def filters_module():
    """:mod:`facekeypoints.filters`, or None where it is missing or broken."""
    try:
        from .. import filters
    except ImportError:
        return None
    except Exception:  # noqa: BLE001 - a broken filters module must not take the other routes down
        log.exception("cannot import facekeypoints.filters")
        return None
    return filters if callable(getattr(filters, "apply", None)) else None


def filter_names() -> list[str] | None:
    """The built-in filter names, [] without the filters module, None if it cannot list them."""
    mod = filters_module()
    if mod is None:
        return []
    for attr in ("available_filters", "available", "names", "list_filters"):
        fn = getattr(mod, attr, None)
        if callable(fn):
            try:
                return sorted(str(n) for n in fn())
            except Exception:  # noqa: BLE001 - a listing bug must not take the API down
                log.exception("filters.%s() failed", attr)
                return None
    for attr in ("FILTERS", "REGISTRY", "BUILTIN"):
        table = getattr(mod, attr, None)
        if isinstance(table, dict):
            return sorted(str(n) for n in table)
    return None


def check_filter(name: str) -> str:
    """A client's filter name -> a listed built-in name (aliases resolved); never a path or spec file."""
    if not _FILTER_NAME.match(name):
        raise ApiError(400, "invalid_parameter", "filter: a name of letters, digits, '_' and '-' (not a path)")
    if filters_module() is None:
        raise ApiError(400, "filters_unavailable", "filters are not available in this installation yet")
    names = filter_names()
    if names is None:  # a filters module that cannot list its names: accept none rather than guess
        raise ApiError(400, "filters_unavailable", "this installation's filters cannot be listed")
    aliases = getattr(filters_module(), "ALIASES", None)
    key = name.lower()
    if isinstance(aliases, dict):
        key = aliases.get(key, key)
    if key not in names:
        valid = ", ".join(names) or "(none)"
        raise ApiError(400, "unknown_filter", f"unknown filter {name!r}; valid names: {valid}")
    return key  # a built-in name: the filters module never looks it up as a file


def apply_filter(rgb: np.ndarray, faces: list, name: str) -> np.ndarray:
    """``rgb`` with the built-in filter ``name`` applied to ``faces`` (RGB uint8, same size)."""
    mod = filters_module()
    try:
        out = mod.apply(rgb, faces, name)
    except (FaceKeypointsError, KeyError, ValueError) as exc:
        raise ApiError(400, "filter_failed", f"filter {name!r}: {str(exc).strip() or type(exc).__name__}") from None
    out = np.asarray(out)
    if out.dtype != np.uint8 or out.ndim != 3 or out.shape[2] not in (3, 4):
        raise ApiError(500, "internal_error", f"filter {name!r} returned an unexpected image {out.dtype} {out.shape}")
    return np.ascontiguousarray(out[:, :, :3])
