"""Aligned face crops for a face-recognition model (ArcFace-style 112x112 input).

    python examples/aligned_crops.py photo.jpg [more.jpg ...] --out crops/ [--size 112]

Each face is rotated, scaled and shifted so that its eyes, nose tip and mouth corners land on a
fixed template (eyes level, at the same place in every crop), as recognition models expect.
Writes one PNG per face (``<photo>_face<i>.png``), and ``batch.npy``: every crop as a float32
(N, 3, size, size) array normalised as ArcFace-style models take it, ``(pixel - 127.5) / 128``,
RGB, with ``batch.json`` saying which photo and face each row is. Feed ``batch.npy`` to your model
(for example an ONNX Runtime session) to get one embedding per face.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import facekeypoints as fk
from facekeypoints.align import align_face
from facekeypoints.outputs import save_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("photos", nargs="+", help="image files")
    parser.add_argument("--out", default="crops", help="folder for the crops (default: %(default)s)")
    parser.add_argument("--size", type=int, default=112, help="crop side in pixels (default: %(default)s)")
    parser.add_argument("--min-quality", type=float, default=0.2, help="skip faces the model is unsure of")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    detector = fk.FaceKeypointDetector()
    crops, index = [], []
    for path in args.photos:
        rgb = fk.load_image(path)
        for i, face in enumerate(detector(rgb)):
            if face.quality is not None and face.quality < args.min_quality:
                continue
            crop = align_face(rgb, face.keypoints, size=args.size)  # (size, size, 3) RGB uint8
            name = out / f"{Path(path).stem}_face{i}.png"
            save_image(name, crop)
            crops.append(crop)
            index.append({"photo": path, "face": i, "box": [round(float(v), 2) for v in face.box], "crop": name.name})

    batch = np.zeros((0, 3, args.size, args.size), np.float32)
    if crops:
        batch = (np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 128.0
    np.save(out / "batch.npy", batch)
    (out / "batch.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"{len(crops)} aligned face(s) -> {out}/ (batch.npy: {tuple(batch.shape)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
