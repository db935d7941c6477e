"""ONNX Runtime inference for an exported landmark model, with the preprocessing it was trained with.

A model is a pair of files: ``NAME.onnx`` and ``NAME.json`` (metadata written by
:mod:`facekeypoints.export`). Loading checks the ONNX file's sha256 against the
metadata, so a damaged or swapped weight file is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .cpus import available_cpus
from .errors import ModelError
from .geometry import CropRule

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "facekeypoints-pip-w112.onnx"


def session_options(threads: int):
    """ONNX Runtime session options for one call on ``threads`` CPU threads, no inter-op parallelism,
    and idle pool threads that sleep instead of spinning, so they never take a shared core from the
    thread doing the work, from the caller's other threads or from the neighbours."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_metadata(onnx_path: str | Path) -> dict:
    """The JSON metadata beside ``onnx_path`` (same stem, ``.json``)."""
    meta_path = Path(onnx_path).with_suffix(".json")
    if not meta_path.is_file():
        raise ModelError(f"{meta_path}: model metadata not found (expected beside {Path(onnx_path).name})")
    try:
        return json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata ({exc})") from None


class KeypointModel:
    """An exported landmark model run by ONNX Runtime on the CPU.

    ``predict`` takes square RGB uint8 crops (N, S, S, 3), cut with :attr:`crop_rule`,
    and returns (N, 68, 2) float32 keypoints in crop pixels (x then y, origin at the
    centre of the crop's top-left pixel). Safe to call from several threads at once.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        threads: int | None = None,
        verify: bool = True,
        providers: list[str] | None = None,
    ):
        import onnxruntime as ort

        self.path = Path(path) if path is not None else DEFAULT_MODEL
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        self.metadata = read_metadata(self.path)
        if verify:
            want = self.metadata.get("sha256")
            got = sha256_of(self.path)
            if want != got:
                raise ModelError(f"{self.path}: sha256 {got[:12]}... does not match its metadata ({str(want)[:12]}...)")
        #: ONNX Runtime's threads for one call: ``threads``, else the CPUs this process may really
        #: use (affinity mask and cgroup quota, :mod:`facekeypoints.cpus`), not the machine's count
        self.threads = int(threads) if threads else available_cpus()
        opts = session_options(self.threads)
        providers = list(providers) if providers else ["CPUExecutionProvider"]
        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise ModelError(
                f"ONNX Runtime here has no {', '.join(missing)}; available: {', '.join(ort.get_available_providers())}"
            )
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: not a loadable ONNX model ({str(exc).splitlines()[0][:120]})") from None
        self.input_name = self.session.get_inputs()[0].name
        #: whether the graph also answers (N, 68) landmark scores (exports since model version 7)
        self.has_scores = len(self.session.get_outputs()) > 1
        self.input_size = int(self.metadata["input_size"])
        self.crop_rule = CropRule.from_dict(self.metadata["crop_rule"])
        # Test-time flip's correction (training/mirror.py): (68, 2) crop pixels added to the mirrored
        # crop's points; metadata without the key (models trained on mirrored crops) needs none, and
        # null means it could not be measured, so the mirrored crop must not be used.
        table = self.metadata.get("mirror_offset", [[0.0, 0.0]] * 68)
        self.mirror_offset: np.ndarray | None = None if table is None else np.asarray(table, np.float32).reshape(68, 2)
        #: (68, 2) offset the model's answers carry on every face, in each answer's own face frame
        #: (conventions.py; units of the eye-corner distance), measured on held-out faces by
        #: bench/output_bias.py; the pipeline subtracts it. None: not measured (nothing subtracted).
        table = (self.metadata.get("output_offset") or {}).get("offset")
        self.output_offset: np.ndarray | None = None if table is None else np.asarray(table, np.float32).reshape(68, 2)
        #: landmark convention of the model's answers (conventions.py); models before version 7
        #: learned the Udacity labels only and say nothing
        self.convention: str = str(self.metadata.get("convention", "udacity"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.path.stem))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "0"))

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) RGB uint8 crops -> (N, 68, 2) float32 crop-pixel keypoints."""
        return self.predict_scored(crops)[0]

    def predict_scored(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, S, S, 3) RGB uint8 crops -> ((N, 68, 2) float32 crop-pixel keypoints, (N, 68) float32
        landmark scores in [0, 1], or None for a model that does not answer them)."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        s = self.input_size
        if crops.shape[1:] != (s, s, 3):
            raise ModelError(f"model expects crops of shape (N, {s}, {s}, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, 68, 2), np.float32), (np.zeros((0, 68), np.float32) if self.has_scores else None)
        x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        out = self.session.run(None, {self.input_name: x})
        scores = out[1].astype(np.float32) if self.has_scores else None
        return out[0].astype(np.float32), scores
