"""What the web service accepts, checked before any pixel is decoded.

:func:`sniff_image` identifies an upload by its first bytes (never by the
client's file name or ``Content-Type``) and reads the image's width and height
from its header, so an oversized picture is refused before a decoder allocates
memory for it. Only PNG, JPEG, WebP and BMP are accepted: the formats a browser
or phone sends, and no more decoder surface than that.

This module needs no web framework; :mod:`facekeypoints.server.errors` turns its
exceptions into HTTP answers (415, 422, 413).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field, fields

from .. import image_io as _image_io
from ..quality import UNSURE_SCORE

#: Default largest upload, in bytes (10 MiB).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Default largest image, in pixels (width * height), checked from the header: the library's own
#: default (100 megapixels), so a camera photo the CLI reads is not refused by the service.
MAX_PIXELS = _image_io.MAX_PIXELS
#: Formats accepted, by the name :func:`sniff_image` reports.
FORMATS = ("png", "jpeg", "webp", "bmp")

_ENV_PREFIX = "FACEKEYPOINTS_SERVE_"


class ImageRejected(Exception):
    """An upload refused before decoding: ``status`` (HTTP), ``code`` and a one-line ``detail``."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotAnImage(ImageRejected):
    status, code = 415, "unsupported_media_type"


class CorruptImage(ImageRejected):
    status, code = 422, "invalid_image"


class ImageTooLarge(ImageRejected):
    status, code = 413, "image_too_large"


class EmptyBody(ImageRejected):
    status, code = 400, "empty_body"


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: its format and size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _png(data: bytes) -> ImageHeader:
    # 8-byte signature, then the IHDR chunk: length (4), b"IHDR", width (4), height (4).
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise CorruptImage("the PNG image is truncated or corrupt (no IHDR header)")
    w, h = struct.unpack(">II", data[16:24])
    return ImageHeader("png", w, h)


# JPEG start-of-frame markers: C0-CF except C4 (DHT), C8 (JPG) and CC (DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> ImageHeader:
    i, n = 2, len(data)
    while True:
        while i < n and data[i] != 0xFF:  # tolerate stray bytes between segments, as libjpeg does
            i += 1
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            break
        if i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            break
        if marker in _SOF:
            if i + 7 > n:
                break
            h, w = struct.unpack(">HH", data[i + 3 : i + 7])
            return ImageHeader("jpeg", w, h)
        i += length
    raise CorruptImage("the JPEG image is truncated or corrupt (no frame header)")


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        if data[23:26] != b"\x9d\x01\x2a":
            raise CorruptImage("the WebP image is corrupt (bad VP8 frame start)")
        w, h = struct.unpack("<HH", data[26:30])
        return ImageHeader("webp", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25:
        if data[20] != 0x2F:
            raise CorruptImage("the WebP image is corrupt (bad VP8L signature)")
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("webp", w, h)
    raise CorruptImage("the WebP image is truncated or corrupt (no VP8/VP8L/VP8X header)")


def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 18:
        raise CorruptImage("the BMP image is truncated (no DIB header)")
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        if len(data) < 22:
            raise CorruptImage("the BMP image is truncated (short DIB header)")
        w, h = struct.unpack("<HH", data[18:22])
    elif dib >= 40:
        if len(data) < 26:
            raise CorruptImage("the BMP image is truncated (short DIB header)")
        w, h = struct.unpack("<ii", data[18:26])
        w, h = abs(w), abs(h)  # a negative height means top-down rows
    else:
        raise CorruptImage(f"the BMP image is corrupt (unknown DIB header size {dib})")
    return ImageHeader("bmp", w, h)


def _identify(data: bytes):
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp
    if data.startswith(b"BM"):
        return _bmp
    return None


def sniff_image(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageHeader:
    """Identify ``data`` and read its size from the header; nothing is decoded.

    Raises :class:`EmptyBody` (no bytes), :class:`NotAnImage` (not PNG, JPEG,
    WebP or BMP), :class:`CorruptImage` (a header that is truncated, malformed
    or gives a zero size) or :class:`ImageTooLarge` (over ``max_pixels``).
    """
    if len(data) == 0:
        raise EmptyBody("the request has no image (empty body)")
    parse = _identify(data)
    if parse is None:
        head = data[:8].hex(" ")
        raise NotAnImage(f"the body is not a PNG, JPEG, WebP or BMP image (it starts with bytes {head})")
    header = parse(data)
    if header.width <= 0 or header.height <= 0:
        raise CorruptImage(f"the {header.format.upper()} header gives an empty size {header.width}x{header.height}")
    if header.pixels > max_pixels:
        raise ImageTooLarge(
            f"the image is {header.width}x{header.height} ({header.pixels / 1e6:.1f} megapixels), "
            f"over the {max_pixels / 1e6:g} megapixel limit"
        )
    return header


#: Shortest API key accepted.
MIN_API_KEY_LENGTH = 16


def check_api_key(key: str, name: str) -> str:
    """``key`` if it can be an API key (16 to 4096 visible ASCII characters, no spaces); else ValueError."""
    if not key:
        raise ValueError(f"{name} is empty")
    if any(not 0x21 <= ord(c) <= 0x7E for c in key):
        raise ValueError(f"{name} must be visible ASCII characters without spaces (it is sent in a header)")
    if not MIN_API_KEY_LENGTH <= len(key) <= 4096:
        raise ValueError(
            f"{name} has {len(key)} characters; use at least {MIN_API_KEY_LENGTH}, for example the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return key


def _default_threads() -> int:
    from ..cpus import available_cpus

    return max(1, min(4, available_cpus()))


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process; every field can also come from ``FACEKEYPOINTS_SERVE_<FIELD>``.

    ``threads`` worker threads run decoding and inference (one shared ONNX
    session per process); ``timeout_s`` bounds one request's decode + inference
    (503 past it); at most ``max_queue`` requests wait for a free thread, each
    at most ``queue_timeout_s`` (503 "busy" past either).
    """

    model: str | None = None
    detector: str | None = None
    min_face: float | None = None  #: smallest face side in pixels the detector looks for (None: its default)
    refine: bool = True
    flip: bool = True  #: also read the mirrored crop in the last pass (see FaceKeypointDetector)
    convention: str = "ibug"  #: landmark convention of the answers (facekeypoints.conventions)
    #: the face detector's candidates from this score up are read too, reported when their landmarks fit
    #: (None, or ``off`` in the environment: its sure faces only; see FaceKeypointDetector)
    unsure_score: float | None = UNSURE_SCORE
    turns: bool = True  #: search a photo that gives no face upright again turned (see FaceKeypointDetector)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    timeout_s: float = 20.0
    threads: int = field(default_factory=_default_threads)
    max_queue: int = 128
    queue_timeout_s: float = 60.0
    cors_origins: tuple[str, ...] = ()
    #: seconds a request's body may take to arrive once its headers have (408 past it); an answer sent before
    #: the body was read (413, 401, ...) reads and discards the rest within the same time, so that a client that
    #: writes its whole body before reading still gets the answer
    body_timeout_s: float = 60.0
    #: seconds a request's line and headers may take to arrive (408 and closed past it; ``serve`` only)
    header_timeout_s: float = 10.0
    #: open connections at most; past it a new one pushes out the one that has waited longest on its client
    #: (``serve`` only; see :mod:`facekeypoints.server.connections`)
    max_connections: int = 256
    #: a file holding the API key every ``/v1`` request must send as ``Authorization: Bearer KEY`` (one line)
    api_key_file: str | None = None
    #: the API key itself, for where a file is awkward (``FACEKEYPOINTS_SERVE_API_KEY``); never shown in repr
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be at least 1")
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be at least 1")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if min(self.timeout_s, self.queue_timeout_s, self.body_timeout_s, self.header_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_queue < 0:
            raise ValueError("max_queue must not be negative")
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("give the API key in a file or directly, not both")
        if self.api_key is not None:
            check_api_key(self.api_key, "the API key")
        if self.unsure_score is not None and not 0.0 <= self.unsure_score <= 1.0:
            raise ValueError(f"unsure_score must be in [0, 1] (or off), got {self.unsure_score}")
        if self.min_face is not None and not self.min_face > 0:
            raise ValueError(f"min_face must be a positive number of pixels, got {self.min_face}")
        from ..conventions import CONVENTIONS

        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {self.convention!r}")

    def to_env(self) -> dict[str, str]:
        """Environment variables that :meth:`from_env` reads back (to hand the config to worker processes)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "unsure_score":
                value = "off"  # not the default, which an absent variable means
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "1" if value else "0"
            env[_ENV_PREFIX + f.name.upper()] = str(value)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerConfig:
        """A config from ``FACEKEYPOINTS_SERVE_*`` variables; fields not set keep their defaults."""
        environ = os.environ if environ is None else environ
        kwargs: dict = {}
        for f in fields(cls):
            raw = environ.get(_ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            if f.name == "cors_origins":
                kwargs[f.name] = tuple(o.strip() for o in raw.split(",") if o.strip())
            elif f.name in ("refine", "flip", "turns"):
                kwargs[f.name] = raw.strip().lower() not in ("0", "false", "no", "off", "")
            elif f.name == "unsure_score":
                from ..quality import parse_unsure_score

                kwargs[f.name] = parse_unsure_score(raw)
            elif f.name in ("max_upload_bytes", "max_pixels", "threads", "max_queue", "max_connections"):
                kwargs[f.name] = int(raw)
            elif f.name in ("timeout_s", "queue_timeout_s", "min_face", "body_timeout_s", "header_timeout_s"):
                kwargs[f.name] = float(raw)
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)

    def read_api_key(self) -> str | None:
        """The API key (from ``api_key`` or read from ``api_key_file``), or None when the API is open to all.

        Raises ValueError with a one-line reason when the file is missing, unreadable or holds no valid key.
        """
        if self.api_key is not None:
            return self.api_key
        if self.api_key_file is None:
            return None
        name = f"API key file {self.api_key_file}"
        try:
            with open(self.api_key_file, encoding="utf-8") as f:
                text = f.read(4097)
        except FileNotFoundError:
            raise ValueError(f"{name}: no such file") from None
        except UnicodeDecodeError:
            raise ValueError(f"{name}: not a text file") from None
        except OSError as exc:
            raise ValueError(f"{name}: cannot read it ({exc.strerror or exc})") from None
        key = text.strip()
        if "\n" in key or len(text) > 4096:
            raise ValueError(f"{name}: it must hold the key alone, on one line")
        return check_api_key(key, name)

    @property
    def drain_bytes(self) -> int:
        """The most request bytes read and discarded after an early answer: twice the upload limit, 1 MiB at least."""
        return 2 * self.max_upload_bytes + (1 << 20)
