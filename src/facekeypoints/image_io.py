"""Load, decode and validate images. Everything returned is RGB uint8 H x W x 3.

Encoded images (paths, bytes) are checked before they are decoded: the PNG and JPEG
headers are read by a small parser of our own (PNG ``IHDR`` and chunk checksums, JPEG
``SOFn`` and the end-of-image marker), so an image over the pixel limit (``max_pixels``,
default :data:`MAX_PIXELS`) is refused without decoding it, and a truncated or damaged file gets a one-line
:class:`~facekeypoints.errors.InputError` naming it, not a decoder's message.

Decoding is OpenCV's ``IMREAD_COLOR``, which (checked by the tests):

- applies the EXIF orientation, so rotated JPEGs come out the way viewers show them
  (``IMREAD_UNCHANGED`` would ignore it);
- converts CMYK and YCCK JPEGs, gray and palette images to 3 channels;
- reduces 16-bit images to 8 bits;
- drops an alpha channel, keeping the colour channels as stored (the same pixels as
  reading them unchanged and taking the first three channels).

OpenCV hands out BGR; it is converted to RGB here and nowhere else.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

ImageLike = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray

#: Largest encoded image decoded by default, in pixels (width * height): 100 megapixels, so
#: every ordinary camera photo passes (61 MP full-frame bodies included) while a file that
#: claims a huge size is refused before any memory is spent on it. Every verb takes
#: ``--max-megapixels`` and every loader ``max_pixels=`` (None: no limit). Arrays the caller
#: already decoded are never refused for their size unless a limit is passed explicitly.
MAX_PIXELS = 100_000_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"

#: JPEG start-of-frame markers (they carry the image size): C0-CF but DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers that stand alone, without a length: TEM, RST0-7 (SOI/EOI are handled apart).
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


@dataclass(frozen=True)
class ImageHeader:
    """What an encoded image's header says: ``format`` ("png", "jpeg", ...) and its size in pixels.

    ``width`` and ``height`` are None when the format's header is not parsed here.
    For a JPEG they are the stored size, before any EXIF rotation.
    """

    format: str
    width: int | None = None
    height: int | None = None


def sniff_format(data: bytes) -> str | None:
    """The image format from the first bytes ("png", "jpeg", "gif", "bmp", "webp", "tiff"), or None."""
    head = bytes(data[:12])
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_SOI):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _looks_like_text(data: bytes) -> bool:
    head = bytes(data[:512])
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sample is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _check_pixels(width: int, height: int, name: str, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"{name}: image is {width}x{height} ({width * height / 1e6:.1f} megapixels), "
            f"over the {max_pixels / 1e6:g} megapixel limit (--max-megapixels / max_pixels= raise it)"
        )


def _png_header(data: bytes, name: str, max_pixels: int | None) -> ImageHeader:
    """Size from ``IHDR``; then every chunk's length and CRC, up to ``IEND``."""
    if len(data) < 8 + 8 + 13 + 4:
        raise InputError(f"{name}: truncated PNG file ({len(data)} bytes, the header is incomplete)")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise InputError(f"{name}: corrupt PNG file (no IHDR header chunk)")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise InputError(f"{name}: corrupt PNG file (size {width}x{height})")
    _check_pixels(width, height, name, max_pixels)
    pos, n = 8, len(data)
    seen_idat = False
    while True:
        if pos + 8 > n:
            raise InputError(f"{name}: truncated PNG file (ends before its IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length + 4
        if end > n:
            label = ctype.decode("latin-1") if ctype.isalpha() else "a"
            raise InputError(f"{name}: truncated PNG file (ends inside {label} chunk)")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            label = ctype.decode("latin-1") if ctype.isalpha() else "?"
            raise InputError(f"{name}: corrupt PNG file (bad checksum in its {label} chunk)")
        seen_idat |= ctype == b"IDAT"
        pos = end
        if ctype == b"IEND":
            break
    if not seen_idat:
        raise InputError(f"{name}: corrupt PNG file (no image data)")
    return ImageHeader("png", int(width), int(height))


def _jpeg_header(data: bytes, name: str, max_pixels: int | None) -> ImageHeader:
    """Size from the ``SOFn`` segment; segment lengths up to the first scan, then the end-of-image marker."""
    pos, n = 2, len(data)
    size: tuple[int, int] | None = None
    while True:
        if pos >= n:
            raise InputError(f"{name}: truncated JPEG file (ends before the image data)")
        if data[pos] != 0xFF:
            raise InputError(f"{name}: corrupt JPEG file (no segment marker at byte {pos})")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise InputError(f"{name}: truncated JPEG file (ends before the image data)")
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD8, 0xD9, 0x00):
            raise InputError(f"{name}: corrupt JPEG file (unexpected marker 0x{marker:02X} before the image data)")
        if pos + 2 > n:
            raise InputError(f"{name}: truncated JPEG file (ends inside a segment header)")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise InputError(f"{name}: corrupt JPEG file (segment 0x{marker:02X} has length {length})")
        if pos + length > n:
            raise InputError(f"{name}: truncated JPEG file (ends inside segment 0x{marker:02X})")
        if marker in _JPEG_SOF:
            if length < 8:
                raise InputError(f"{name}: corrupt JPEG file (short frame header)")
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            if width == 0:
                raise InputError(f"{name}: corrupt JPEG file (width 0)")
            size = (int(width), int(height))  # height 0: defined later by a DNL segment
            if height:
                _check_pixels(width, height, name, max_pixels)
        pos += length
        if marker == 0xDA:  # start of scan: compressed data follows
            break
    if size is None:
        raise InputError(f"{name}: corrupt JPEG file (no frame header before the image data)")
    # In compressed data 0xFF is always followed by 0x00 or a restart marker, so the first
    # FF D9 after the first scan is the end of the image (data after it is allowed).
    if data.find(b"\xff\xd9", pos) < 0:
        raise InputError(f"{name}: truncated JPEG file (no end-of-image marker)")
    return ImageHeader("jpeg", size[0], size[1] or None)


def read_header(data: bytes, name: str = "image", max_pixels: int | None = MAX_PIXELS) -> ImageHeader:
    """Check an encoded image's structure and size without decoding it.

    PNG and JPEG are parsed (size, truncation, checksums); other formats are only
    recognised by their first bytes (``format`` "unknown": left to the decoder).
    Raises :class:`InputError` (one line, naming ``name``) for an empty file and a
    truncated or corrupt PNG or JPEG, or one over ``max_pixels`` (None: no limit).
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    if len(data) == 0:
        raise InputError(f"{name}: empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt == "png":
        return _png_header(data, name, max_pixels)
    if fmt == "jpeg":
        return _jpeg_header(data, name, max_pixels)
    return ImageHeader(fmt or "unknown")


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


def decode_image(data: bytes, name: str = "image", max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, ...) to RGB uint8, EXIF orientation applied.

    The header is checked first (:func:`read_header`): empty files, truncated or
    corrupt PNGs and JPEGs, and those over ``max_pixels`` (None: no limit) raise :class:`InputError`
    before any decoding; what the decoder cannot read (a text file, say) raises it after, and
    so does any other format that decodes to more than ``max_pixels``.
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    header = read_header(data, name, max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. OpenCV's own pixel limit
        reason = str(exc).strip().splitlines()[-1][:120]
        raise InputError(f"{name}: cannot decode this {header.format.upper()} image ({reason})") from None
    if img is None:
        if header.format == "unknown":
            if _looks_like_text(data):
                raise InputError(f"{name}: is a text file, not an image")
            raise InputError(f"{name}: not a recognised image file (PNG, JPEG, BMP, WebP, TIFF, ...)")
        raise InputError(f"{name}: cannot decode this {header.format.upper()} image (corrupt or unsupported)")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return check_image(_to_rgb_uint8(img, name), name, max_pixels)


def check_image(img: np.ndarray, name: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """Refuse an empty array (and one over ``max_pixels``, when a limit is given); returns it unchanged."""
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"{name}: empty image")
    _check_pixels(img.shape[1], img.shape[0], name, max_pixels)
    return img


def load_image(source: ImageLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Load an image from a path, encoded bytes or an array.

    Returns RGB uint8 (H, W, 3). Arrays are taken as RGB (or RGBA / gray) and
    converted, whatever their size; paths and bytes are decoded (:func:`decode_image`),
    refused before decoding when over ``max_pixels`` (None: no limit). Raises
    :class:`InputError` with a one-line message for a missing, empty, unreadable,
    truncated, corrupt or oversized image.
    """
    if isinstance(source, np.ndarray):
        return check_image(np.ascontiguousarray(_to_rgb_uint8(source, "array")), "array")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), "image bytes", max_pixels)
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path), max_pixels)
