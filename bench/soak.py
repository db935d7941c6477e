"""Soak test of the web service: many clients for a long time; memory must level off and no request may fail.

    python bench/soak.py                                  # 32 clients x 10 minutes -> bench/results/soak.json
    python bench/soak.py --duration 120 --clients 32      # a shorter run
    python bench/soak.py --duration 5 --clients 4 --out runs/soak.json   # a smoke test
    python bench/soak.py --detector haar --out bench/results/soak_haar.json

Starts ``facekeypoints serve`` on a free 127.0.0.1 port (one process) and runs
``--clients`` clients against it, each on its own kept-alive connection, each
sending the next request as soon as the last is answered. The requests mix what
the page and API users send: a 640x480 photo with one face to ``/v1/landmarks``
(most), a two-face photo, ``/v1/render`` as PNG and as JPEG, ``/v1/render`` with a
filter when there are filters, ``/v1/models``, ``/healthz``, and two refusals
whose answers are checked (a body that is not a picture: 415; a picture larger
than the pixel limit: 413). A request *fails* on a connection error, a time-out
or an answer other than the one expected (status, and the face count for the
photos).

The server's resident memory (VmRSS of its process, from /proc) is sampled every
second. Reported: start (right after start-up, before any request), after the
warm-up, peak and end; and whether it keeps growing: the median of the last
quarter of the run against the median of the second quarter, and the slope of a
straight line fitted to the second half. It *keeps growing* when the last
quarter is more than 5 % (and 16 MiB) above the second and the slope is still
above 1 MiB a minute. Runs shorter than 2 minutes report the figures without
judging. Traffic goes to loopback only. The exit status is 1 when a request
failed or memory kept growing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import serverproc  # bench/serverproc.py, beside this script

MIB = 1024 * 1024
MIN_JUDGED_S = 120


def pictures() -> dict[str, bytes]:
    """The request bodies: a 640x480 JPEG with one face, a 1280x480 PNG with two, and two refusals."""
    import cv2
    from load_test import photo_640x480

    one = photo_640x480()
    bgr = cv2.imdecode(np.frombuffer(one, np.uint8), cv2.IMREAD_COLOR)
    ok, two = cv2.imencode(".png", np.concatenate([bgr, bgr], axis=1))
    assert ok
    ihdr = struct.pack(">IIBBBBB", 40_000, 30_000, 8, 2, 0, 0, 0)  # a PNG header claiming 1.2 gigapixels
    huge = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return {"one": one, "two": two.tobytes(), "not_image": b"%PDF-1.7 not a picture" * 10, "huge": huge + b"\0" * 64}


def request_plan(filters: list[str]) -> list[tuple[str, dict]]:
    """One round of requests, in the proportions of the mix (each client walks it from its own offset)."""
    plan = [("landmarks_one", {})] * 10
    plan += [("landmarks_two", {})] * 2
    plan += [("render_png", {}), ("render_jpeg", {})]
    if filters:
        plan.append(("render_filter", {"filter": "sunglasses" if "sunglasses" in filters else filters[0]}))
    plan += [("models", {}), ("healthz", {}), ("not_image", {}), ("huge", {})]
    return plan


async def one_request(client, kind: str, extra: dict, bodies: dict[str, bytes]) -> str | None:
    """Send one request of ``kind``; None if the answer is the expected one, else why not."""
    if kind == "landmarks_one" or kind == "landmarks_two":
        r = await client.post("/v1/landmarks", content=bodies["one" if kind == "landmarks_one" else "two"])
        want = 1 if kind == "landmarks_one" else 2
        if r.status_code != 200:
            return f"{kind}: {r.status_code} {r.text[:200]}"
        faces = len(r.json()["faces"])
        return None if faces == want else f"{kind}: {faces} faces, expected {want}"
    if kind.startswith("render"):
        accept = "image/jpeg" if kind == "render_jpeg" else "image/png"
        params = {"filter": extra["filter"]} if "filter" in extra else {}
        r = await client.post("/v1/render", content=bodies["one"], headers={"Accept": accept}, params=params)
        if r.status_code != 200 or r.headers.get("content-type") != accept or r.headers.get("x-faces") != "1":
            return f"{kind}: {r.status_code} {r.headers.get('content-type')} faces={r.headers.get('x-faces')}"
        return None
    if kind in ("models", "healthz"):
        r = await client.get("/v1/models" if kind == "models" else "/healthz")
        return None if r.status_code == 200 else f"{kind}: {r.status_code} {r.text[:200]}"
    want = {"not_image": (415, "unsupported_media_type"), "huge": (413, "image_too_large")}[kind]
    r = await client.post("/v1/landmarks", content=bodies[kind])
    got = (r.status_code, r.json().get("error") if r.headers.get("content-type") == "application/json" else None)
    return None if got == want else f"{kind}: {got}, expected {want}"


async def run_clients(url: str, clients: int, duration_s: float, bodies: dict[str, bytes], filters: list[str]) -> dict:
    import httpx

    plan = request_plan(filters)
    stats: dict[str, list[float]] = {kind: [] for kind, _ in plan}
    failures: list[str] = []
    stop = time.monotonic() + duration_s

    async def client_loop(index: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            step = index * 7  # each client starts elsewhere in the plan
            while time.monotonic() < stop:
                kind, extra = plan[step % len(plan)]
                step += 1
                t0 = time.perf_counter()
                try:
                    problem = await one_request(client, kind, extra, bodies)
                except Exception as exc:  # noqa: BLE001 - every failure is counted, whatever it is
                    problem = f"{kind}: {type(exc).__name__}: {exc}"
                stats[kind].append(time.perf_counter() - t0)
                if problem is not None:
                    failures.append(f"{time.monotonic() - stop + duration_s:.1f}s {problem}")

    t0 = time.monotonic()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    elapsed = time.monotonic() - t0
    latencies = [v for values in stats.values() for v in values]
    total = len(latencies)
    a = np.asarray(latencies) * 1e3 if latencies else np.zeros(1)
    return {
        "elapsed_s": round(elapsed, 1),
        "requests": total,
        "requests_per_s": round(total / elapsed, 2),
        "by_kind": {kind: len(values) for kind, values in stats.items()},
        "latency_ms": {
            "p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1),
            "p99": round(float(np.percentile(a, 99)), 1),
            "max": round(float(a.max()), 1),
        },
        "failed": len(failures),
        "failures": failures[:20],
    }


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class RssSampler:
    """Samples a process's resident memory every ``every_s`` seconds, in a thread."""

    def __init__(self, pid: int, every_s: float = 1.0):
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []  # (seconds since start, bytes)
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_bytes(self.pid)
            if value is not None:
                self.samples.append((time.monotonic() - self._t0, value))
            self._stop.wait(self.every_s)


def judge_memory(samples: list[tuple[float, int]], start: int, warm: int, duration_s: float) -> dict:
    """Start, warm, peak and end RSS, and whether it keeps growing over the run (see the module's text)."""
    values = [v for _, v in samples]
    out = {
        "start_mib": round(start / MIB, 1),
        "after_warmup_mib": round(warm / MIB, 1),
        "peak_mib": round(max(values + [start]) / MIB, 1),
        "end_mib": round(values[-1] / MIB, 1) if values else None,
    }
    n = len(samples)
    if duration_s < MIN_JUDGED_S or n < 20:
        out["verdict"] = f"not judged: runs under {MIN_JUDGED_S} s are too short to tell growth from warm-up"
        out["keeps_growing"] = None
        return out
    second_quarter = statistics.median(values[n // 4 : n // 2])
    last_quarter = statistics.median(values[3 * n // 4 :])
    t = np.asarray([s for s, _ in samples[n // 2 :]])
    v = np.asarray(values[n // 2 :], float)
    slope = float(np.polyfit(t, v, 1)[0]) * 60 / MIB  # MiB per minute over the second half
    grew = last_quarter - second_quarter
    keeps_growing = grew > max(0.05 * second_quarter, 16 * MIB) and slope > 1.0
    out.update(
        {
            "second_quarter_median_mib": round(second_quarter / MIB, 1),
            "last_quarter_median_mib": round(last_quarter / MIB, 1),
            "second_half_slope_mib_per_min": round(slope, 2),
            "keeps_growing": bool(keeps_growing),
            "verdict": "keeps growing" if keeps_growing else "levels off",
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600, help="seconds of load (default: %(default)g, 10 minutes)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=None, help="seconds counted as warm-up (default: 10%% of the run)")
    p.add_argument("--threads", type=int, default=None, help="the server's --threads (default: serve's own)")
    p.add_argument("--detector", default=None, help="the server's face detector (default: serve's own, yunet)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.json", help="JSON report")
    args = p.parse_args(argv)
    if args.duration <= 0 or args.clients < 1:
        p.error("--duration must be positive and --clients at least 1")
    warmup = args.warmup if args.warmup is not None else 0.1 * args.duration

    import httpx

    bodies = pictures()
    extra = ["--threads", str(args.threads)] if args.threads else []
    extra += ["--detector", args.detector] if args.detector else []
    log = Path(tempfile.mkdtemp(prefix="soak-")) / "serve.log"
    load_before = os.getloadavg()
    proc, url = serverproc.start_server(extra, log)
    try:
        start_rss = rss_bytes(proc.pid) or 0
        models = httpx.get(url + "/v1/models", timeout=30).json()
        filters, detector = models["filters"], models["models"][0].get("detector")
        sampler = RssSampler(proc.pid).start()
        print(f"soak: {args.clients} clients for {args.duration:g} s against {url} (server pid {proc.pid})", flush=True)

        warm_rss: dict[str, int] = {}

        def note_warm() -> None:
            time.sleep(warmup)
            warm_rss["value"] = rss_bytes(proc.pid) or 0

        threading.Thread(target=note_warm, daemon=True).start()
        load = asyncio.run(run_clients(url, args.clients, args.duration, bodies, filters))
        sampler.stop()
        health = httpx.get(url + "/healthz", timeout=30).json()
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:  # noqa: BLE001
            proc.kill()

    memory = judge_memory(sampler.samples, start_rss, warm_rss.get("value", start_rss), args.duration)
    every = max(1, len(sampler.samples) // 120)  # at most ~120 points in the report
    report = {
        "what": "bench/soak.py: facekeypoints serve on loopback under a steady mix of requests",
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "duration_s": args.duration,
        "clients": args.clients,
        "server": {
            "threads": args.threads or "serve's default",
            "detector": detector,
            "workers": 1,
            "alive_at_end": alive,
        },
        "load": load,
        "server_counters": {k: health[k] for k in ("served", "timeouts", "busy", "connections") if k in health},
        "rss": memory,
        "rss_samples_mib": [[round(t, 1), round(v / MIB, 1)] for t, v in sampler.samples[::every]],
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
        "passed": load["failed"] == 0 and memory["keeps_growing"] is not True and alive,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"soak: {load['requests']} requests ({load['requests_per_s']}/s), {load['failed']} failed; "
        f"p50 {load['latency_ms']['p50']} ms, p99 {load['latency_ms']['p99']} ms; RSS start {memory['start_mib']} MiB, "
        f"after warm-up {memory['after_warmup_mib']}, peak {memory['peak_mib']}, end {memory['end_mib']} "
        f"({memory['verdict']}) -> {args.out}",
        flush=True,
    )
    for line in load["failures"][:5]:
        print(f"  failed: {line}", flush=True)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
