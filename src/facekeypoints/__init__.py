"""facekeypoints: find faces and place the 68 iBUG landmarks on each.

>>> import facekeypoints as fk
>>> faces = fk.FaceKeypointDetector()("photo.jpg")   # list[Face]: .box, .score, .keypoints (68, 2) pixels
"""

from .image_io import load_image
from .pipeline import Face, FaceKeypointDetector

__version__ = "0.2.0"

__all__ = ["FaceKeypointDetector", "Face", "load_image", "__version__"]
