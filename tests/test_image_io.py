"""Image loading: formats, EXIF orientation, size limits and bad files, all made by the tests."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest

from facekeypoints import image_io
from facekeypoints.errors import FaceKeypointsError, InputError
from facekeypoints.image_io import MAX_PIXELS, check_image, decode_image, load_image, read_header, sniff_format

RED, BLUE = (255, 0, 0), (0, 0, 255)


def marked_rgb(h: int = 20, w: int = 40) -> np.ndarray:
    """RGB picture, red on the left half and blue on the right: orientation and channel order show."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = RED
    img[:, w // 2 :] = BLUE
    return img


def encode(rgb_or_bgr: np.ndarray, suffix: str, rgb: bool = True, params=()) -> bytes:
    img = rgb_or_bgr
    if rgb and img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(suffix, img, list(params))
    assert ok
    return buf.tobytes()


def exif_app1(orientation: int) -> bytes:
    """A minimal APP1 segment: "Exif", a big-endian TIFF header and IFD0 holding only Orientation."""
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)  # tag, SHORT, count 1, value (left-justified)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif(jpeg: bytes, orientation: int) -> bytes:
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + exif_app1(orientation) + jpeg[2:]


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` (8-bit RGB) and holds one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        image_io.PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + png_chunk(b"IEND", b"")
    )


def assert_one_line(exc: Exception, *words: str) -> None:
    msg = str(exc)
    assert isinstance(exc, FaceKeypointsError)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


def close(a, b, tol: int = 40) -> bool:
    return bool(np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= tol)


# --- good images --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_round_trip_is_rgb(suffix):
    img = marked_rgb()
    out = decode_image(encode(img, suffix), f"x{suffix}")
    assert out.dtype == np.uint8 and out.shape == (20, 40, 3)
    assert close(out[10, 5], RED) and close(out[10, 35], BLUE)


def test_png_named_jpg_is_read_by_its_content(tmp_path):
    path = tmp_path / "actually_png.jpg"
    path.write_bytes(encode(marked_rgb(), ".png"))
    np.testing.assert_array_equal(load_image(path), marked_rgb())


def test_rgba_png_drops_alpha_keeping_colours():
    rgba = np.dstack([marked_rgb(), np.linspace(0, 255, 40, dtype=np.uint8)[None].repeat(20, 0)])
    data = encode(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), ".png", rgb=False)
    np.testing.assert_array_equal(decode_image(data), marked_rgb())


def test_gray_png_becomes_three_channels():
    gray = np.tile(np.arange(40, dtype=np.uint8) * 6, (20, 1))
    out = decode_image(encode(gray, ".png", rgb=False))
    assert out.shape == (20, 40, 3)
    np.testing.assert_array_equal(out[:, :, 0], gray)
    np.testing.assert_array_equal(out[:, :, 2], gray)


def test_16bit_png_becomes_8bit():
    img16 = marked_rgb().astype(np.uint16) * 257
    img16[:5] = 1000  # not a multiple of 257
    data = encode(img16, ".png")
    assert read_header(data).format == "png" and data[24] == 16, "bit depth 16 in IHDR"
    out = decode_image(data, "deep.png")
    assert out.dtype == np.uint8 and out.shape == (20, 40, 3)
    assert close(out[10, 5], RED, 1) and close(out[10, 35], BLUE, 1)
    assert close(out[0, 0], [1000 / 257] * 3, 1)


@pytest.mark.parametrize(
    "orientation, shape, top_left, bottom_right",
    [
        (1, (20, 40), RED, BLUE),  # as stored
        (3, (20, 40), BLUE, RED),  # rotated 180 degrees
        (6, (40, 20), RED, BLUE),  # viewer turns it 90 degrees clockwise: the left half goes up
        (8, (40, 20), BLUE, RED),  # 90 degrees counter-clockwise: the left half goes down
    ],
)
def test_exif_orientation_is_applied(orientation, shape, top_left, bottom_right):
    data = with_exif(encode(marked_rgb(), ".jpg", params=[cv2.IMWRITE_JPEG_QUALITY, 95]), orientation)
    out = decode_image(data, "rotated.jpg")
    assert out.shape[:2] == shape
    assert close(out[1, 1], top_left) and close(out[-2, -2], bottom_right)
    hdr = read_header(data)
    assert (hdr.width, hdr.height) == (40, 20), "the header reports the stored size"


def test_exif_rotated_file_on_disk(tmp_path):
    path = tmp_path / "phone.jpg"
    path.write_bytes(with_exif(encode(marked_rgb(), ".jpg"), 6))
    out = load_image(path)
    assert out.shape == (40, 20, 3) and close(out[2, 10], RED) and close(out[-3, 10], BLUE)


def test_cmyk_jpeg():
    pil = pytest.importorskip("PIL.Image", reason="Pillow is needed to write a CMYK JPEG (OpenCV cannot)")
    buf = io.BytesIO()
    pil.fromarray(marked_rgb()).convert("CMYK").save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    assert pil.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data, "print.jpg")
    assert out.shape == (20, 40, 3)
    assert close(out[10, 5], RED) and close(out[10, 35], BLUE)


def test_trailing_bytes_after_jpeg_are_fine():
    data = encode(marked_rgb(), ".jpg") + b"\x00" * 100 + b"appended video"
    assert decode_image(data).shape == (20, 40, 3)


def test_read_header_sizes():
    assert read_header(encode(marked_rgb(33, 57), ".png")) == image_io.ImageHeader("png", 57, 33)
    assert read_header(encode(marked_rgb(33, 57), ".jpg")) == image_io.ImageHeader("jpeg", 57, 33)
    progressive = encode(marked_rgb(33, 57), ".jpg", params=[cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert read_header(progressive) == image_io.ImageHeader("jpeg", 57, 33)
    assert decode_image(progressive).shape == (33, 57, 3)
    assert read_header(encode(marked_rgb(), ".bmp")).format == "bmp"
    assert sniff_format(b"hello") is None


def test_arrays_are_taken_as_rgb():
    img = marked_rgb()
    np.testing.assert_array_equal(load_image(img), img)
    np.testing.assert_array_equal(load_image(np.dstack([img, np.zeros((20, 40), np.uint8)])), img)
    assert load_image(img[:, :, 0]).shape == (20, 40, 3)
    assert load_image(img.astype(np.float32) / 255.0).dtype == np.uint8


# --- bad files: one-line InputError naming the file ----------------------------------------------


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError) as info:
        load_image(path)
    assert_one_line(info.value, "empty.jpg", "empty")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("Shopping list:\n- eggs\n- café au lait\n")
    with pytest.raises(InputError) as info:
        load_image(path)
    assert_one_line(info.value, "notes.jpg", "text file")


def test_binary_garbage():
    data = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    data = b"\x00\x01" + data[2:]  # no accidental magic number
    with pytest.raises(InputError) as info:
        decode_image(data, "noise.bin")
    assert_one_line(info.value, "noise.bin", "not a recognised image")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files(tmp_path, suffix):
    rgb = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    data = encode(rgb, suffix)
    for cut in [0.9, 0.5, 0.1, 30 / len(data), 1 - 1 / len(data)]:
        part = data[: max(3, int(len(data) * cut))]
        path = tmp_path / f"cut{suffix}"
        path.write_bytes(part)
        with pytest.raises(InputError) as info:
            load_image(path)
        assert_one_line(info.value, str(path), "truncated")


def test_corrupt_png_checksum():
    data = bytearray(encode(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8), ".png"))
    i = data.index(b"IDAT") + 20
    data[i] ^= 0xFF
    with pytest.raises(InputError) as info:
        decode_image(bytes(data), "flipped.png")
    assert_one_line(info.value, "flipped.png", "corrupt", "IDAT")


def test_corrupt_jpeg_header():
    data = bytearray(encode(marked_rgb(), ".jpg"))
    data[2:6] = b"\x12\x34\x56\x78"  # the first segment's marker is gone
    with pytest.raises(InputError) as info:
        decode_image(bytes(data), "mangled.jpg")
    assert_one_line(info.value, "mangled.jpg", "corrupt JPEG")


def test_oversized_png_refused_from_its_header(monkeypatch):
    data = png_header_only(10000, 5000)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image that its header already refuses")

    monkeypatch.setattr(image_io.cv2, "imdecode", no_decoding)
    with pytest.raises(InputError) as info:
        decode_image(data, "huge.png", max_pixels=40_000_000)
    assert_one_line(info.value, "huge.png", "10000x5000", "40 megapixel")
    with pytest.raises(InputError) as info:
        decode_image(png_header_only(12000, 9000), "huger.png")  # 108 MP: over the default 100
    assert_one_line(info.value, "huger.png", "12000x9000", "100 megapixel")


def test_oversized_jpeg_refused_from_its_header(monkeypatch):
    data = bytearray(encode(marked_rgb(), ".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 9000, 12000)  # height, width: 108 MP
    monkeypatch.setattr(image_io.cv2, "imdecode", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(InputError) as info:
        decode_image(bytes(data), "big.jpg")
    assert_one_line(info.value, "big.jpg", "12000x9000", "megapixel")


def test_size_limit_boundary():
    side = int(MAX_PIXELS**0.5)
    read_header(png_header_only(side, side))  # just under: accepted
    with pytest.raises(InputError):
        read_header(png_header_only(side + 1, side + 1))
    read_header(png_header_only(side + 1, side + 1), max_pixels=None)  # no limit when asked
    with pytest.raises(InputError) as info:
        read_header(png_header_only(2001, 1000), max_pixels=2_000_000)
    assert_one_line(info.value, "2001x1000", "2 megapixel")


def test_a_camera_photo_of_61_megapixels_is_read():
    """A full-frame camera's 9504x6336 JPEG decodes under the default limit."""
    big = np.zeros((6336, 9504, 3), np.uint8)
    big[::97] = 255
    ok, jpg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 50])
    rgb = load_image(jpg.tobytes())
    assert rgb.shape == (6336, 9504, 3)


def test_arrays_are_never_refused_for_their_size_unless_asked():
    arr = np.zeros((1, MAX_PIXELS + 1), np.uint8)
    assert load_image(arr).shape == (1, MAX_PIXELS + 1, 3)
    with pytest.raises(InputError) as info:
        check_image(load_image(arr), "frame", max_pixels=MAX_PIXELS)
    assert_one_line(info.value, "frame", "megapixel")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError) as info:
        load_image(tmp_path / "nope.png")
    assert_one_line(info.value, "nope.png", "no such file")
    with pytest.raises(InputError) as info:
        load_image(tmp_path)
    assert_one_line(info.value, "directory")


def test_bytes_input_named_in_errors():
    with pytest.raises(InputError) as info:
        load_image(b"")
    assert_one_line(info.value, "image bytes")
    assert load_image(bytearray(encode(marked_rgb(), ".png"))).shape == (20, 40, 3)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        decode_image(b"not an image at all", "x")
