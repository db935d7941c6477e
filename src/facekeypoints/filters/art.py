"""Built-in overlay art, drawn procedurally as RGBA sprites with named anchors.

Every sprite is drawn in *face units*: the frame of a frontal face whose jaw ends
(points 0 and 16) sit at (0.1, 0.45) and (0.9, 0.45), x right and y down, with
the canonical landmark positions in :data:`CANONICAL`. A sprite's anchors are
those canonical positions, so the least-squares similarity fit of
:class:`~facekeypoints.filters.overlay.Overlay` lands each anchor exactly on its
landmarks for a face of canonical proportions and spreads the residual evenly
on others. Drawing is antialiased and composited in premultiplied float; each
sprite is rendered once per process (see ``filters.get``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from ..landmarks import LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
from .overlay import Anchor, Overlay

#: Pixels per face unit of the rendered sprites (the jaw is 0.8 units wide).
RESOLUTION = 800

BROWS = RIGHT_BROW + LEFT_BROW

#: Canonical positions (face units) of the landmark groups the built-in anchors use.
CANONICAL: dict[tuple[int, ...], tuple[float, float]] = {
    RIGHT_EYE: (0.32, 0.45),
    LEFT_EYE: (0.68, 0.45),
    BROWS: (0.5, 0.3155),
    (0,): (0.1, 0.45),
    (16,): (0.9, 0.45),
    (30,): (0.5, 0.58),
    (33, 51): (0.5, 0.685),
    (48,): (0.38, 0.76),
    (54,): (0.62, 0.76),
}

_SHIFT = 4
Color = tuple[float, float, float]


class Canvas:
    """A premultiplied RGBA float canvas covering ``[x0, x1] x [y0, y1]`` face units."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, resolution: int = RESOLUTION):
        self.origin = np.array([x0, y0], dtype=np.float64)
        self.k = float(resolution)
        self.w = int(math.ceil((x1 - x0) * self.k)) + 1
        self.h = int(math.ceil((y1 - y0) * self.k)) + 1
        self.rgba = np.zeros((self.h, self.w, 4), np.float32)  # premultiplied, 0..1
        ys, xs = np.mgrid[0 : self.h, 0 : self.w].astype(np.float32)
        self.ux = xs / self.k + float(x0)  # face-unit coordinates of each pixel centre
        self.uy = ys / self.k + float(y0)

    def px(self, pts) -> np.ndarray:
        """Face units -> sprite pixels."""
        return (np.asarray(pts, dtype=np.float64) - self.origin) * self.k

    def mask(self, *polygons) -> np.ndarray:
        """Antialiased coverage (H, W) float32 of the union of polygons given in face units."""
        m = np.zeros((self.h, self.w), np.uint8)
        for p in polygons:  # one at a time: a single fillPoly call would fill overlaps even-odd
            pts = np.round(self.px(p) * (1 << _SHIFT)).astype(np.int32)
            cv2.fillPoly(m, [pts], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        return m.astype(np.float32) / 255.0

    def paint(self, coverage: np.ndarray, color, alpha: float = 1.0) -> None:
        """Composite ``color`` (RGB 0-255, or an (H, W, 3) array) over the canvas where ``coverage`` > 0."""
        rows, cols = np.flatnonzero(coverage.any(axis=1)), np.flatnonzero(coverage.any(axis=0))
        if len(rows) == 0:
            return
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        a = (coverage[box] * alpha)[..., None]
        c = np.asarray(color, dtype=np.float32)
        c = (c[box] if c.ndim == 3 else c) / 255.0
        dst = self.rgba[box]
        dst[..., :3] = c * a + dst[..., :3] * (1.0 - a)
        dst[..., 3:] = a + dst[..., 3:] * (1.0 - a)

    def fill(self, polygon, color, alpha: float = 1.0) -> np.ndarray:
        cov = self.mask(polygon)
        self.paint(cov, color, alpha)
        return cov

    def vertical_gradient(self, y0: float, y1: float, c0: Color, c1: Color) -> np.ndarray:
        t = np.clip((self.uy - y0) / (y1 - y0), 0.0, 1.0)[..., None]
        return np.asarray(c0, np.float32) * (1.0 - t) + np.asarray(c1, np.float32) * t

    def to_rgba8(self) -> np.ndarray:
        """Straight (not premultiplied) RGBA uint8, as a PNG would store it."""
        a = self.rgba[..., 3:]
        rgb = np.where(a > 1e-6, self.rgba[..., :3] / np.maximum(a, 1e-6), 0.0)
        out = np.concatenate([rgb, a], axis=-1)
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --- geometry helpers (face units) ----------------------------------------------------------


def bezier(p0, p1, p2, p3, n: int = 48) -> np.ndarray:
    """Cubic Bezier curve sampled at ``n`` points."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def ellipse(center, rx: float, ry: float, start: float = 0.0, stop: float = 2 * np.pi, n: int = 96) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.c_[center[0] + rx * np.cos(t), center[1] + ry * np.sin(t)]


def stroke(path: np.ndarray, widths) -> np.ndarray:
    """Polygon outlining ``path`` (N, 2) drawn with ``widths`` (scalar or N values)."""
    p = np.asarray(path, dtype=np.float64)
    tangent = np.gradient(p, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    normal = np.c_[-tangent[:, 1], tangent[:, 0]]
    half = np.broadcast_to(np.asarray(widths, dtype=np.float64), (len(p),))[:, None] / 2.0
    return np.vstack([p + normal * half, (p - normal * half)[::-1]])


def mirror(pts: np.ndarray, axis_x: float = 0.5) -> np.ndarray:
    """Mirror points left-right about ``x = axis_x``."""
    out = np.array(pts, dtype=np.float64)
    out[:, 0] = 2 * axis_x - out[:, 0]
    return out


def _side(pts: np.ndarray, sign: float) -> np.ndarray:
    """``pts`` drawn for the subject's right (image left, ``sign`` < 0), else mirrored to the other side."""
    return pts if sign < 0 else mirror(pts)


def _overlay(canvas: Canvas, groups: list[tuple[int, ...]], name: str) -> Overlay:
    anchors = [Anchor(tuple(float(v) for v in canvas.px(CANONICAL[g])), g) for g in groups]
    return Overlay(canvas.to_rgba8(), anchors, name=name)


# --- the sprites ---------------------------------------------------------------------------


def sunglasses() -> Overlay:
    """Dark wayfarer-style sunglasses; the lens centres go to the eye centres."""
    cv = Canvas(0.03, 0.31, 0.97, 0.59)
    black, gloss, shine = (18, 18, 22), (110, 112, 125), (235, 240, 255)
    # temples (arms) running back towards the ears, and the bridge
    temple = bezier((0.19, 0.405), (0.15, 0.398), (0.10, 0.398), (0.05, 0.41))
    taper = np.linspace(0.032, 0.018, len(temple))
    cv.fill(stroke(temple, taper), black)
    cv.fill(stroke(mirror(temple), taper), black)
    cv.fill(stroke(bezier((0.42, 0.43), (0.47, 0.405), (0.53, 0.405), (0.58, 0.43)), 0.032), black)
    t = np.linspace(0.0, 2 * np.pi, 200, endpoint=False)
    grad = cv.vertical_gradient(0.37, 0.54, (20, 24, 38), (66, 76, 100))
    for cx, side in ((0.32, -1.0), (0.68, 1.0)):
        lens = _lens(t, cx, side, 0.142, 0.084)
        frame = _lens(t, cx, side, 0.142 + 0.022, 0.084 + 0.024)
        cv.fill(frame, black)
        top = frame[(t > 1.15 * np.pi) & (t < 1.85 * np.pi)] + (0.0, 0.006)
        cv.paint(cv.mask(stroke(top, 0.006)), gloss, 0.6)
        cov = cv.mask(lens)
        cv.paint(cov, grad, 0.94)
        # two diagonal reflections
        for x_top, width, alpha in ((cx + 0.02, 0.065, 0.16), (cx + 0.085, 0.02, 0.10)):
            band = np.array(
                [[x_top - width, 0.36], [x_top, 0.36], [x_top - 0.075, 0.55], [x_top - 0.075 - width, 0.55]]
            )
            cv.paint(cov * cv.mask(band), shine, alpha)
    return _overlay(cv, [RIGHT_EYE, LEFT_EYE], "sunglasses")


def _lens(t: np.ndarray, cx: float, side: float, rx: float, ry: float, cy: float = 0.452) -> np.ndarray:
    """A rounded lens, wider at the top with its outer top corner raised (``side``: -1 image left, +1 right)."""
    c, s = np.cos(t), np.sin(t)
    x = np.sign(c) * np.abs(c) ** (2.0 / 3.2)
    y = np.sign(s) * np.abs(s) ** (2.0 / 3.2)
    top = (1.0 - y) / 2.0  # 1 at the top, 0 at the bottom
    x = x * (0.9 + 0.14 * top)
    y = y - 0.16 * np.clip(x * side, 0.0, 1.0) * top
    return np.c_[cx + rx * x, cy + ry * y]


def moustache() -> Overlay:
    """A curled handlebar moustache between the nose (33) and the upper lip (51), as wide as the mouth."""
    cx, cy = CANONICAL[(33, 51)]
    cv = Canvas(0.24, 0.63, 0.76, 0.76)
    # the subject's right half (image left): a full body under the nose, then a tapering tail with a curl
    body = np.vstack(
        [
            bezier((cx, cy - 0.014), (cx - 0.04, cy - 0.04), (cx - 0.10, cy - 0.036), (cx - 0.14, cy - 0.004)),
            bezier((cx - 0.14, cy + 0.03), (cx - 0.08, cy + 0.056), (cx - 0.03, cy + 0.05), (cx, cy + 0.03)),
        ]
    )
    tail = np.vstack(
        [
            bezier((cx - 0.09, cy + 0.012), (cx - 0.17, cy + 0.05), (cx - 0.235, cy + 0.04), (cx - 0.228, cy - 0.006)),
            bezier(
                (cx - 0.228, cy - 0.006), (cx - 0.225, cy - 0.026), (cx - 0.203, cy - 0.028), (cx - 0.2, cy - 0.014)
            )[1:],
        ]
    )
    widths = np.r_[np.linspace(0.05, 0.012, 48), np.linspace(0.012, 0.004, 47)]
    halves = [body, stroke(tail, widths)]
    shape = halves + [mirror(p, cx) for p in halves]
    grad = cv.vertical_gradient(cy - 0.03, cy + 0.05, (34, 22, 14), (100, 70, 44))
    cov = cv.mask(*shape)
    cv.paint(cov, grad)
    # hair strokes fanning out from the middle
    rng = np.random.default_rng(7)
    for sign in (-1.0, 1.0):
        for _ in range(90):
            u = rng.uniform(0.0, 0.17)
            px = cx + sign * u
            py = cy + 0.005 + 0.03 * (u / 0.17) ** 1.5 + rng.uniform(-0.02, 0.02)
            ang = np.deg2rad(rng.uniform(50, 75))
            d = np.array([sign * np.sin(ang), np.cos(ang)]) * 0.022
            tone = (160, 118, 80) if rng.random() < 0.5 else (12, 8, 5)
            cv.paint(cov * cv.mask(stroke(np.array([[px, py] - d, [px, py] + d]), 0.0035)), tone, 0.35)
    # the philtrum notch: a soft gap in the middle of the top edge
    cv.rgba *= 1.0 - cv.mask(ellipse((cx, cy - 0.03), 0.01, 0.025))[..., None] * 0.9
    return _overlay(cv, [(33, 51), (48,), (54,)], "moustache")


def hat() -> Overlay:
    """A black top hat with a red band, its brim above the brows, as wide as the jaw."""
    cv = Canvas(-0.02, -0.46, 1.02, 0.28)
    brim_y = CANONICAL[BROWS][1] - 0.13
    crown_bottom, crown_top = brim_y - 0.01, brim_y - 0.55
    black = (22, 22, 28)
    # brim (a flat ellipse seen from the front) with a soft edge highlight
    cv.fill(ellipse((0.5, brim_y), 0.5, 0.065), black)
    edge = ellipse((0.5, brim_y), 0.49, 0.058, 0.05 * np.pi, 0.95 * np.pi)
    cv.paint(cv.mask(stroke(edge, 0.01)), (80, 80, 92), 0.7)
    # crown: a slightly flared cylinder, shaded as if lit from the upper left
    rel = np.clip((cv.ux - 0.5) / 0.32, -1.0, 1.0)
    light = 0.55 + 0.45 * np.cos((rel + 0.35) * np.pi / 1.6) ** 2
    shade = np.asarray(black, np.float32) + np.array([55, 55, 62], np.float32) * light[..., None] ** 3
    crown = np.vstack(
        [ellipse((0.5, crown_top), 0.32, 0.05, np.pi, 0.0), ellipse((0.5, crown_bottom), 0.3, 0.05, 0.0, np.pi)]
    )
    cv.paint(cv.mask(crown), shade)
    # red band just above the brim
    band = np.vstack(
        [
            ellipse((0.5, crown_bottom - 0.1), 0.305, 0.05, np.pi, 0.0),
            ellipse((0.5, crown_bottom), 0.3, 0.05, 0.0, np.pi),
        ]
    )
    band_color = np.asarray((150, 22, 34), np.float32) * np.clip(0.6 + 0.6 * light[..., None], 0.0, 1.2)
    cv.paint(cv.mask(band), band_color)
    # the top of the crown
    cv.fill(ellipse((0.5, crown_top), 0.32, 0.05), (48, 48, 56))
    rim = ellipse((0.5, crown_top), 0.31, 0.043, np.pi * 1.05, np.pi * 1.6)
    cv.paint(cv.mask(stroke(rim, 0.008)), (120, 120, 135), 0.6)
    return _overlay(cv, [BROWS, (0,), (16,)], "hat")


def cat() -> Overlay:
    """Cat ears on the head, a pink nose on the nose tip (30) and whiskers."""
    cv = Canvas(0.0, -0.42, 1.0, 0.74)
    fur, fur_dark, pink = (236, 150, 62), (130, 70, 25), (246, 150, 170)
    for sign in (-1.0, 1.0):
        outer = np.vstack(
            [
                bezier((0.10, 0.10), (0.08, -0.05), (0.10, -0.22), (0.16, -0.34), 40),
                bezier((0.16, -0.34), (0.24, -0.27), (0.34, -0.17), (0.42, -0.07), 40),
                bezier((0.42, -0.07), (0.33, -0.02), (0.20, 0.04), (0.10, 0.10), 40),
            ]
        )
        inner = np.vstack(
            [
                bezier((0.15, 0.04), (0.14, -0.06), (0.15, -0.17), (0.18, -0.26), 40),
                bezier((0.18, -0.26), (0.24, -0.20), (0.31, -0.13), (0.36, -0.07), 40),
                bezier((0.36, -0.07), (0.30, -0.03), (0.22, 0.01), (0.15, 0.04), 40),
            ]
        )
        cv.fill(_side(stroke(np.vstack([outer, outer[:1]]), 0.022), sign), fur_dark)
        cv.fill(_side(outer, sign), cv.vertical_gradient(-0.34, 0.1, (250, 176, 90), fur))
        cv.fill(_side(inner, sign), cv.vertical_gradient(-0.26, 0.04, (250, 190, 200), pink))
        # whiskers
        for dy, bend in ((-0.035, -0.02), (0.0, 0.0), (0.035, 0.025)):
            start = np.array([0.40, 0.625 + dy * 0.5])
            end = np.array([0.05, 0.60 + dy * 2.2])
            path = bezier(start, start + (-0.12, bend * 0.3), end + (0.12, -bend * 0.2), end, 40)
            w = np.linspace(0.009, 0.003, len(path))
            cv.fill(_side(stroke(path, w + 0.004), sign), (255, 255, 255), 0.5)
            cv.fill(_side(stroke(path, w), sign), (30, 30, 34), 0.95)
    # nose: a rounded inverted triangle on the nose tip, and a small mouth under it
    nx, ny = CANONICAL[(30,)]
    nose = np.vstack(
        [
            bezier((nx - 0.05, ny - 0.022), (nx - 0.03, ny - 0.035), (nx + 0.03, ny - 0.035), (nx + 0.05, ny - 0.022)),
            bezier((nx + 0.05, ny - 0.022), (nx + 0.055, ny - 0.005), (nx + 0.015, ny + 0.03), (nx, ny + 0.032)),
            bezier((nx, ny + 0.032), (nx - 0.015, ny + 0.03), (nx - 0.055, ny - 0.005), (nx - 0.05, ny - 0.022)),
        ]
    )
    cv.fill(stroke(np.vstack([nose, nose[:1]]), 0.01), (120, 50, 70))
    cv.fill(nose, cv.vertical_gradient(ny - 0.035, ny + 0.03, (255, 185, 200), (226, 110, 140)))
    cv.fill(ellipse((nx - 0.015, ny - 0.017), 0.014, 0.007), (255, 240, 245), 0.7)
    mouth_line = np.c_[np.full(12, nx), np.linspace(ny + 0.03, ny + 0.06, 12)]
    cv.fill(stroke(mouth_line, 0.007), (60, 30, 40))
    for sign in (-1.0, 1.0):
        arc = ellipse((nx + sign * 0.025, ny + 0.06), 0.025, 0.02, 0.0, np.pi)
        cv.fill(stroke(arc, 0.007), (60, 30, 40))
    return _overlay(cv, [BROWS, (0,), (16,), (30,)], "cat")


#: Built-in overlay makers by name.
SPRITES: dict[str, Callable[[], Overlay]] = {
    "sunglasses": sunglasses,
    "moustache": moustache,
    "hat": hat,
    "cat": cat,
}
