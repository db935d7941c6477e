"""The engine behind the routes: one shared model, a face detector per worker thread, a bounded pool.

One :class:`~facekeypoints.runtime.KeypointModel` (one ONNX Runtime session,
whose ``run`` is thread-safe) is shared by all requests of a process; each
worker thread has its own face detector, since OpenCV's cascade keeps
per-image state. Decoding and inference run in a bounded thread pool, each
request under a time limit (503 past it), so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..cpus import available_cpus
from ..errors import FaceKeypointsError
from . import filtering
from .errors import ApiError
from .limits import CorruptImage, ImageHeader, ServerConfig


@dataclass
class Result:
    rgb: np.ndarray
    faces: list
    decode_ms: float
    landmarks_ms: float


class Engine:
    """The pipeline behind the routes, safe under concurrent requests."""

    def __init__(self, config: ServerConfig, model=None):
        from ..runtime import KeypointModel

        self.config = config
        self._cpus = available_cpus()
        # ``model``: an already loaded KeypointModel to share (tests); else ``config.model`` is loaded.
        self.model = model if model is not None else KeypointModel(config.model, threads=1)
        # Build one detector now so a bad detector name or model fails at start-up, not per request.
        probe = self._new_pipeline()
        _ = probe.detector
        self.model.predict(np.zeros((1, self.model.input_size, self.model.input_size, 3), np.uint8))  # warm up
        self.model_info = probe.model_info()
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(config.threads, thread_name_prefix="facekeypoints")
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._in_work = 0  # jobs in the worker threads now (read there, unlike ``running``)
        self._in_work_lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.timeouts = 0
        self.busy = 0
        self.served = 0

    def _new_pipeline(self):
        """A :class:`FaceKeypointDetector` on the shared model with its own face detector."""
        from ..detectors import detector_for
        from ..pipeline import FaceKeypointDetector

        c = self.config
        # each worker thread's face detector gets its share of the CPUs: with an OpenMP team of every CPU
        # per thread, 2 threads on 2 CPUs ran 4 busy threads, and the engine served 33-36 photos/s
        # against 55-60 with a share (640x480, 32 callers, runs alternated; bench/load_test.py). The
        # share is the worst case, a full pool; a job that runs alone gets more (:meth:`_detector_share`).
        share = self._detector_share(c.threads)
        return FaceKeypointDetector(
            model=self.model,
            detector=detector_for(c.detector, c.min_face, threads=share),
            refine=c.refine,
            flip=c.flip,
            convention=c.convention,
            unsure_score=c.unsure_score,
            turns=c.turns,
            threads=share,
        )

    def detector(self):
        """This worker thread's :class:`FaceKeypointDetector` (sharing the process's model)."""
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._new_pipeline()
            self._local.detector = det
        return det

    def decode(self, data: bytes, header: ImageHeader) -> np.ndarray:
        """Decode checked bytes to RGB uint8; a decoder failure is a :class:`CorruptImage`."""
        import cv2

        from .. import image_io

        try:
            rgb = image_io.decode_image(data, "the upload", self.config.max_pixels)
        except FaceKeypointsError as exc:  # one-line messages by contract (truncated, corrupt, ...)
            raise CorruptImage(str(exc).strip().splitlines()[0][:300]) from None
        except cv2.error:
            raise CorruptImage(
                f"the {header.format.upper()} image ({header.width}x{header.height}) could not be decoded: "
                "its data is truncated or corrupt"
            ) from None
        if rgb.shape[0] * rgb.shape[1] > self.config.max_pixels:  # a header that lied
            raise CorruptImage("the decoded image is larger than its header says")
        return rgb

    def _detector_share(self, jobs: int) -> int:
        """CPU threads a face detection may use while ``jobs`` jobs (this one included) are in the
        workers: the CPUs shared among them, so a lone request's detection is not held to the share of
        a full pool (YuNet at 640x480: about 11 ms on two threads against 15 ms on one)."""
        return max(1, self._cpus // max(1, min(jobs, self.config.threads)))

    def landmarks(self, data: bytes, header: ImageHeader) -> Result:
        """Decode and run the pipeline (in a worker thread)."""
        with self._in_work_lock:
            self._in_work += 1
            jobs = self._in_work
        try:
            t0 = time.perf_counter()
            rgb = self.decode(data, header)
            t1 = time.perf_counter()
            det = self.detector()
            det.detector.threads = self._detector_share(jobs)
            faces = det(rgb)
            t2 = time.perf_counter()
        finally:
            with self._in_work_lock:
                self._in_work -= 1
        return Result(rgb, faces, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def render(
        self, data: bytes, header: ImageHeader, draw: set[str], filter_name: str | None, fmt: str
    ) -> tuple[bytes, Result]:
        """Decode, run the pipeline, apply a filter, draw, encode (in a worker thread)."""
        from ..draw import draw_faces
        from ..outputs import encode_image

        result = self.landmarks(data, header)
        img = result.rgb
        if filter_name is not None and result.faces:
            img = filtering.apply_filter(img, result.faces, filter_name)
        if draw:
            img = draw_faces(
                img, result.faces, points="keypoints" in draw, contours="mesh" in draw, boxes="box" in draw
            )
        return encode_image(img, ".jpg" if fmt == "jpeg" else ".png"), result

    def _get_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.config.threads), loop
        return self._slots

    async def submit(self, fn, *args):
        """Run ``fn(*args)`` in the pool: wait for a free thread, then at most ``timeout_s``.

        A thread's slot is freed when its work really ends, even after its request
        was answered 503, so the pool never holds more work than it has threads.
        """
        cfg = self.config
        slots = self._get_slots()
        if slots.locked() and self.waiting >= cfg.max_queue:
            self.busy += 1
            raise ApiError(503, "busy", "the server is saturated; retry later", {"Retry-After": "1"})
        self.waiting += 1
        try:
            await asyncio.wait_for(slots.acquire(), cfg.queue_timeout_s)
        except asyncio.TimeoutError:
            self.busy += 1
            raise ApiError(
                503, "busy", f"no worker was free within {cfg.queue_timeout_s:g} s; retry later", {"Retry-After": "1"}
            ) from None
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()

        def finished() -> None:  # on the event loop
            self.running -= 1
            slots.release()

        def release(_fut) -> None:  # in the worker thread (or here, if the work never started)
            try:
                loop.call_soon_threadsafe(finished)
            except RuntimeError:  # the loop is gone (shutdown)
                pass

        self.running += 1
        try:
            cfut = self._executor.submit(fn, *args)
        except BaseException:
            finished()
            raise
        cfut.add_done_callback(release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(cfut), cfg.timeout_s)
        except asyncio.TimeoutError:
            self.timeouts += 1
            raise ApiError(
                503,
                "timeout",
                f"decoding and finding landmarks took longer than {cfg.timeout_s:g} s; try a smaller image",
                {"Retry-After": "1"},
            ) from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
