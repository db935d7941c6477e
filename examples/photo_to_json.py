"""Photos to JSON: every face's box, 68 landmarks, confidence and head pose.

    python examples/photo_to_json.py photo.jpg [more.jpg ...] [--out faces.json] [--min-quality 0.2]

Faces whose fit the model is unsure of (``quality`` under ``--min-quality``) are left out. The
records are the package's own (``Face.to_dict()``: pixels, x then y, iBUG 68-point order); the
command-line equivalent with more formats is ``facekeypoints detect PATH... --json FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys

import facekeypoints as fk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("photos", nargs="+", help="image files")
    parser.add_argument("--out", default="-", help="JSON file to write (default: stdout)")
    parser.add_argument("--min-quality", type=float, default=0.2, help="leave out faces below this quality")
    args = parser.parse_args(argv)

    detector = fk.FaceKeypointDetector()  # load the model once, use it for every photo
    doc = {"model": detector.model_info(), "photos": []}
    failed = 0
    for path in args.photos:
        try:
            rgb = fk.load_image(path)
        except fk.errors.FaceKeypointsError as exc:  # a missing, damaged or non-image file: say so, go on
            print(f"skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        faces = [f for f in detector(rgb) if f.quality is None or f.quality >= args.min_quality]
        height, width = rgb.shape[:2]
        doc["photos"].append({"path": path, "width": width, "height": height, "faces": [f.to_dict() for f in faces]})
        print(f"{path}: {len(faces)} face(s)", file=sys.stderr)

    text = json.dumps(doc, indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
