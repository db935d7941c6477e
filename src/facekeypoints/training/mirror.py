"""A model's mirror offset: what test-time flip has to add back.

Test-time flip reads a crop and its mirror image, maps the mirror's points back
(:func:`facekeypoints.landmarks.flip_keypoints`) and averages the two answers. That is
only unbiased when the training labels are mirror-consistent. The Udacity labels are not:
their points sit about 1 crop pixel to the right of where mirroring the image would put
them, so a model trained without mirrored crops (the bundled one) answers a mirrored crop
2 pixels off. The offset table measures that per landmark on training faces, from the
model's own answers (no labels needed), and the pipeline adds it to the flipped answer.
"""

from __future__ import annotations

import numpy as np

from ..data.udacity import Sample
from ..geometry import CropRule
from ..landmarks import flip_keypoints


def mirror_offset(model, samples: list[Sample], rule: CropRule, limit: int = 1000) -> np.ndarray:
    """(68, 2) float32 crop pixels, x then y: the mean over up to ``limit`` faces (evenly spaced
    through ``samples``) of (points read from a "gt"-rule crop) minus (points read from its
    mirror image, mapped back). ``model``: a torch model in eval mode (``forward`` + ``decode``)."""
    import torch

    from .data import fixed_crops

    if not samples:
        raise ValueError("no faces to measure the mirror offset on")
    step = max(1, len(samples) // limit)
    x, _ = fixed_crops(samples[::step][:limit], model.input_size, rule)
    size = model.input_size
    diffs = []
    with torch.no_grad():
        for i in range(0, len(x), 128):
            batch = x[i : i + 128]
            p = model.decode(model(batch)).numpy()
            pm = flip_keypoints(model.decode(model(batch.flip(3))).numpy(), size)
            diffs.append(p - pm)
    return np.concatenate(diffs).mean(0).astype(np.float32)
