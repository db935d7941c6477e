"""Export a trained checkpoint to ONNX plus JSON metadata (what :mod:`facekeypoints.runtime` loads).

Writes ``NAME.onnx`` (input ``image``: float32 (N, 3, S, S) RGB in [0, 255];
output ``keypoints``: float32 (N, 68, 2) crop pixels), ``NAME.json`` (input
size, crop rule, normalisation, metrics, training command, data hash, sha256 of
the ONNX file) and ``NAME.npz`` (the torch weights, for ``train --init``).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .errors import ModelError
from .outputs import atomic_write
from .runtime import DEFAULT_MODEL, sha256_of


def onnx_bytes(model) -> bytes:
    """The ONNX graph of ``model`` with its decode (:class:`models.InferenceModel`): what runtime runs.

    Input ``image`` (N, 3, S, S) float32 RGB in [0, 255], output ``keypoints`` (N, 68, 2)
    crop pixels and, for the PIP nets, ``landmark_scores`` (N, 68) in [0, 1]; N is dynamic.
    """
    import torch

    from . import models

    s = model.input_size
    fd, tmp = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper = models.InferenceModel(model.eval(), scores=True).eval()
            outputs = ["keypoints", "landmark_scores"] if wrapper.scores else ["keypoints"]
            torch.onnx.export(
                wrapper,
                (torch.rand(2, 3, s, s) * 255.0,),
                tmp,
                input_names=["image"],
                output_names=outputs,
                dynamic_axes={"image": {0: "n"}, **{name: {0: "n"} for name in outputs}},
                opset_version=17,
                dynamo=False,
            )
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    name: str | None = None,
    version: str = "1",
    metrics: dict | None = None,
    data_info: dict | None = None,
    use_ema: bool = True,
    check: bool = True,
    calibration_data: str | None = None,
) -> Path:
    """Export ``checkpoint`` to ``out`` (an ``.onnx`` path); returns that path.

    ``check`` compares torch and ONNX Runtime outputs on random input and raises
    :class:`ModelError` if they disagree by more than 0.01 crop pixels.
    ``calibration_data``: the training data to measure the mirror offset on
    (:mod:`facekeypoints.training.mirror`; default: the run's own ``--data``). Without
    readable data the metadata's ``mirror_offset`` is null and the pipeline skips test-time flip.
    """
    import torch

    from . import models
    from .training.checkpoint import load_checkpoint, load_weights

    ckpt = load_checkpoint(checkpoint)
    model = models.create(ckpt["arch"])
    key = "ema" if use_ema and ckpt.get("ema") is not None else "model"
    load_weights(model, ckpt, str(checkpoint), key=key)
    model.eval()
    wrapper = models.InferenceModel(model).eval()
    out = Path(out)
    if out.suffix != ".onnx":
        raise ModelError(f"{out}: export path must end in .onnx")
    s = model.input_size
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, onnx_bytes(model))
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    npz = io.BytesIO()
    np.savez_compressed(npz, **state)
    atomic_write(out.with_suffix(".npz"), npz.getvalue())
    if data_info is None:
        cfg = ckpt.get("config", {})
        paths = cfg.get("data", "")
        paths = [paths] if isinstance(paths, str) else list(paths)
        described = [_describe_data(p, cfg.get("val_fraction", 0.1)) for p in paths]
        data_info = described[0] if len(described) == 1 else {"sources": described}
    meta = {
        "schema": "facekeypoints-model/v1",
        "name": name or out.stem,
        "version": version,
        "arch": ckpt["arch"],
        "parameters": int(models.count_parameters(model)),
        "input_size": s,
        "input": "image: float32 (N, 3, S, S), RGB, values 0-255 (normalised inside the model)",
        "output": "keypoints: float32 (N, 68, 2), crop pixels, x then y, origin at the top-left pixel's centre",
        "normalisation": "inside the model: (x - 127.5) / 64" + (", gray" if ckpt["arch"] == "seed" else ""),
        "crop_rule": ckpt["crop_rule"],
        "weights": "ema" if key == "ema" else "raw",
        "mirror_offset": _mirror_table(model, ckpt, calibration_data),
        # runs before multi-source training learned the Udacity labels as they are
        "convention": ckpt.get("config", {}).get("convention", "udacity"),
        "epochs_trained": ckpt.get("epoch"),
        "best_val_nme": _finite_or_none(ckpt.get("best_val_nme")),
        "training_command": ckpt.get("command", ""),
        "training_config": ckpt.get("config", {}),
        "data": data_info or {},
        "metrics": metrics or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256_of(out),
    }
    atomic_write(out.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
    if check:
        from .runtime import KeypointModel

        rt = KeypointModel(out, threads=1)
        crops = (np.random.default_rng(0).random((4, s, s, 3)) * 255).astype(np.uint8)
        got = rt.predict(crops)
        with torch.no_grad():
            want = wrapper(torch.from_numpy(crops).permute(0, 3, 1, 2).float()).numpy()
        diff = float(np.abs(got - want).max())
        if diff > 0.01:
            raise ModelError(f"{out}: ONNX output differs from torch by {diff:.4f} px")
    return out


def _mirror_table(model, ckpt: dict, data: str | None) -> list | None:
    """The model's mirror offset as 68 [dx, dy] lists (crop pixels), or None when the run's
    training faces cannot be read (a warning on stderr says so)."""
    import sys

    from .errors import FaceKeypointsError
    from .geometry import CropRule
    from .training.config import TrainConfig
    from .training.data import load_sources
    from .training.mirror import mirror_offset

    cfg = TrainConfig.from_saved(ckpt.get("config", {}))
    if data is not None:
        cfg.data = [data]
    try:
        if "config" not in ckpt and data is None:
            raise FaceKeypointsError("the checkpoint does not say what it was trained on; pass --data")
        loaded = load_sources(cfg)
    except (FaceKeypointsError, OSError) as exc:
        print(f"warning: no mirror offset measured, test-time flip will be off ({exc})", file=sys.stderr)
        return None
    # measured where the labels are mirror-consistent (300-W) when the run had such faces
    consistent = [s for src, t, _ in loaded if src.mirror_consistent for s in t]
    train = consistent or [s for _, t, _ in loaded for s in t]
    table = mirror_offset(model, train, CropRule.from_dict(ckpt["crop_rule"]))
    return [[round(float(x), 3), round(float(y), 3)] for x, y in table]


def _finite_or_none(x) -> float | None:
    """A number JSON can hold, or None (a run without validation has no best NME)."""
    return float(x) if x is not None and np.isfinite(x) else None


def _describe_data(path: str, val_fraction: float) -> dict:
    """Name and sha256 of the training data archive, when it is a file that still exists.

    ``val_fraction``: the share of training people the run held out (0: it trained on them all).
    """
    info: dict = {"path": path}
    p = Path(path)
    if path and p.is_file():
        info["sha256"] = sha256_of(p)
    from .data.fetch import UDACITY_SHA256

    if info.get("sha256") == UDACITY_SHA256:
        part = "all of the training split" if not val_fraction else "training split minus the validation people"
        info["name"] = f"Udacity facial keypoints (YouTube Faces frames), {part}"
    elif path and p.is_dir():
        info["faces"] = sum(1 for _ in p.rglob("*.pts"))
        part = "all of them" if not val_fraction else "minus the held-out photos"
        info["name"] = f"300-W style .pts folder ({part}); 300-W's images and annotations are for research use only"
    return info


def load_bundled_state(path: str | Path | None = None) -> tuple[dict, str]:
    """Torch weights (state dict) and architecture name of an exported model (default: bundled)."""
    import torch

    onnx_path = Path(path) if path is not None else DEFAULT_MODEL
    npz = onnx_path.with_suffix(".npz")
    if not npz.is_file():
        raise ModelError(f"{npz}: torch weights of the model not found")
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    with np.load(npz) as z:
        state = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    return state, meta["arch"]


def update_metadata(onnx_path: str | Path, key: str, value) -> None:
    """Set ``key`` of an exported model's metadata to ``value`` (the ONNX file, and its hash, unchanged)."""
    meta_path = Path(onnx_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta[key] = value
    atomic_write(meta_path, (json.dumps(meta, indent=2) + "\n").encode())


def update_metrics(onnx_path: str | Path, metrics: dict) -> None:
    """Merge ``metrics`` into an exported model's metadata (the ONNX file, and its hash, unchanged)."""
    meta_path = Path(onnx_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.setdefault("metrics", {}).update(metrics)
    atomic_write(meta_path, (json.dumps(meta, indent=2) + "\n").encode())
