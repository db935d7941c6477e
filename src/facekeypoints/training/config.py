"""Training configuration: one dataclass, overridable by CLI flags or a JSON file."""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import io
import json
import math
import textwrap
import tokenize
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..errors import InputError


@dataclass
class TrainConfig:
    """Everything a training run depends on. Saved as ``config.json`` beside its checkpoints.

    Each field's ``#:`` comment is its flag's ``--help`` text (:func:`field_help`): keep one per field.
    """

    arch: str = "pip-w112"  #: registered architecture (see facekeypoints.models.available())
    #: training data, repeatable: Udacity zips/folders and 300-W .pts folders; none = the fetched Udacity zip
    data: list[str] = field(default_factory=list)
    data_weights: str = ""  #: comma list, one per --data: faces drawn per epoch = weight x faces; empty = 1 each
    #: comma list, one per --data: weight of that source's 17 jaw points in the loss (0 = its jaw labels are
    #: not learned, the jaw comes from the other sources; empty = 1 each)
    data_jaw_weights: str = ""
    #: landmark convention the model learns; each source's labels are converted to it (conventions.py)
    convention: str = "ibug"
    out: str = "runs/train"  #: runs go to OUT/1, OUT/2, ... (never overwritten)
    epochs: int = 100  #: passes over the training faces (at least 1)
    batch_size: int = 32  #: crops per optimiser step and process
    lr: float = 3e-3  #: peak AdamW learning rate (2e-2 was no better at full length: architecture_sweep.md)
    weight_decay: float = 5e-5  #: AdamW weight decay
    warmup_epochs: float = 2.0  #: epochs of linear learning-rate warm-up before the cosine decay
    seed: int = 0  #: seed of the split, the initial weights and every augmentation
    val_fraction: float = 0.1  #: fraction of training people (300-W: photos) held out for validation, 0 to under 1
    crop_scale: float = 1.25  #: crop side / tight keypoint box side
    ema: float = 0.998  #: decay of the weight moving average used for validation and export (0 = off)
    offset_weight: float = 5.0  #: PIP head: weight of the offset L1 against the cell cross-entropy
    point_weight: float = 0.0  #: PIP head: weight of an L1 loss on the decoded points (cell units)
    label_sigma: float = 0.0  #: PIP head: cell label as a Gaussian of this many cells (0 = one-hot)
    neighbour_weight: float = 0.25  #: PIP head: weight of the 8 neighbouring cells' offset L1
    #: PIP head: weight of the 17 jaw points' loss terms against the other points' (1 = equal; the mean
    #: weight stays 1): the jaw line is most of the gap to dlib on real photos (architecture_sweep.md)
    jaw_weight: float = 1.0
    rotate_deg: float = 25.0  #: max |rotation| of a crop in degrees (real photos roll their heads)
    scale_jitter: float = 0.08  #: jittered crops: side multiplied by exp(U(-s, s))
    shift: float = 0.05  #: jittered crops: max centre shift as a fraction of the crop side
    #: faces stretched wider or narrower in the crop: width by exp(u), height by exp(-u), u ~ U(-s, s); not in
    #: the finishing epochs
    stretch: float = 0.0
    #: mirror probability, for sources with mirror-consistent labels (300-W); Udacity crops are never
    #: mirrored, their labels are not mirror-consistent (training/mirror.py)
    flip_prob: float = 0.5
    jitter_prob: float = 0.3  #: share of crops jittered like a detector box; the rest stay nearly on the crop rule
    occlusion_prob: float = 0.0  #: share of crops with a random rectangle over part of them
    #: share of those rectangles that are a mirrored patch of the same crop from elsewhere (textured like real
    #: occluders: skin, hair, clothes, background); the rest are one flat grey
    occlusion_texture: float = 0.0
    photometric: float = 1.0  #: strength of the colour, blur and noise changes (1 = AugmentConfig's, 0 = none)
    #: last N epochs: rotation, photometric strength and mirroring capped by the --finish-* values (crops
    #: nearer the measured ones); at most half the run's epochs (--epochs 2 has 1 finishing epoch)
    finish_epochs: int = 24
    finish_rotate_deg: float = 3.0  #: max |rotation| in degrees during the finishing epochs
    finish_photometric: float = 1.0  #: photometric strength during the finishing epochs (at most --photometric)
    finish_flip_prob: float = 0.5  #: mirror probability during the finishing epochs (at most --flip-prob)
    threads: int = 0  #: torch intra-op threads per process (0 = torch's default)
    workers: int = 0  #: DataLoader worker processes
    limit: int = 0  #: use only the first N training faces (0 = all); for quick trials
    max_steps: int = 0  #: stop after this many optimiser steps in total (0 = run all epochs)
    checkpoint_minutes: float = 5.0  #: also checkpoint mid-epoch this often
    resume: str = ""  #: run folder or checkpoint to continue
    init: str = ""  #: checkpoint or "bundled" to start from (transfer learning)
    profile: bool = False  #: write a torch profiler trace of a few steps into the run folder
    progress: bool = True  #: show a progress bar per epoch

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # configs written before --data could be repeated
            self.data = [self.data] if self.data else []
        else:
            self.data = [str(d) for d in self.data]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, values: dict) -> TrainConfig:
        """The settings a run saved (its ``config.json``, or a checkpoint's ``config``); keys this
        version does not have (``world_size``, settings since removed) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def finishing_epochs(self) -> int:
        """How many of the last epochs are finishing ones: ``finish_epochs``, at most half of ``epochs``
        (so a short trial run is not all finishing phase)."""
        return max(0, min(self.finish_epochs, self.epochs // 2))

    def source_weights(self, n_sources: int) -> list[float]:
        """``data_weights`` as one positive number per source (all 1 when it is empty)."""
        return _per_source("data_weights", self.data_weights, n_sources, zero_ok=False)

    def source_jaw_weights(self, n_sources: int) -> list[float]:
        """``data_jaw_weights`` as one number >= 0 per source (all 1 when it is empty)."""
        return _per_source("data_jaw_weights", self.data_jaw_weights, n_sources, zero_ok=True)

    def validate(self) -> TrainConfig:
        """Refuse impossible settings with a one-line :class:`InputError` naming the flag; ``self`` if
        all is well. ``facekeypoints train`` calls it before it creates anything."""
        for f in fields(self):
            _check_type(f.name, str(f.type), getattr(self, f.name))
        for name, (test, what) in _RULES.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and test(value)):
                raise InputError(f"{_flag(name)} {value!r}: must be {what}")
        from ..conventions import check_convention

        check_convention(self.convention)
        self.source_weights(max(1, len(self.data)))
        self.source_jaw_weights(max(1, len(self.data)))
        try:
            from ..models import available  # torch
        except ModuleNotFoundError:
            available = None
        if available is not None and self.arch not in available():
            raise InputError(f"{_flag('arch')} {self.arch!r}: unknown architecture; valid: {', '.join(available())}")
        return self


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _per_source(name: str, text: str, n_sources: int, zero_ok: bool) -> list[float]:
    """``text`` (a comma list) as one number per ``--data`` source, 1 each when it is empty; a one-line
    :class:`InputError` naming the flag when it does not parse, has the wrong length or a bad value."""
    flag = _flag(name)
    if not text:
        return [1.0] * n_sources
    try:
        values = [float(w) for w in str(text).split(",")]
    except ValueError:
        raise InputError(f"{flag} must be numbers separated by commas, got {text!r}") from None
    if len(values) != n_sources:
        raise InputError(f"{flag} has {len(values)} values for {n_sources} --data sources")
    if any(not math.isfinite(w) or w < 0 or (w == 0 and not zero_ok) for w in values):
        raise InputError(f"{flag} must all be {'zero or ' if zero_ok else ''}positive, got {text!r}")
    return values


def _check_type(name: str, typ: str, value) -> None:
    """A one-line error for a value of the wrong type (from a ``--config`` file, or Python)."""
    if typ == "bool":
        ok, what = isinstance(value, bool), "true or false"
    elif typ == "int":
        ok, what = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif typ == "float":
        ok, what = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif typ == "str":
        ok, what = isinstance(value, str), "a string"
    else:  # list[str]
        ok, what = isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of paths"
    if not ok:
        raise InputError(f"{_flag(name)} {value!r}: must be {what}")


_POSITIVE = (lambda v: v > 0, "a positive number")
_AT_LEAST_1 = (lambda v: v >= 1, "at least 1")
_NOT_NEGATIVE = (lambda v: v >= 0, "0 or more")
_PROBABILITY = (lambda v: 0 <= v <= 1, "a probability from 0 to 1")
_DEGREES = (lambda v: 0 <= v <= 180, "from 0 to 180 degrees")

#: The range of every numeric field, checked by :meth:`TrainConfig.validate`.
_RULES = {
    "epochs": _AT_LEAST_1,
    "batch_size": _AT_LEAST_1,
    "lr": _POSITIVE,
    "weight_decay": _NOT_NEGATIVE,
    "warmup_epochs": _NOT_NEGATIVE,
    "seed": _NOT_NEGATIVE,
    "val_fraction": (lambda v: 0 <= v < 1, "from 0 to under 1"),
    "crop_scale": _POSITIVE,
    "ema": (lambda v: 0 <= v < 1, "from 0 (off) to under 1"),
    "offset_weight": _POSITIVE,
    "point_weight": _NOT_NEGATIVE,
    "label_sigma": _NOT_NEGATIVE,
    "neighbour_weight": _NOT_NEGATIVE,
    "jaw_weight": _POSITIVE,
    "rotate_deg": _DEGREES,
    "scale_jitter": _NOT_NEGATIVE,
    "shift": _NOT_NEGATIVE,
    "stretch": (lambda v: 0 <= v <= 0.5, "from 0 to 0.5"),
    "flip_prob": _PROBABILITY,
    "jitter_prob": _PROBABILITY,
    "occlusion_prob": _PROBABILITY,
    "occlusion_texture": _PROBABILITY,
    "photometric": _NOT_NEGATIVE,
    "finish_epochs": _NOT_NEGATIVE,
    "finish_rotate_deg": _DEGREES,
    "finish_photometric": _NOT_NEGATIVE,
    "finish_flip_prob": _PROBABILITY,
    "threads": _NOT_NEGATIVE,
    "workers": _NOT_NEGATIVE,
    "limit": _NOT_NEGATIVE,
    "max_steps": _NOT_NEGATIVE,
    "checkpoint_minutes": _NOT_NEGATIVE,
}


@functools.cache
def field_help(cls=TrainConfig) -> dict[str, str]:
    """Each field's ``#:`` comment in ``cls``'s source: on the field's own lines, or on the comment
    lines just above it (Sphinx's convention). Empty where the source cannot be read."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):  # base classes first, so a subclass's comments win
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        comments = {
            tok.start[0]: tok.string[2:].strip()
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT and tok.string.startswith("#:")
        }
        lines = source.splitlines()
        body = ast.parse(source).body[0]
        for node in getattr(body, "body", []):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            text = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
            if not text:
                n = node.lineno - 1
                while n in comments and lines[n - 1].lstrip().startswith("#:"):
                    text.insert(0, comments[n])
                    n -= 1
            if text:
                out[node.target.id] = " ".join(text)
    return out


def add_config_arguments(parser: argparse.ArgumentParser, cls=TrainConfig) -> None:
    """One ``--flag`` per dataclass field (``--batch-size``...), its help the field's ``#:`` comment,
    plus ``--config FILE.json``."""
    parser.add_argument("--config", default=None, help="JSON file of field values (flags override it)")
    helps = field_help(cls)
    for f in fields(cls):
        flag = _flag(f.name)
        default = f.default if f.default is not MISSING else None
        text = helps.get(f.name, "").replace("%", "%%")  # argparse %-formats help strings
        if str(f.type).startswith("list"):
            parser.add_argument(
                flag, dest=f.name, action="append", default=None, help=f"{text} (repeatable; default: none)".lstrip()
            )
        elif f.type in (bool, "bool"):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{text} (default: {default})".lstrip(),
            )
        else:
            typ = {"int": int, "float": float, "str": str}.get(str(f.type), str)
            parser.add_argument(
                flag, dest=f.name, type=typ, default=None, help=f"{text} (default: {default!r})".lstrip()
            )


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
