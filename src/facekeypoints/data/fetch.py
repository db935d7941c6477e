"""Download (or copy) a dataset file with resume, checksum and an atomic rename.

Only the standard library's ``urllib`` is used. The file is written to
``<dest>.part`` first and renamed to ``<dest>`` once it is complete and its
SHA-256 matches, so ``<dest>`` is never a partial or corrupt file. An
interrupted download keeps its ``.part`` and the next call resumes it with an
HTTP ``Range`` request (local copies resume by seeking).

Nothing in the package downloads on its own: this runs only when a user asks
(``facekeypoints data fetch``).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError

UDACITY_URL = (
    "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/5aea1b91_train-test-data/train-test-data.zip"
)
UDACITY_SHA256 = "9f57d49690b8cf7cdf997018439be2d8185debebfa492ebb4ad5610492f0a495"
UDACITY_FILENAME = "train-test-data.zip"

#: Environment variable that overrides :func:`default_data_dir`.
DATA_DIR_ENV = "FACEKEYPOINTS_DATA"

_CHUNK = 1 << 20
_TIMEOUT_S = 60


def default_data_dir() -> Path:
    """``$FACEKEYPOINTS_DATA`` if set, else ``~/.cache/facekeypoints/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "facekeypoints" / "data"


def default_udacity_path() -> Path:
    """Where ``facekeypoints data fetch`` puts the Udacity zip by default."""
    return default_data_dir() / UDACITY_FILENAME


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalise_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    s = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", s):
        raise DataError(f"invalid sha256 {sha256!r}: expected 64 hexadecimal digits")
    return s


def _local_path(url: str) -> Path | None:
    """The local file a ``file://`` URL or plain path names; None for a remote URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DataError(f"{url}: file URLs must name a local file (file:///path)")
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https", "ftp"):
        return None
    # No scheme, or a one-letter "scheme" that is really a Windows drive.
    if parsed.scheme == "" or len(parsed.scheme) == 1:
        return Path(url).expanduser()
    raise DataError(f"{url}: unsupported URL scheme {parsed.scheme!r} (use http(s)://, file:// or a path)")


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not enabled,
        file=sys.stderr,
        leave=True,
    )


def _copy_stream(
    src: BinaryIO, part: Path, mode: str, total: int | None, offset: int, desc: str, progress: bool
) -> int:
    """Append/write ``src`` to ``part``; returns the bytes now in ``part``."""
    written = offset
    with open(part, mode) as out, _progress_bar(total, offset, desc, progress) as bar:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return written


def _copy_local(src_path: Path, part: Path, desc: str, progress: bool) -> None:
    if not src_path.exists():
        raise DataError(f"{src_path}: no such file")
    if not src_path.is_file():
        raise DataError(f"{src_path}: not a file")
    size = src_path.stat().st_size
    offset = part.stat().st_size if part.exists() else 0
    if offset > size:
        offset = 0  # the .part is not a prefix of this file: start over
    try:
        with open(src_path, "rb") as src:
            src.seek(offset)
            _copy_stream(src, part, "ab" if offset else "wb", size, offset, desc, progress)
    except OSError as exc:
        raise DataError(f"{src_path}: cannot copy to {part} ({exc.strerror or exc})") from None


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)", value or "")
    return int(m.group(1)) if m else None


def _content_range_total(value: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+[^/]*/(\d+)", value or "")
    return int(m.group(1)) if m else None


def _open_url(url: str, offset: int):
    from .. import __version__

    req = urllib.request.Request(url, headers={"User-Agent": f"facekeypoints/{__version__}"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(req, timeout=_TIMEOUT_S)


def _download(url: str, part: Path, desc: str, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    try:
        try:
            resp = _open_url(url, offset)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not offset:
                raise
            # Range not satisfiable: the .part is already complete, or longer than the file.
            total = _content_range_total(exc.headers.get("Content-Range") if exc.headers else None)
            if total == offset:
                return
            part.unlink()
            offset = 0
            resp = _open_url(url, 0)
        with resp:
            status = resp.status
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if offset and status == 206 and _content_range_start(resp.headers.get("Content-Range")) == offset:
                mode = "ab"
            else:
                # The server ignored Range (200) or answered an unexpected range: restart from zero.
                offset, mode = 0, "wb"
            total = None if length is None else offset + length
            written = _copy_stream(resp, part, mode, total, offset, desc, progress)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: download failed (HTTP {exc.code} {exc.reason})") from None
    except urllib.error.URLError as exc:
        raise DataError(f"{url}: cannot download ({exc.reason}); run again to resume") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{url}: download interrupted ({exc}); run again to resume from {part}") from None
    if total is not None and written != total:
        raise DataError(f"{url}: incomplete download ({written} of {total} bytes); run again to resume from {part}")


def fetch(
    url: str = UDACITY_URL,
    dest_path: str | os.PathLike | None = None,
    sha256: str | None = None,
    progress: bool = True,
    from_path: str | os.PathLike | None = None,
) -> Path:
    """Download ``url`` (or copy ``from_path``) to ``dest_path``; returns the final path.

    ``url`` may be ``http(s)://``, ``file://`` or a plain local path.
    ``from_path``, when given, is a local file copied instead of ``url`` (an
    offline copy of the download). ``dest_path`` defaults to
    :func:`default_udacity_path`; an existing folder gets the source's file name.

    With ``sha256``, an already-present ``dest_path`` whose checksum matches is
    returned without downloading, and a new file is verified before it is
    renamed into place; on a mismatch the ``.part`` is removed and
    :class:`DataError` names the file and both hashes. Without ``sha256`` an
    existing ``dest_path`` is returned as is.
    """
    want = _normalise_sha256(sha256)
    src_local = Path(from_path).expanduser() if from_path is not None else _local_path(str(url))
    source_name = src_local.name if src_local is not None else Path(urllib.parse.urlparse(str(url)).path).name

    dest = Path(dest_path).expanduser() if dest_path is not None else default_udacity_path()
    if dest.is_dir():
        dest = dest / (source_name or UDACITY_FILENAME)

    if dest.is_file():
        if want is None or sha256_file(dest) == want:
            return dest
        if progress:
            print(f"{dest}: checksum does not match, downloading again", file=sys.stderr)

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest.parent}: cannot create folder ({exc.strerror or exc})") from None
    part = dest.with_name(dest.name + ".part")

    if src_local is not None:
        _copy_local(src_local, part, dest.name, progress)
    else:
        _download(str(url), part, dest.name, progress)

    if want is not None:
        got = sha256_file(part)
        if got != want:
            part.unlink(missing_ok=True)
            origin = src_local if src_local is not None else url
            raise DataError(f"{dest}: checksum mismatch for {origin} (expected sha256 {want}, got {got}); removed it")
    os.replace(part, dest)
    return dest


__all__ = [
    "DATA_DIR_ENV",
    "UDACITY_FILENAME",
    "UDACITY_SHA256",
    "UDACITY_URL",
    "default_data_dir",
    "default_udacity_path",
    "fetch",
    "sha256_file",
]
