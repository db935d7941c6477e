"""Filters that follow the face: overlays placed by landmarks, privacy blur, custom specs, the CLI verb.

Every picture here is made by the tests: synthetic 68-point faces from ``synthetic.template``.
"""

import json
import math
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints import cli, filters
from facekeypoints.errors import InputError
from facekeypoints.image_io import load_image
from facekeypoints.landmarks import JAW, LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
from synthetic import draw_face, template

OVERLAYS = list(filters.art.SPRITES)
PRIVACY = ["blur", "pixelate"]
ALL = filters.names()


def face_at(center, size: float, theta_deg: float = 0.0) -> np.ndarray:
    """The template face, ``size`` pixels across, rotated by ``theta_deg`` (clockwise on screen), at ``center``."""
    t = math.radians(theta_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return ((template() - 0.5) @ rot.T * size + np.asarray(center, dtype=np.float64)).astype(np.float32)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def alpha_of(flt, kps, shape) -> np.ndarray:
    """The overlay's rendered opacity, recovered from drawing it on black and on white."""
    black = flt(np.zeros(shape, np.uint8), [kps]).astype(np.float64)
    white = flt(np.full(shape, 255, np.uint8), [kps]).astype(np.float64)
    return 1.0 - (white - black).mean(axis=2) / 255.0


def principal_angle(weight: np.ndarray) -> float:
    """Orientation (degrees) of the major axis of a weighted pixel mask."""
    ys, xs = np.nonzero(weight > 0.02)
    w = weight[ys, xs]
    mx, my = np.average(xs, weights=w), np.average(ys, weights=w)
    sxx = np.average((xs - mx) ** 2, weights=w)
    syy = np.average((ys - my) ** 2, weights=w)
    sxy = np.average((xs - mx) * (ys - my), weights=w)
    return math.degrees(0.5 * math.atan2(2 * sxy, sxx - syy))


def centroid(weight: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(weight > 0.02)
    w = weight[ys, xs]
    return np.array([np.average(xs, weights=w), np.average(ys, weights=w)])


def wrap180(deg: float) -> float:
    return (deg + 90.0) % 180.0 - 90.0


def rgba_picture(w: int = 120, h: int = 60) -> np.ndarray:
    """A test overlay: an opaque bar with two dots, transparent elsewhere."""
    img = np.zeros((h, w, 4), np.uint8)
    cv2.rectangle(img, (10, 25), (w - 11, 35), (200, 40, 40, 255), -1)
    return img


@dataclass
class FakeFace:
    box: np.ndarray
    score: float
    keypoints: np.ndarray
    extra: dict = field(default_factory=dict)


# --- the similarity fit ------------------------------------------------------------------------


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    a = math.radians(23.0)
    m = np.array([[math.cos(a), -math.sin(a), 12.0], [math.sin(a), math.cos(a), -7.0]]) * [[1.7], [1.7]]
    m[:, 2] = (12.0, -7.0)
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(filters.fit_similarity(src, dst), m, atol=1e-9)
    # two points determine it exactly
    np.testing.assert_allclose(filters.fit_similarity(src[:2], dst[:2]), m, atol=1e-9)


def test_fit_similarity_is_least_squares_and_never_reflects():
    rng = np.random.default_rng(2)
    src = rng.uniform(-1, 1, (12, 2))
    dst = src * [-1, 1]  # a mirror image: the best similarity cannot reproduce it
    m = filters.fit_similarity(src, dst)
    assert m[0, 0] == pytest.approx(m[1, 1]) and m[0, 1] == pytest.approx(-m[1, 0])  # a rotation-scale
    noisy = src * 3 + 5 + rng.normal(0, 0.01, src.shape)
    m = filters.fit_similarity(src, noisy)
    np.testing.assert_allclose(m, [[3, 0, 5], [0, 3, 5]], atol=0.02)
    with pytest.raises(ValueError):
        filters.fit_similarity(np.ones((3, 2)), src[:3])


# --- placement: anchors and rotation -----------------------------------------------------------


@pytest.mark.parametrize("name", OVERLAYS)
@pytest.mark.parametrize("size,theta", [(240, 0.0), (180, 25.0), (320, -35.0), (90, 12.0)])
def test_builtin_anchors_map_onto_their_landmarks(name, size, theta):
    flt = filters.get(name)
    kps = face_at((300, 320), size, theta)
    m = flt.matrix(kps)
    placed = flt.points @ m[:, :2].T + m[:, 2]
    err = np.linalg.norm(placed - flt.targets(kps), axis=1)
    assert err.max() < 2.0, f"{name}: anchors land {err.round(2)} px from their landmarks"


@pytest.mark.parametrize("name", OVERLAYS)
@pytest.mark.parametrize("theta", [0.0, 20.0, -30.0])
def test_rendered_anchor_pixels_land_within_2px(name, theta):
    """Draw a dot at each of the overlay's anchor points, through the same code path, and find it in the image."""
    flt = filters.get(name)
    kps = face_at((320, 330), 240, theta)
    targets = flt.targets(kps)
    # a marker picture holding every anchor point (some anchors lie outside the sprite, e.g. the hat's jaw ends)
    lo = np.minimum(flt.points.min(axis=0), 0) - 40
    hi = np.maximum(flt.points.max(axis=0), flt.size) + 40
    w, h = (hi - lo).astype(int) + 1
    anchors = [filters.Anchor(tuple(a.point - lo), a.landmarks) for a in flt.anchors]
    for point, target in zip(flt.points - lo, targets):
        marker = np.zeros((h, w, 4), np.uint8)
        center = (round(point[0] * 16), round(point[1] * 16))
        cv2.circle(marker, center, 16 * 16, (255, 255, 255, 255), -1, cv2.LINE_AA, 4)
        dot = filters.Overlay(marker, anchors, name="marker")
        out = dot(np.zeros((640, 640, 3), np.uint8), [kps])
        found = centroid(out.mean(axis=2) / 255.0)
        assert np.linalg.norm(found - target) < 2.0, f"{name}: anchor drawn at {found}, landmark at {target}"


def test_custom_overlay_anchor_pixels_land_on_the_eyes():
    picture = np.zeros((80, 200, 4), np.uint8)
    cv2.circle(picture, (40, 40), 8, (255, 0, 0, 255), -1, cv2.LINE_AA)
    cv2.circle(picture, (160, 40), 8, (0, 0, 255, 255), -1, cv2.LINE_AA)
    spec = {
        "image": picture,
        "anchors": [
            {"point": [40, 40], "landmarks": list(RIGHT_EYE)},
            {"point": [160, 40], "landmarks": list(LEFT_EYE)},
        ],
    }
    for theta in (0.0, 33.0):
        kps = face_at((200, 210), 200, theta)
        out = filters.apply(np.zeros((420, 420, 3), np.uint8), [kps], spec).astype(np.float64)
        red, blue = centroid(out[..., 0] / 255.0), centroid(out[..., 2] / 255.0)
        assert np.linalg.norm(red - kps[list(RIGHT_EYE)].mean(axis=0)) < 2.0
        assert np.linalg.norm(blue - kps[list(LEFT_EYE)].mean(axis=0)) < 2.0


@pytest.mark.parametrize("name", OVERLAYS + ["custom"])
def test_overlay_turns_with_the_face(name):
    if name == "custom":
        flt = filters.get(
            {
                "image": rgba_picture(),
                "anchors": [{"point": [20, 30], "landmarks": [36]}, {"point": [100, 30], "landmarks": [45]}],
            }
        )
    else:
        flt = filters.get(name)
    shape = (640, 640, 3)
    base = principal_angle(alpha_of(flt, face_at((320, 360), 200, 0.0), shape))
    for theta in (-40.0, -15.0, 10.0, 30.0):
        angle = principal_angle(alpha_of(flt, face_at((320, 360), 200, theta), shape))
        assert abs(wrap180(angle - base - theta)) <= 2.0, f"{name}: face turned {theta}°, overlay {angle - base:.2f}°"


def test_overlay_scales_with_the_face():
    flt = filters.get("sunglasses")
    small = alpha_of(flt, face_at((200, 200), 100), (400, 400, 3)).sum()
    large = alpha_of(flt, face_at((200, 200), 200), (400, 400, 3)).sum()
    assert large / small == pytest.approx(4.0, rel=0.05)


# --- every face, borders, no face ----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_applies_to_every_face_and_leaves_the_input_alone(name):
    img = textured(300, 600, seed=3)
    before = img.copy()
    faces = [face_at((150, 170), 150), face_at((450, 160), 130, 15.0)]
    out = filters.apply(img, faces, name)
    np.testing.assert_array_equal(img, before)
    assert out is not img and out.shape == img.shape and out.dtype == np.uint8
    changed = (out != img).any(axis=2)
    assert changed[:, :300].sum() > 200 and changed[:, 300:].sum() > 200


@pytest.mark.parametrize("name", ALL)
def test_no_face_gives_the_picture_back_unchanged(name):
    img = textured(90, 120, seed=4)
    for faces in ([], None, np.zeros((0, 68, 2), np.float32)):
        out = filters.apply(img, faces, name)
        np.testing.assert_array_equal(out, img)
        assert out is not img


@pytest.mark.parametrize("name", OVERLAYS)
@pytest.mark.parametrize("center", [(0.0, 150.0), (300.0, 290.0), (-60.0, -40.0)])
def test_face_half_out_of_frame_draws_only_the_visible_part(name, center):
    """Drawing on the picture equals drawing on a larger canvas and cutting the picture out of it."""
    h, w, pad = 300, 300, 400
    img = textured(h, w, seed=5)
    kps = face_at(center, 200, 10.0)
    out = filters.apply(img, [kps], name)
    big = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    big[pad : pad + h, pad : pad + w] = img
    ref = filters.apply(big, [kps + pad], name)[pad : pad + h, pad : pad + w]
    diff = np.abs(out.astype(int) - ref.astype(int))
    # equal but for the warp's 1/32-pixel fixed-point steps on sharp edges
    assert diff.max() <= 16 and (diff > 2).mean() < 1e-3
    whole = (filters.apply(big, [kps + pad], name) != big).any(axis=2)
    if whole[pad : pad + h, pad : pad + w].any():
        assert (out != img).any()


@pytest.mark.parametrize("name", ALL)
def test_faces_outside_or_broken_do_not_crash(name):
    img = textured(120, 160, seed=6)
    far = face_at((5000, -3000), 300)
    huge = face_at((80, 60), 1e6)
    nan = face_at((80, 60), 80)
    nan[5] = np.nan
    flat = np.full((68, 2), 40.0, np.float32)  # every point in one place
    np.testing.assert_array_equal(filters.apply(img, [far, nan, flat], name), img)
    assert filters.apply(img, [huge], name).shape == img.shape
    half = face_at((0, 60), 120)
    assert filters.apply(img, [half], name).shape == img.shape


# --- privacy ------------------------------------------------------------------------------------


def raw_region_distance(shape, kps) -> np.ndarray:
    """Signed distance of every pixel to the hull of the jaw and brow points (positive outside)."""
    hull = cv2.convexHull(kps[list(JAW + RIGHT_BROW + LEFT_BROW)].astype(np.float32))
    h, w = shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    d = [-cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in zip(xs.ravel(), ys.ravel())]
    return np.array(d).reshape(h, w)


@pytest.mark.parametrize("name", PRIVACY)
def test_privacy_changes_only_the_face_regions(name):
    img = textured(160, 260, seed=7)
    faces = [face_at((70, 80), 110, -10.0), face_at((200, 70), 90, 20.0)]
    out = filters.apply(img, faces, name)
    changed = (out != img).any(axis=2)
    near = np.zeros(changed.shape, bool)
    for kps in faces:
        size = float(np.ptp(kps[list(JAW + RIGHT_BROW + LEFT_BROW)], axis=0).max())
        d = raw_region_distance(img.shape, kps)
        near |= d <= 0.12 * size + 1.5  # the default margin, plus antialiasing
        inside = d < -2
        assert changed[inside].mean() > 0.9, "the face itself must be covered"
    assert not changed[~near].any(), "a pixel outside the face regions changed"


def test_blur_keeps_pixels_outside_exactly_even_at_the_border():
    img = textured(100, 100, seed=8)
    kps = face_at((10, 95), 120, 5.0)
    out = filters.apply(img, [kps], "blur")
    mask = filters.face_mask(img.shape, [kps])
    np.testing.assert_array_equal(out[mask == 0], img[mask == 0])
    assert (out[mask == 1] != img[mask == 1]).any()


def test_face_region_is_the_grown_hull():
    kps = face_at((100, 100), 120, 8.0)
    pts = kps[list(JAW + RIGHT_BROW + LEFT_BROW)].astype(np.float32)
    region = filters.face_region(kps, margin=0.1)
    size = float(np.ptp(pts, axis=0).max())
    hull = cv2.convexHull(pts)
    dist = [-cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in region]
    assert max(dist) == pytest.approx(0.1 * size, abs=0.01 * size) and min(dist) > 0.09 * size
    contour = region.astype(np.float32).reshape(-1, 1, 2)
    assert all(cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0 for x, y in pts)


def test_pixelate_makes_blocks():
    img = textured(200, 200, seed=9)
    kps = face_at((100, 100), 160)
    out = filters.apply(img, [kps], "pixelate")
    patch = out[96:104, 96:104].reshape(-1, 3)  # well inside the face: one or a few blocks
    assert len(np.unique(patch, axis=0)) <= 4


# --- custom overlays: spec files and their errors ------------------------------------------------


def write_rgba_png(path: Path, rgba: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def write_spec(folder: Path, anchors=None, image="art/bar.png", **extra) -> Path:
    (folder / "art").mkdir(exist_ok=True)
    write_rgba_png(folder / "art" / "bar.png", rgba_picture())
    anchors = anchors or [{"point": [20, 30], "landmarks": [36, 39]}, {"point": [100, 30], "landmarks": [42, 45]}]
    path = folder / "bar.json"
    path.write_text(json.dumps({"image": image, "anchors": anchors, **extra}))
    return path


def test_spec_file_relative_to_its_folder(tmp_path, monkeypatch):
    spec = write_spec(tmp_path)
    monkeypatch.chdir("/")
    img = np.zeros((200, 200, 3), np.uint8)
    kps = face_at((100, 100), 150)
    for how in (str(spec), spec):
        out = filters.apply(img, [kps], how)
        assert (out != 0).any()
        assert filters.get(how).name == "bar"
    # the bar's anchor points land on the eye-corner means
    flt = filters.get(spec)
    m = flt.matrix(kps)
    placed = flt.points @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(placed, flt.targets(kps), atol=2.0)


def test_spec_may_name_itself(tmp_path):
    assert filters.load_spec(write_spec(tmp_path, name="shades")).name == "shades"


def one_line_error(fn, *args) -> str:
    with pytest.raises(InputError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg and msg
    return msg


@pytest.mark.parametrize("bad", [68, -1, 200])
def test_spec_landmark_out_of_range(tmp_path, bad):
    spec = write_spec(
        tmp_path, anchors=[{"point": [0, 0], "landmarks": [36]}, {"point": [9, 0], "landmarks": [30, bad]}]
    )
    msg = one_line_error(filters.load_spec, spec)
    assert str(bad) in msg and "0-67" in msg and "anchor 2" in msg


@pytest.mark.parametrize(
    "anchors,expect",
    [
        ([{"point": [0, 0], "landmarks": [36]}], "at least 2 anchors"),
        ([{"point": [0, 0], "landmarks": [36]}, {"point": [0, 0], "landmarks": [45]}], "same point"),
        ([{"point": [0], "landmarks": [36]}, {"point": [5, 0], "landmarks": [45]}], "[x, y]"),
        ([{"point": [0, 0], "landmarks": []}, {"point": [5, 0], "landmarks": [45]}], "0-67"),
        ([{"point": [0, 0], "landmarks": ["nose"]}, {"point": [5, 0], "landmarks": [45]}], "0-67"),
        ([{"point": [0, 0], "landmark": [3]}, {"point": [5, 0], "landmarks": [45]}], "valid keys: point, landmarks"),
    ],
)
def test_spec_bad_anchors(tmp_path, anchors, expect):
    assert expect in one_line_error(filters.load_spec, write_spec(tmp_path, anchors=anchors))


def test_overlay_picture_without_alpha(tmp_path):
    spec = write_spec(tmp_path)
    for suffix in (".png", ".jpg"):
        flat = tmp_path / f"flat{suffix}"
        ok, buf = cv2.imencode(suffix, np.full((40, 60, 3), 128, np.uint8))
        flat.write_bytes(buf.tobytes())
        doc = json.loads(spec.read_text())
        doc["image"] = flat.name
        spec.write_text(json.dumps(doc))
        msg = one_line_error(filters.load_spec, spec)
        assert "alpha" in msg and "RGBA" in msg and flat.name in msg
    arr_spec = {"image": np.zeros((10, 10, 3), np.uint8), "anchors": doc["anchors"]}
    assert "alpha" in one_line_error(filters.get, arr_spec)


def test_spec_file_problems(tmp_path):
    assert "no such" in one_line_error(filters.load_spec, tmp_path / "missing.json")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    assert "not valid JSON" in one_line_error(filters.load_spec, bad_json)
    spec = write_spec(tmp_path, image="art/missing.png")
    assert "missing.png" in one_line_error(filters.load_spec, spec)
    spec = write_spec(tmp_path, colour="red")
    assert "unknown key 'colour'" in one_line_error(filters.load_spec, spec)
    spec = write_spec(tmp_path)
    (tmp_path / "art" / "bar.png").write_bytes(b"not a picture")
    assert "not a readable picture" in one_line_error(filters.load_spec, spec)


def test_unknown_filter_lists_the_valid_ones():
    msg = one_line_error(filters.get, "monocle")
    assert "monocle" in msg and all(n in msg for n in ALL) and ".json" in msg
    with pytest.raises(InputError):
        filters.apply(np.zeros((10, 10, 3), np.uint8), [], 42)


def test_bad_image_or_faces():
    with pytest.raises(InputError):
        filters.apply(np.zeros((10, 10), np.uint8), [], "blur")
    with pytest.raises(InputError):
        filters.apply(np.zeros((10, 10, 3), np.uint8), [np.zeros((5, 2))], "blur")


# --- per-frame use (video) ---------------------------------------------------------------------


def test_builtins_are_rendered_once_and_names_are_forgiving():
    assert filters.get("sunglasses") is filters.get("sunglasses")
    assert filters.get("Mustache") is filters.get("moustache")


def test_per_frame_calls_with_face_objects():
    """The video command calls ``apply(frame, faces, name)`` on every frame with smoothed, tracked faces."""
    from facekeypoints.pipeline import Face

    img = draw_face((240, 320), face_at((160, 120), 150))
    frames = []
    for i in range(5):
        kps = face_at((150 + 3 * i, 120), 150, i * 2.0)
        face = Face(np.array([80, 40, 240, 200], np.float32), 0.9, kps, extra={"track_id": 1})
        frames.append(filters.apply(img, [face], "moustache"))
    assert all((f != img).any() for f in frames)
    assert not np.array_equal(frames[0], frames[-1])


def test_spec_file_cache_sees_edits(tmp_path):
    spec = write_spec(tmp_path)
    first = filters.get(spec)
    assert filters.get(spec) is first
    doc = json.loads(spec.read_text())
    doc["name"] = "renamed-and-longer"
    spec.write_text(json.dumps(doc))
    assert filters.get(spec).name == "renamed-and-longer"


# --- the CLI verb -------------------------------------------------------------------------------


class FakeDetector:
    """Stands in for the ONNX pipeline: one template face in the middle of any image."""

    def __init__(
        self, model=None, detector="haar", refine=True, flip=True, convention="ibug", unsure_score=0.3, turns=True
    ):
        pass

    def __call__(self, image):
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        kps = face_at((w / 2, h / 2), min(h, w) * 0.6)
        return [FakeFace(np.array([0, 0, w, h], np.float32), 0.9, kps)]


@pytest.fixture
def fake_pipeline(monkeypatch):
    module = types.ModuleType("facekeypoints.pipeline")
    module.FaceKeypointDetector = FakeDetector
    monkeypatch.setitem(sys.modules, "facekeypoints.pipeline", module)


def write_photo(path: Path, w: int = 160, h: int = 120, seed: int = 0) -> Path:
    ok, buf = cv2.imencode(path.suffix, textured(h, w, seed))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def test_cli_filter_writes_one_picture_per_image_and_carries_on(tmp_path, fake_pipeline, capsys):
    a = write_photo(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    b = write_photo(tmp_path / "sub" / "b.jpg")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"nope")
    out = tmp_path / "out"
    rc = cli.main(["filter", str(a), str(bad), str(b), "--filter", "sunglasses", "--out", str(out)])
    assert rc == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["a_sunglasses.png", "b_sunglasses.png"]
    errors = captured.err.strip().splitlines()
    # the error as it happens, then detect's end summary: "1 of 3 inputs failed:" and the failure again
    assert len(errors) == 3 and "broken.png" in errors[0] and errors[0].startswith("facekeypoints: error:")
    assert errors[1] == "facekeypoints: 1 of 3 inputs failed:" and "broken.png" in errors[2]
    result = load_image(out / "a_sunglasses.png")
    assert result.shape == (120, 160, 3) and (result != load_image(a)).any()
    assert "a_sunglasses.png" in captured.out


def test_cli_filter_with_a_spec(tmp_path, fake_pipeline, monkeypatch):
    spec = write_spec(tmp_path)
    a = write_photo(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["filter", str(a), "--spec", str(spec)]) == 0
    assert (tmp_path / "a_bar.png").is_file()
    assert cli.main(["filter", str(a), "--filter", str(spec), "--out", "o"]) == 0
    assert (tmp_path / "o" / "a_bar.png").is_file()


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--filter", "monocle"], "unknown filter 'monocle'"),
        (["--filter", "x.json"], "no such overlay spec"),
    ],
)
def test_cli_filter_bad_filter_is_a_one_line_error(tmp_path, fake_pipeline, capsys, args, expect):
    a = write_photo(tmp_path / "a.png")
    assert cli.main(["filter", str(a), *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]
    assert not (tmp_path / "a_monocle.png").exists()


def test_cli_filter_never_overwrites_an_input(tmp_path, fake_pipeline, capsys):
    a = write_photo(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_blur.png").symlink_to(a)
    before = a.read_bytes()
    assert cli.main(["filter", str(a), "--filter", "blur", "--out", str(out)]) == 1
    assert a.read_bytes() == before
    assert "refusing to overwrite" in capsys.readouterr().err


def test_cli_filter_needs_a_filter(tmp_path, fake_pipeline, capsys):
    a = write_photo(tmp_path / "a.png")
    assert cli.main(["filter", str(a)]) == 2
    assert cli.main(["filter", str(a), "--filter", "blur", "--spec", "x.json"]) == 2


def test_custom_overlay_from_the_shared_sample_sunglasses(tmp_path):
    """The seed project's sunglasses picture (development machine only; never copied into the repository)."""
    picture = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples" / "sunglasses.png"
    if not picture.is_file():
        pytest.skip(f"{picture} not present")
    spec = tmp_path / "shades.json"
    eyes = [list(RIGHT_EYE), list(LEFT_EYE)]
    anchors = [{"point": [705, 590], "landmarks": eyes[0]}, {"point": [2355, 590], "landmarks": eyes[1]}]
    spec.write_text(json.dumps({"image": str(picture), "anchors": anchors}))
    kps = face_at((160, 150), 200, 12.0)
    out = filters.apply(np.zeros((300, 320, 3), np.uint8), [kps], spec)
    flt = filters.get(spec)
    alpha = alpha_of(flt, kps, (300, 320, 3))
    assert principal_angle(alpha) == pytest.approx(12.0, abs=2.0)
    assert out.shape == (300, 320, 3) and flt.name == "shades"


def test_cli_filter_puts_real_sunglasses_on_the_real_eyes(tmp_path, capsys):
    """The real verb (bundled model, default detector) on matplotlib's Grace Hopper: the pixels the
    sunglasses change sit on her eyes, as the real detector finds them, and nowhere near her mouth.

    Positions are measured in the face's own frame: ``v`` along the line from the eyes' centre (0) to
    the mouth's centre (1), ``u`` across it in the same unit. Measured: the changed pixels span v from
    -0.31 to +0.31 and u from -1.16 to +1.17, centred at (u, v) = (0.00, -0.02); every eye landmark changes by
    88 or more (sum over RGB), no mouth landmark at all.
    """
    import facekeypoints
    from facekeypoints.commands.demo import sample_image_path
    from facekeypoints.landmarks import INNER_LIP, OUTER_LIP

    photo_path = sample_image_path()
    out = tmp_path / "out"
    assert cli.main(["filter", str(photo_path), "--filter", "sunglasses", "--out", str(out)]) == 0
    assert "1 face" in capsys.readouterr().out
    photo = load_image(photo_path)
    result = load_image(out / f"{photo_path.stem}_sunglasses.png")
    (face,) = facekeypoints.FaceKeypointDetector()(photo)
    kps = np.asarray(face.keypoints, np.float64)
    diff = np.abs(result.astype(int) - photo.astype(int)).sum(axis=2)

    def change_at(group) -> np.ndarray:
        xs, ys = np.round(kps[list(group)]).astype(int).T
        return diff[ys, xs]

    eyes, mouth = RIGHT_EYE + LEFT_EYE, OUTER_LIP + INNER_LIP
    assert (change_at(eyes) > 40).all(), change_at(eyes)
    assert not change_at(mouth).any(), change_at(mouth)

    e, m = kps[list(eyes)].mean(axis=0), kps[list(mouth)].mean(axis=0)
    down = m - e
    length = float(np.hypot(*down))
    across = np.array([-down[1], down[0]]) / length
    ys, xs = np.nonzero(diff > 30)
    rel = np.c_[xs, ys] - e
    v, u = rel @ down / length**2, rel @ across / length
    assert len(v) > 2000  # the glasses are drawn, not a speck
    assert -0.5 < v.min() and v.max() < 0.5, (v.min(), v.max())  # the mouth is at v = 1
    assert abs(v.mean()) < 0.1 and abs(u.mean()) < 0.1, (u.mean(), v.mean())
    assert u.min() < -0.6 and u.max() > 0.6, (u.min(), u.max())  # over both eyes, not one


# --- custom overlay mistakes are never silent (issue 16, item 9) ---


def test_anchors_on_the_same_landmarks_are_refused_naming_the_spec(tmp_path, capsys, fake_pipeline):
    """Two anchors on the same landmarks gave an unchanged picture and exit 0."""
    same = [{"point": [20, 30], "landmarks": [36, 39]}, {"point": [100, 30], "landmarks": [39, 36]}]
    spec = write_spec(tmp_path, anchors=same)
    with pytest.raises(InputError, match="same point of the face") as info:
        filters.load_spec(spec)
    assert str(spec) in str(info.value)
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["filter", str(photo), "--spec", str(spec), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(spec) in err[0] and not (tmp_path / "o").exists()


def test_errors_about_a_spec_name_the_spec_file(tmp_path):
    one_point = [{"point": [20, 30], "landmarks": [36]}, {"point": [20, 30], "landmarks": [45]}]
    spec = write_spec(tmp_path, anchors=one_point, name="shades")
    with pytest.raises(InputError, match="same point") as info:
        filters.load_spec(spec)
    assert str(info.value).startswith(str(spec))
    spec = write_spec(tmp_path, image="art/nope.png")
    with pytest.raises(InputError, match="no such overlay picture") as info:
        filters.load_spec(spec)
    assert str(spec) in str(info.value) and "nope.png" in str(info.value)


def test_swapped_eyes_draw_upside_down_and_say_so(tmp_path, capsys, fake_pipeline):
    """Left and right eye groups swapped fit the art turned 180 degrees: a warning, on the CLI one line."""
    swapped = [{"point": [20, 30], "landmarks": [42, 45]}, {"point": [100, 30], "landmarks": [36, 39]}]
    spec = write_spec(tmp_path, anchors=swapped)
    with pytest.warns(UserWarning, match="turned 180 degrees"):
        flt = filters.load_spec(spec)
    assert "swapped" in flt.warning
    (tmp_path / "ok").mkdir()
    assert filters.load_spec(write_spec(tmp_path / "ok")).warning is None
    photo = write_photo(tmp_path / "p.png")
    assert cli.main(["filter", str(photo), "--spec", str(spec), "--out", str(tmp_path / "o")]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(err) == 1 and err[0].startswith("facekeypoints: warning:") and str(spec) in err[0]
