"""A filter that follows every face, live from a webcam or from a video file.

    python examples/webcam_filter.py                         # the first webcam, sunglasses, in a window
    python examples/webcam_filter.py 0 --filter cat --out me.mp4 --max-frames 300
    python examples/webcam_filter.py clip.mp4 --filter blur --out blurred.mp4

SOURCE is a webcam index (0, 1, ...) or a video file. Faces are tracked from frame to frame and
their landmarks smoothed, so the overlay sits still on a still face. ``--show`` opens a window
(Esc or q to stop; needs an OpenCV with a GUI: ``pip install opencv-python``, not the headless
build this package installs); without ``--show`` nor ``--out`` it only prints what it sees.
"""

from __future__ import annotations

import argparse
import sys

from facekeypoints import filters
from facekeypoints.video import Tracker, VideoWriter, open_video


def show(rgb) -> bool:
    """Show a frame in a window; False when the user pressed Esc or q."""
    import cv2

    try:
        cv2.imshow("facekeypoints", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF not in (27, ord("q"))
    except cv2.error:
        sys.exit("this OpenCV has no GUI (opencv-python-headless); use --out FILE, or pip install opencv-python")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", nargs="?", default="0", help="webcam index or video file (default: 0)")
    parser.add_argument("--filter", default="sunglasses", help=f"one of {', '.join(filters.names())}")
    parser.add_argument("--out", help="write the filtered video here (.mp4, .avi)")
    parser.add_argument("--show", action="store_true", help="show the frames in a window")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: the whole video)")
    args = parser.parse_args(argv)

    effect = filters.get(args.filter)  # built once, applied to every frame
    tracker = Tracker()  # bundled model and face detector; tracks, smooths, keeps face ids
    source = int(args.source) if args.source.isdigit() else args.source
    writer = None
    with open_video(source) as video:
        if args.out:
            writer = VideoWriter(args.out, video.fps, video.size)
        try:
            for frame in video:
                faces = tracker.update(frame.rgb, frame.time)
                out = effect(frame.rgb, faces)  # a new RGB frame; frame.rgb is left as it was
                if writer is not None:
                    writer.write(out)
                if args.show and not show(out):
                    break
                if not args.show and not args.out:
                    print(f"frame {frame.index}: {len(faces)} face(s), ids {[f.track_id for f in faces]}")
                if args.max_frames and frame.index + 1 >= args.max_frames:
                    break
        except KeyboardInterrupt:  # Ctrl-C stops a webcam; the video file is still closed properly
            pass
        finally:
            if writer is not None:
                writer.close()
                print(f"wrote {writer.frames} frames to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
