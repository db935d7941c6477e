"""facekeypoints: find faces and place the 68 iBUG landmarks on each."""

__version__ = "0.1.0"
