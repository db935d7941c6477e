"""Training configuration: one dataclass, overridable by CLI flags or a JSON file."""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..errors import InputError


@dataclass
class TrainConfig:
    """Everything a training run depends on. Saved as ``config.json`` beside its checkpoints."""

    arch: str = "pip-s2"  #: registered architecture (see facekeypoints.models.available())
    data: list[str] = field(
        default_factory=list
    )  #: --data repeated: Udacity zips/folders and 300-W .pts folders; none = the fetched Udacity zip
    data_weights: str = ""  #: comma list, one per --data: faces drawn per epoch = weight x faces (default 1 each)
    convention: str = (
        "ibug"  #: landmark convention the model learns; each source's labels are converted to it (conventions.py)
    )
    out: str = "runs/train"  #: runs go to OUT/1, OUT/2, ... (never overwritten)
    epochs: int = 120
    batch_size: int = 32
    lr: float = 3e-3  #: peak AdamW learning rate (2e-2 was no better at full length: architecture_sweep.md)
    weight_decay: float = 5e-5
    warmup_epochs: float = 2.0
    seed: int = 0
    val_fraction: float = 0.1  #: fraction of training people held out for validation
    crop_scale: float = 1.25  #: crop side / tight keypoint box side
    ema: float = 0.998  #: decay of the weight moving average used for validation and export (0 = off)
    offset_weight: float = 5.0  #: PIP head: weight of the offset L1 against the cell cross-entropy
    point_weight: float = 0.0  #: PIP head: weight of an L1 loss on the decoded points (cell units)
    label_sigma: float = 0.0  #: PIP head: cell label as a Gaussian of this many cells (0 = one-hot)
    neighbour_weight: float = 0.25  #: PIP head: weight of the 8 neighbouring cells' offset L1
    rotate_deg: float = 25.0  #: max |rotation| of a crop in degrees (real photos roll their heads)
    scale_jitter: float = 0.08
    shift: float = 0.05
    #: mirror probability, for sources with mirror-consistent labels (300-W); Udacity crops are never
    #: mirrored, their labels are not mirror-consistent (training/mirror.py)
    flip_prob: float = 0.5
    jitter_prob: float = 0.3  #: share of crops jittered like a detector box; the rest stay nearly on the crop rule
    occlusion_prob: float = 0.0
    photometric: float = 1.0  #: strength of the colour, blur and noise changes (1 = AugmentConfig's, 0 = none)
    finish_epochs: int = 28  #: last N epochs: rotations capped at finish_rotate_deg (nearer the measured crops)
    finish_rotate_deg: float = 3.0  #: max |rotation| in degrees during the finishing epochs
    finish_photometric: float = 1.0  #: photometric strength during the finishing epochs (at most ``photometric``)
    finish_flip_prob: float = 0.5  #: mirror probability during the finishing epochs (at most ``flip_prob``)
    threads: int = 0  #: torch intra-op threads per process (0 = torch's default)
    workers: int = 0  #: DataLoader worker processes
    limit: int = 0  #: use only the first N training faces (0 = all); for quick trials
    max_steps: int = 0  #: stop after this many optimiser steps in total (0 = run all epochs)
    checkpoint_minutes: float = 5.0  #: also checkpoint mid-epoch this often
    resume: str = ""  #: run folder or checkpoint to continue
    init: str = ""  #: checkpoint or "bundled" to start from (transfer learning)
    profile: bool = False  #: write a torch profiler trace of a few steps into the run folder
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # configs written before --data could be repeated
            self.data = [self.data] if self.data else []
        else:
            self.data = [str(d) for d in self.data]

    def to_dict(self) -> dict:
        return asdict(self)


def add_config_arguments(parser: argparse.ArgumentParser, cls=TrainConfig) -> None:
    """One ``--flag`` per dataclass field (``--batch-size``...), plus ``--config FILE.json``."""
    parser.add_argument("--config", default=None, help="JSON file of field values (flags override it)")
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if str(f.type).startswith("list"):
            parser.add_argument(flag, dest=f.name, action="append", default=None, help="(repeatable; default: none)")
        elif f.type in (bool, "bool"):
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=f"(default: {default})"
            )
        else:
            typ = {"int": int, "float": float, "str": str}.get(str(f.type), str)
            parser.add_argument(flag, dest=f.name, type=typ, default=None, help=f"(default: {default!r})")


def config_from_args(args: argparse.Namespace, cls=TrainConfig):
    """Defaults, then ``--config`` file values, then explicit flags."""
    values: dict = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            values.update(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read config ({exc})") from None
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise InputError(f"{args.config}: unknown config keys {sorted(unknown)}")
    for name in names:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    return cls(**values)
