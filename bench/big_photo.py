"""A 61-megapixel camera photo through ``facekeypoints detect``: found faces, time and peak memory.

Grace Hopper's sample portrait is enlarged to the height of a 9504x6336 frame (a full-frame
camera's 61 MP) and written as a JPEG; ``facekeypoints detect`` reads it in a fresh process whose peak resident
memory (``ru_maxrss`` of the child) and wall time are recorded. Writes ``results/big_photo.json``.

    python bench/big_photo.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from matplotlib import cbook

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    rgb = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    h, w = rgb.shape[:2]
    face = cv2.resize(rgb, (round(w * 6336 / h), 6336), interpolation=cv2.INTER_CUBIC)
    big = np.full((6336, 9504, 3), 90, np.uint8)  # a gray backdrop, the portrait in the middle
    x0 = (9504 - face.shape[1]) // 2
    big[:, x0 : x0 + face.shape[1]] = face
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "camera_61mp.jpg"
        cv2.imwrite(str(photo), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        out = Path(tmp) / "r.json"
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "facekeypoints", "detect", str(photo), "--json", str(out)],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        faces = json.loads(out.read_text())["images"][0]["faces"] if proc.returncode == 0 else None
        report = {
            "photo": "grace_hopper.jpg enlarged to 6336 px high in a 9504x6336 (60.2 MP) gray frame, JPEG quality 90",
            "file_mb": round(photo.stat().st_size / 1e6, 1),
            "exit_code": proc.returncode,
            "stderr": proc.stderr.strip()[-300:],
            "faces": None if faces is None else len(faces),
            "wall_s_including_start": round(wall, 2),
            "peak_rss_mb": round(peak_mb),
            "decoded_rgb_mb": round(9504 * 6336 * 3 / 1e6),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "big_photo.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
