"""The training loop: seeded, resumable, single- or multi-process (torchrun, gloo on CPU).

Rank 0 alone writes: the run folder, ``config.json``, ``last.pt`` (every epoch
and every ``checkpoint_minutes``), ``best.pt`` (lowest validation NME) and
``history.json``. Checkpoints are written to a temporary file, then renamed.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .. import models
from ..errors import ModelError
from ..geometry import CropRule
from ..landmarks import OUTER_EYE_CORNERS
from .checkpoint import load_checkpoint, load_weights, save_atomic
from .config import TrainConfig
from .data import AugmentedFaces, augment_config, fixed_crops, load_sources
from .losses import loss_for
from .schedule import warmup_cosine
from .seeding import seed_everything


def next_run_dir(base: str | Path) -> Path:
    """The first ``base/N`` (N = 1, 2, ...) that does not exist yet, created."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        try:
            (base / str(n)).mkdir()
            return base / str(n)
        except FileExistsError:
            n += 1


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _broadcast(obj):
    rank, world = _dist_info()
    if world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@torch.no_grad()
def validate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128) -> float:
    """Mean NME_io (percent) of ``model`` on fixed crops ``x`` with crop-pixel truth ``y``."""
    if len(x) == 0:
        return float("nan")
    model.eval()
    preds = torch.cat([model.decode(model(x[i : i + batch])) for i in range(0, len(x), batch)])
    a, b = OUTER_EYE_CORNERS
    io = (y[:, a] - y[:, b]).norm(dim=1)
    nme = (preds - y).norm(dim=2).mean(dim=1) / io
    return float(nme.mean() * 100.0)


class EMA:
    """Exponential moving average of a model's weights (buffers copied as they are)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def _load_init(model: torch.nn.Module, init: str) -> None:
    """Initialise from a checkpoint (its EMA weights when present) or the bundled model's weights."""
    if init == "bundled":
        from ..export import load_bundled_state

        state, arch = load_bundled_state()
        load_weights(model, {"arch": arch, "model": state}, "bundled model")
        return
    ckpt = load_checkpoint(init)
    key = "ema" if ckpt.get("ema") is not None else "model"
    load_weights(model, ckpt, init, key=key)


def train(cfg: TrainConfig, command: str = "") -> Path:
    """Run (or resume) training; returns the run folder. Works under torchrun too.

    Impossible settings are refused before anything is created (:meth:`TrainConfig.validate`); a
    new run that fails before its first checkpoint leaves no run folder behind."""
    cfg.validate()
    created: list[Path] = []
    try:
        return _train(cfg, command, created)
    except BaseException as exc:
        for run_dir in created:
            _discard_failed_run(run_dir, exc)
        raise


#: What a new run writes before it starts training; a run folder holding nothing else is discarded.
_SETUP_FILES = {"config.json", "command.txt"}


def _discard_failed_run(run_dir: Path, exc: BaseException) -> None:
    """After a failure: remove a new run's folder that has no checkpoint and nothing but its set-up
    files; one that has other files (a profiler trace) is kept and marked ``FAILED.txt``."""
    if not run_dir.is_dir() or (run_dir / "last.pt").exists():
        return
    try:
        if {p.name for p in run_dir.iterdir()} <= _SETUP_FILES:
            shutil.rmtree(run_dir)
        else:
            (run_dir / "FAILED.txt").write_text(f"failed before its first checkpoint: {type(exc).__name__}: {exc}\n")
    except OSError:
        pass  # the original error matters more


def _train(cfg: TrainConfig, command: str, created: list[Path]) -> Path:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("gloo")
    rank, world = _dist_info()
    is_main = rank == 0
    started = time.monotonic()

    ckpt = None
    if cfg.resume:
        rp = Path(cfg.resume)
        ckpt_path = rp / "last.pt" if rp.is_dir() else rp
        ckpt = load_checkpoint(ckpt_path)
        saved = TrainConfig(**{**ckpt["config"], "resume": cfg.resume, "progress": cfg.progress})
        cfg = saved
        run_dir = ckpt_path.parent
    else:
        run_dir = _broadcast(next_run_dir(cfg.out) if is_main else None)
        if is_main:
            created.append(run_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)

    model = models.create(cfg.arch)
    size = model.input_size
    rule = CropRule(scale=cfg.crop_scale)
    if cfg.init and ckpt is None:
        _load_init(model, cfg.init)

    loaded = load_sources(cfg)
    train_s = [s for _, t, _ in loaded for s in t]
    val_s = [s for _, _, v in loaded for s in v]
    groups = [(t, src.weight, src.mirror_consistent, src.jaw_weight) for src, t, _ in loaded]
    train_set = AugmentedFaces(groups, size, rule, augment_config(cfg, 0), cfg.seed)
    val_x, val_y = fixed_crops(val_s, size, rule) if is_main else (None, None)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ModelError(f"too few training faces ({len(train_set)}) for batch size {cfg.batch_size} x {world}")
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    start_epoch, start_in_epoch, step, best, history = 0, 0, 0, math.inf, []
    if ckpt is not None:
        load_weights(model, ckpt, str(cfg.resume))
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.model.load_state_dict(ckpt["ema"])
        start_epoch, start_in_epoch = ckpt["epoch"], ckpt["step_in_epoch"]
        step, best, history = ckpt["step"], ckpt["best_val_nme"], ckpt["history"]

    model.to(memory_format=torch.channels_last)  # noticeably faster convolutions on CPU
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    loss_fn = loss_for(
        model,
        offset_weight=cfg.offset_weight,
        point_weight=cfg.point_weight,
        label_sigma=cfg.label_sigma,
        neighbour_weight=cfg.neighbour_weight,
        jaw_weight=cfg.jaw_weight,
    )
    if is_main and ckpt is None:
        (run_dir / "config.json").write_text(json.dumps({**cfg.to_dict(), "world_size": world}, indent=2))
        (run_dir / "command.txt").write_text(command + "\n")

    def save(epoch: int, in_epoch: int, best_too: bool = False) -> None:
        """Write ``last.pt`` (and the same state as ``best.pt`` when ``best_too``); rank 0 only."""
        if not is_main:
            return
        state = {
            "arch": cfg.arch,
            "model": model.state_dict(),
            "ema": ema.model.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "step_in_epoch": in_epoch,
            "step": step,
            "best_val_nme": best,
            "history": history,
            "config": cfg.to_dict(),
            "input_size": size,
            "crop_rule": rule.to_dict(),
            "command": command,
        }
        save_atomic(state, run_dir / "last.pt")
        if best_too:
            save_atomic(state, run_dir / "best.pt")

    if is_main:
        print(
            f"training {cfg.arch} ({models.count_parameters(model):,} parameters) on {len(train_s)} faces "
            f"({', '.join(f'{Path(src.path).name}: {len(t)} x {src.weight:g}' for src, t, _ in loaded)}; "
            f"{len(train_set)} crops/epoch, labels in the {cfg.convention} convention) "
            f"({len(val_s)} validation), {world} process(es), "
            f"{steps_per_epoch} step{'' if steps_per_epoch == 1 else 's'}/epoch -> {run_dir}",
            file=sys.stderr,
        )
        finishing = cfg.finishing_epochs()
        capped = (
            f" (--finish-epochs {cfg.finish_epochs} capped at half the run)" if finishing < cfg.finish_epochs else ""
        )
        print(
            f"finishing phase: the last {finishing} of {cfg.epochs} epochs{capped}, rotations up to "
            f"{min(cfg.rotate_deg, cfg.finish_rotate_deg):g} degrees",
            file=sys.stderr,
        )
    last_save = time.monotonic()
    profiler = None
    if cfg.profile and is_main:
        from torch.profiler import ProfilerActivity, profile, schedule

        profiler = profile(
            activities=[ProfilerActivity.CPU],
            schedule=schedule(wait=1, warmup=1, active=4, repeat=1),
            on_trace_ready=lambda p: p.export_chrome_trace(str(run_dir / "profile_trace.json")),
            record_shapes=True,
        )
        profiler.start()

    stopped = False
    for epoch in range(start_epoch, cfg.epochs):
        train_set.epoch = epoch
        train_set.aug = augment_config(cfg, epoch)
        sampler.set_epoch(epoch)
        model.train()
        skip = start_in_epoch if epoch == start_epoch else 0
        bar = None
        if is_main and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        t0, losses = time.monotonic(), []
        for i, (x, y, point_w) in enumerate(loader):
            if i < skip:
                continue
            for g in optimizer.param_groups:
                g["lr"] = cfg.lr * warmup_cosine(step, total_steps, int(cfg.warmup_epochs * steps_per_epoch))
            raw = ddp_model(x.contiguous(memory_format=torch.channels_last))
            loss, parts = loss_fn(model, raw, y, sample_weights=point_w)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if ema is not None:
                ema.update(model, step)
            losses.append(float(loss.detach()))
            if profiler is not None:
                profiler.step()
                if step - (start_in_epoch + start_epoch * steps_per_epoch) >= 6:
                    profiler.stop()
                    profiler = None
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if cfg.max_steps and step >= cfg.max_steps:
                stopped = True
                break
            if time.monotonic() - last_save > cfg.checkpoint_minutes * 60 and i + 1 < steps_per_epoch:
                save(epoch, i + 1)
                last_save = time.monotonic()
        if bar is not None:
            bar.close()
        if stopped and i + 1 < steps_per_epoch:
            save(epoch, i + 1)
            break
        if is_main:
            val = validate(ema.model if ema is not None else model, val_x, val_y)
            history.append(
                {
                    "epoch": epoch + 1,
                    "loss": float(np.mean(losses)) if losses else None,
                    "val_nme": None if math.isnan(val) else val,
                    "seconds": round(time.monotonic() - t0, 2),
                    "elapsed": round(time.monotonic() - started, 1),  # wall seconds since this process started
                }
            )
            # without a validation split (--val-fraction 0) the latest weights are the best we know
            improved = val < best or math.isnan(val)
            if improved and not math.isnan(val):
                best = val
            save(epoch + 1, 0, best_too=improved)
            last_save = time.monotonic()
            (run_dir / "history.json").write_text(json.dumps(history, indent=1))
            val_text = "no validation" if math.isnan(val) else f"val NME {val:.3f}% (best {best:.3f}%)"
            print(
                f"epoch {epoch + 1}/{cfg.epochs} loss {history[-1]['loss']:.4f} {val_text} "
                f"{history[-1]['seconds']:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        if world > 1:
            dist.barrier()
        if stopped:
            break
    if profiler is not None:
        profiler.stop()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir
