"""Training and validation sets: faces held in memory, augmented on the fly.

Each sample's randomness comes from ``(seed, epoch, index)`` alone, so an epoch
is reproducible and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..augment import AugmentConfig, augment
from ..data.udacity import Sample, UdacityDataset, train_val_split
from ..errors import DataError
from ..geometry import CropRule, apply_affine, box_crop_matrix, keypoint_box, warp
from .config import TrainConfig


def load_faces(cfg: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    """(train, val) samples. Udacity: the held-out people of its training split; never its test split."""
    root = cfg.data
    if not root:
        from ..data.fetch import default_udacity_path

        root = str(default_udacity_path())
    path = Path(root)
    if path.is_dir() and any(path.rglob("*.pts")):
        from ..data.pts import PtsDataset

        samples = PtsDataset(path).load()
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(samples))
        n_val = int(round(len(samples) * cfg.val_fraction))
        val = [samples[i] for i in sorted(order[:n_val])]
        train = [samples[i] for i in sorted(order[n_val:])]
    else:
        ds = UdacityDataset(path)
        names = [n for n, _ in ds.annotations("training")]
        if cfg.limit:
            names = names[: cfg.limit]
        train_names, val_names = train_val_split(names, cfg.val_fraction, cfg.seed)
        all_samples = {s.name: s for s in ds.iter_samples("training", set(names))}
        train = [all_samples[n] for n in train_names]
        val = [all_samples[n] for n in val_names]
    if not train:
        raise DataError(f"{root}: no training faces")
    return train, val


def augment_config(cfg: TrainConfig, epoch: int) -> AugmentConfig:
    """The augmentation of 0-based ``epoch``: the configured ranges, with rotations capped at
    ``cfg.finish_rotate_deg``, photometric strength at ``cfg.finish_photometric`` and the mirror
    probability at ``cfg.finish_flip_prob`` in the last ``cfg.finish_epochs`` epochs (a finishing
    phase on crops closer to the upright, unmirrored "gt"-rule crops the model is measured on)."""
    rotate, strength, flip = cfg.rotate_deg, cfg.photometric, cfg.flip_prob
    if epoch >= cfg.epochs - cfg.finish_epochs:
        rotate = min(rotate, cfg.finish_rotate_deg)
        strength = min(strength, cfg.finish_photometric)
        flip = min(flip, cfg.finish_flip_prob)
    return AugmentConfig(
        rotate_deg=rotate,
        scale=cfg.scale_jitter,
        shift=cfg.shift,
        flip_prob=flip,
        jitter_prob=cfg.jitter_prob,
        occlusion_prob=cfg.occlusion_prob,
    ).with_photometric_strength(strength)


class AugmentedFaces(Dataset):
    """Random crops of the training faces: (3, S, S) float [0, 255] RGB, (68, 2) crop pixels."""

    def __init__(self, samples: list[Sample], size: int, rule: CropRule, aug: AugmentConfig, seed: int):
        self.samples, self.size, self.rule, self.aug, self.seed = samples, size, rule, aug, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        crop, kps = augment(s.image, s.keypoints, self.rule, self.size, self.aug, rng)
        return torch.from_numpy(crop).permute(2, 0, 1).float(), torch.from_numpy(kps)


def fixed_crops(samples: list[Sample], size: int, rule: CropRule) -> tuple[torch.Tensor, torch.Tensor]:
    """Un-augmented "gt"-rule crops for validation: (N, 3, S, S) float, (N, 68, 2) crop pixels."""
    xs, ys = [], []
    for s in samples:
        m = box_crop_matrix(keypoint_box(s.keypoints), rule, size)
        xs.append(warp(s.image, m, size))
        ys.append(apply_affine(s.keypoints, m))
    if not xs:
        return torch.zeros(0, 3, size, size), torch.zeros(0, 68, 2)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float()
    return x, torch.from_numpy(np.stack(ys))
