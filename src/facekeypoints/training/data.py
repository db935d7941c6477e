"""Training and validation sets: faces held in memory, augmented on the fly.

Each sample's randomness comes from ``(seed, epoch, index)`` alone, so an epoch
is reproducible and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..augment import AugmentConfig, augment
from ..conventions import check_convention, convert
from ..data.pts import PTS_CONVENTION, is_pts_folder
from ..data.udacity import UDACITY_CONVENTION, Sample, UdacityDataset, train_val_split
from ..errors import DataError
from ..geometry import CropRule, apply_affine, box_crop_matrix, keypoint_box, warp
from ..landmarks import JAW, NUM_LANDMARKS
from .config import TrainConfig


@dataclass
class Source:
    """One training data set: its path, kind ("udacity" or "pts"), the convention of its labels,
    whether its labels are mirror-consistent, its weight (faces drawn per epoch / faces) and the weight
    of its jaw points in the loss."""

    path: str
    kind: str
    convention: str
    mirror_consistent: bool
    weight: float = 1.0
    jaw_weight: float = 1.0


def sources(cfg: TrainConfig) -> list[Source]:
    """The ``--data`` sources of ``cfg`` with their ``--data-weights`` (default: the fetched Udacity zip)."""
    paths = list(cfg.data)
    if not paths:
        from ..data.fetch import default_udacity_path

        paths = [str(default_udacity_path())]
    weights = cfg.source_weights(len(paths))
    jaw_weights = cfg.source_jaw_weights(len(paths))
    out = []
    for p, w, jw in zip(paths, weights, jaw_weights):
        if is_pts_folder(p):
            # 300-W annotations are iBUG's own and mirror-consistent (FLIP_PERMUTATION is theirs)
            out.append(Source(p, "pts", PTS_CONVENTION, True, w, jw))
        else:
            out.append(Source(p, "udacity", UDACITY_CONVENTION, False, w, jw))
    return out


def image_group(name: str) -> str:
    """The photo a 300-W face crop came from: 300-W names the k-th face of photo NUMBER
    ``NUMBER_k`` (AFW, HELEN: a numeric photo id, k of one or two digits); any other name
    (``image_0001``, ``face_3``) is its own photo."""
    stem = name.rsplit(".", 1)[0]
    return re.sub(r"(?<=\d)_\d{1,2}$", "", stem)


def split_by_group(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, val) with every face of a photo on the same side; deterministic for ``seed``."""
    groups = sorted({image_group(s.name) for s in samples})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = max(1, int(round(len(groups) * val_fraction))) if val_fraction > 0 else 0
    val_groups = {groups[i] for i in order[:n_val]}
    train = [s for s in samples if image_group(s.name) not in val_groups]
    val = [s for s in samples if image_group(s.name) in val_groups]
    return train, val


def _load_source(src: Source, cfg: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    path = Path(src.path)
    if src.kind == "pts":
        from ..data.pts import PtsDataset

        samples = PtsDataset(path).load()
        if cfg.limit:
            samples = samples[: cfg.limit]
        return split_by_group(samples, cfg.val_fraction, cfg.seed)
    ds = UdacityDataset(path)
    names = [n for n, _ in ds.annotations("training")]
    if cfg.limit:
        names = names[: cfg.limit]
    train_names, val_names = train_val_split(names, cfg.val_fraction, cfg.seed)
    all_samples = {s.name: s for s in ds.iter_samples("training", set(names))}
    return [all_samples[n] for n in train_names], [all_samples[n] for n in val_names]


def _in_convention(samples: list[Sample], source: str, target: str) -> list[Sample]:
    if source == target or not samples:
        return samples
    kps = convert(np.stack([s.keypoints for s in samples]), source, target)
    return [replace(s, keypoints=k) for s, k in zip(samples, kps)]


def load_sources(cfg: TrainConfig) -> list[tuple[Source, list[Sample], list[Sample]]]:
    """``[(source, train, val)]``, labels converted to ``cfg.convention``. Udacity: held-out people of
    its training split (never its test split); 300-W folders: held-out photos (``split_by_group``)."""
    check_convention(cfg.convention)
    out = []
    for src in sources(cfg):
        train, val = _load_source(src, cfg)
        if not train:
            raise DataError(f"{src.path}: no training faces")
        out.append(
            (
                src,
                _in_convention(train, src.convention, cfg.convention),
                _in_convention(val, src.convention, cfg.convention),
            )
        )
    return out


def augment_config(cfg: TrainConfig, epoch: int) -> AugmentConfig:
    """The augmentation of 0-based ``epoch``: the configured ranges, with rotations capped at
    ``cfg.finish_rotate_deg``, photometric strength at ``cfg.finish_photometric`` and the mirror
    probability at ``cfg.finish_flip_prob`` in the last ``cfg.finishing_epochs()`` epochs (a finishing
    phase on crops closer to the upright, unmirrored "gt"-rule crops the model is measured on)."""
    rotate, strength, flip, stretch = cfg.rotate_deg, cfg.photometric, cfg.flip_prob, cfg.stretch
    if epoch >= cfg.epochs - cfg.finishing_epochs():
        stretch = 0.0
        rotate = min(rotate, cfg.finish_rotate_deg)
        strength = min(strength, cfg.finish_photometric)
        flip = min(flip, cfg.finish_flip_prob)
    return AugmentConfig(
        rotate_deg=rotate,
        scale=cfg.scale_jitter,
        shift=cfg.shift,
        stretch=stretch,
        flip_prob=flip,
        jitter_prob=cfg.jitter_prob,
        occlusion_prob=cfg.occlusion_prob,
        occlusion_texture=cfg.occlusion_texture,
    ).with_photometric_strength(strength)


class AugmentedFaces(Dataset):
    """Random crops of the training faces: (3, S, S) float [0, 255] RGB, (68, 2) crop pixels and
    (68,) loss weights of the points.

    ``groups``: ``[(samples, weight, mirror_ok)]`` or ``[(samples, weight, mirror_ok, jaw_weight)]``,
    one per source. Each epoch draws ``round(weight * len(samples))`` faces of a source (every face
    ``floor(weight)`` times, the rest a random share, fresh each epoch); only sources with
    ``mirror_ok`` are ever mirrored; a source's jaw points weigh ``jaw_weight`` (default 1) in the loss.
    """

    def __init__(self, groups, size: int, rule: CropRule, aug: AugmentConfig, seed: int):
        if groups and isinstance(groups[0], Sample):  # a plain list of faces: one source, weight 1
            groups = [(groups, 1.0, True)]
        groups = [tuple(g) + (1.0,) * (4 - len(g)) for g in groups]
        self.point_weights = []
        for *_, jaw_w in groups:
            pw = torch.ones(NUM_LANDMARKS)
            pw[list(JAW)] = float(jaw_w)
            self.point_weights.append(pw)
        self.groups = [(list(g), float(w), bool(m)) for g, w, m, _ in groups]
        self.samples = [s for g, _, _ in self.groups for s in g]
        self.size, self.rule, self.aug, self.seed = size, rule, aug, seed
        self.counts = [max(1, int(round(w * len(g)))) if g else 0 for g, w, _ in self.groups]
        self._epoch, self._plan = 0, self._make_plan(0)

    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        if value != self._epoch:
            self._epoch, self._plan = value, self._make_plan(value)

    def _make_plan(self, epoch: int) -> np.ndarray:
        """(len, 2) rows of (group, face index) for ``epoch``."""
        rows = []
        for gi, ((g, _, _), n) in enumerate(zip(self.groups, self.counts)):
            if not n:
                continue
            whole, rest = divmod(n, len(g))
            idx = np.tile(np.arange(len(g)), whole)
            if rest:
                idx = np.concatenate(
                    [idx, np.random.default_rng([self.seed, epoch, 7919, gi]).permutation(len(g))[:rest]]
                )
            rows.append(np.stack([np.full(len(idx), gi), idx], axis=1))
        return np.concatenate(rows) if rows else np.zeros((0, 2), int)

    def __len__(self) -> int:
        return len(self._plan)

    def __getitem__(self, i: int):
        gi, k = self._plan[i]
        g, _, mirror_ok = self.groups[gi]
        s = g[k]
        rng = np.random.default_rng([self.seed, self._epoch, i])
        aug = self.aug if mirror_ok or self.aug.flip_prob == 0 else replace(self.aug, flip_prob=0.0)
        crop, kps = augment(s.image, s.keypoints, self.rule, self.size, aug, rng)
        return torch.from_numpy(crop).permute(2, 0, 1).float(), torch.from_numpy(kps), self.point_weights[gi]


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
