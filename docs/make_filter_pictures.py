"""Make the filter pictures of docs/filters.md and the README with the real pipeline on matplotlib's sample portrait.

    python docs/make_filter_pictures.py [--out docs]

Writes ``filters_before_after.png`` (the photo, then the photo through ``sunglasses``) and
``filters_gallery.png`` (every built-in filter on the face), both drawn by ``facekeypoints``
itself: the default face detector, the bundled landmark model, ``facekeypoints.filters.apply``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facekeypoints import FaceKeypointDetector, filters, load_image
from facekeypoints.commands.demo import sample_image_path
from facekeypoints.outputs import atomic_write

GAP = 6  # pixels of white between panels


def side_by_side(images: list[np.ndarray]) -> np.ndarray:
    h = max(im.shape[0] for im in images)
    gap = np.full((h, GAP, 3), 255, np.uint8)
    parts = []
    for i, im in enumerate(images):
        if i:
            parts.append(gap)
        parts.append(np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.hstack(parts)


def save_png(path: Path, rgb: np.ndarray) -> None:
    """Write a picture atomically, compressed harder than the CLI bothers to."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise SystemExit(f"{path}: cannot encode")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.tobytes())


def shrink(rgb: np.ndarray, scale: float) -> np.ndarray:
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="folder (default: docs/)")
    args = parser.parse_args()
    out = Path(args.out)

    rgb = load_image(sample_image_path())
    faces = FaceKeypointDetector()(rgb)
    if len(faces) != 1:
        raise SystemExit(f"expected one face in the sample portrait, found {len(faces)}")

    after = filters.apply(rgb, faces, "sunglasses")
    save_png(out / "filters_before_after.png", shrink(side_by_side([rgb, after]), 0.5))

    # every built-in on the head and shoulders: a crop around the face, with room above for hats and ears
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    side = x1 - x0
    cx = (x0 + x1) // 2
    top, bottom = max(0, y0 - side // 2), min(rgb.shape[0], y1 + side // 4)
    left, right = max(0, cx - 3 * side // 4), min(rgb.shape[1], cx + 3 * side // 4)
    tiles = [filters.apply(rgb, faces, name)[top:bottom, left:right] for name in filters.names()]
    scale = 170.0 / (right - left)
    save_png(out / "filters_gallery.png", side_by_side([shrink(t, scale) for t in tiles]))
    print(f"wrote {out / 'filters_before_after.png'} and {out / 'filters_gallery.png'}")


if __name__ == "__main__":
    main()
