"""Load test of the web service on loopback, against the same work done in one process without HTTP.

    python bench/load_test.py                       # 32 clients x 30 s, then the in-process baseline
    python bench/load_test.py --clients 8 --duration 10 --threads 2 --json runs/load.json

Starts ``facekeypoints serve`` on a free 127.0.0.1 port (or uses ``--url``). Every
client posts the same 640x480 JPEG with one face (matplotlib's sample portrait,
scaled and centred) to ``/v1/landmarks`` in a loop until the time is up; requests
still in flight then are waited for and counted. Reported: requests/s, latency
p50/p95/p99, errors (any answer but 200 with exactly one face) and lost requests
(sent without an answer, and the server's own count of served requests against
the clients'). Then the baseline: the server's own engine (shared model, one
detector per thread, the same number of threads) called directly on the same
bytes for the same time, no HTTP and no event loop. Traffic goes to loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import serverproc  # bench/serverproc.py, beside this script


def photo_640x480() -> bytes:
    """A 640x480 JPEG with one face: the sample portrait scaled to 480 rows, centred on grey."""
    import cv2
    from matplotlib import cbook

    bgr = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    h, w = bgr.shape[:2]
    face = cv2.resize(bgr, (round(w * 480 / h), 480), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 200, np.uint8)
    x = (640 - face.shape[1]) // 2
    canvas[:, x : x + face.shape[1]] = face
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan")}
    a = np.asarray(values) * 1e3
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
    }


# --- the server -----------------------------------------------------------------------------


def start_server(threads: int, workers: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    return serverproc.start_server(["--threads", str(threads), "--workers", str(workers)], log_path)


async def _client_loop(client, url: str, body: bytes, stop_at: float, out: dict) -> None:
    while time.perf_counter() < stop_at:
        out["sent"] += 1
        t0 = time.perf_counter()
        try:
            r = await client.post(url, content=body, headers={"Content-Type": "image/jpeg"})
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is a lost request
            out["lost"] += 1
            out["lost_reasons"][type(exc).__name__] = out["lost_reasons"].get(type(exc).__name__, 0) + 1
            continue
        dt = time.perf_counter() - t0
        out["answered"] += 1
        faces = None
        if r.status_code == 200:
            try:
                faces = len(r.json()["faces"])
            except (ValueError, KeyError):
                faces = None
        if r.status_code == 200 and faces == 1:
            out["ok"] += 1
            out["latencies"].append(dt)
        else:
            out["errors"] += 1
            key = f"{r.status_code}" + ("" if r.status_code != 200 else f" faces={faces}")
            out["error_kinds"][key] = out["error_kinds"].get(key, 0) + 1


class _RawResponse:
    def __init__(self, status: int, body: bytes):
        self.status_code, self.body = status, body

    def json(self):
        return json.loads(self.body)


class _RawConnection:
    """One kept-alive HTTP/1.1 connection that posts the photo and reads the answer with asyncio streams:
    a load generator that spends little CPU, so that on a 2-CPU machine the server gets nearly all of it.
    Its :meth:`post` is called as httpx's is (by :func:`_client_loop`)."""

    def __init__(self, url: str):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port, self.reader, self.writer = parts.hostname, parts.port or 80, None, None
        self._heads: dict[tuple[str, str, int], bytes] = {}  # request heads, made once per target

    def _head(self, url: str, content_type: str, length: int) -> bytes:
        key = (url, content_type, length)
        if key not in self._heads:
            from urllib.parse import urlsplit

            self._heads[key] = (
                f"POST {urlsplit(url).path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                f"content-type: {content_type}\r\ncontent-length: {length}\r\n\r\n"
            ).encode("latin-1")
        return self._heads[key]

    async def post(self, url: str, content: bytes, headers: dict) -> _RawResponse:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(self._head(url, headers["Content-Type"], len(content)) + content)
            status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            answer = await self.reader.readexactly(int(fields.get("content-length", 0)))
            if fields.get("connection") == "close":
                await self.close()
            return _RawResponse(status, answer)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def _raw_client_loop(url: str, body: bytes, stop_at: float, out: dict) -> None:
    """:func:`_client_loop` on its own :class:`_RawConnection`."""
    conn = _RawConnection(url)
    try:
        await _client_loop(conn, url + "/v1/landmarks", body, stop_at, out)
    finally:
        await conn.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_load(url: str, body: bytes, clients: int, duration: float, client: str = "httpx") -> dict:
    """``clients`` connections posting ``body`` for ``duration`` s; ``client``: "httpx" (a full HTTP client)
    or "raw" (:class:`_RawConnection`, lighter on the CPU)."""
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    out = {"sent": 0, "answered": 0, "ok": 0, "errors": 0, "lost": 0, "latencies": [], "error_kinds": {}}
    out["lost_reasons"] = {}
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300.0)) as http:
        before = (await http.get(url + "/healthz")).json()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        stop_at = t0 + duration
        if client == "raw":
            loops = [_raw_client_loop(url, body, stop_at, out) for _ in range(clients)]
        else:
            loops = [_client_loop(http, url + "/v1/landmarks", body, stop_at, out) for _ in range(clients)]
        await asyncio.gather(*loops)
        elapsed = time.perf_counter() - t0
        out["client_cpu_s"] = round(time.process_time() - cpu0, 2)
        after = (await http.get(url + "/healthz")).json()
    out["elapsed_s"] = elapsed
    out["server_served"] = after["served"] - before["served"]
    out["server_timeouts"] = after["timeouts"] - before["timeouts"]
    out["server_busy"] = after["busy"] - before["busy"]
    return out


# --- the baseline ---------------------------------------------------------------------------


def baseline(body: bytes, threads: int, duration: float, callers: int) -> dict:
    """The server's engine called directly, by ``callers`` threads through a pool of ``threads``.

    Each caller loops: submit ``sniff -> engine.landmarks -> JSON`` on the bytes to a
    first-in-first-out pool of ``threads`` workers (as the server's pool is) and wait
    for it. The latency includes the same queueing, so the difference to the server
    is HTTP, multipart/JSON parsing, the event loop and the client.
    """
    from concurrent.futures import ThreadPoolExecutor

    from facekeypoints.server.app import Engine
    from facekeypoints.server.limits import ServerConfig, sniff_image

    engine = Engine(ServerConfig(threads=threads))
    lock = threading.Lock()
    out = {"ok": 0, "errors": 0, "latencies": []}
    assert len(engine.landmarks(body, sniff_image(body)).faces) == 1, "the test photo must have exactly one face"

    def work() -> int:
        faces = engine.landmarks(body, sniff_image(body)).faces
        json.dumps({"faces": [f.to_dict() for f in faces]})  # the server serialises too
        return len(faces)

    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work) for _ in range(threads * 2)]:  # warm up every worker thread
            f.result()
        stop_at = time.perf_counter() + duration

        def caller():
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                n = pool.submit(work).result()
                dt = time.perf_counter() - t0
                with lock:
                    if n == 1:
                        out["ok"] += 1
                        out["latencies"].append(dt)
                    else:
                        out["errors"] += 1

        t0 = time.perf_counter()
        clients = [threading.Thread(target=caller) for _ in range(callers)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        out["elapsed_s"] = time.perf_counter() - t0
    engine.close()
    return out


def summarise(name: str, res: dict) -> dict:
    lat = percentiles(res["latencies"])
    row = {
        "run": name,
        "requests": res["ok"] + res["errors"],
        "ok": res["ok"],
        "errors": res["errors"],
        "lost": res.get("lost", 0),
        "req_per_s": res["ok"] / res["elapsed_s"],
        **{k: round(v, 1) for k, v in lat.items()},
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server (default: start one on a free loopback port)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="server worker threads (default: the server's)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default: %(default)s)")
    parser.add_argument("--single", type=float, default=10.0, help="seconds of the one-client run (0: skip)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: raw (asyncio streams, little CPU; default) or httpx (a full HTTP client, more CPU)",
    )
    args = parser.parse_args(argv)

    from facekeypoints.server.limits import ServerConfig

    threads = args.threads or ServerConfig().threads
    body = photo_640x480()
    rows: list[dict] = []
    raw: dict = {}
    proc = None
    log_path = Path(tempfile.mkdtemp(prefix="fk-load-")) / "serve.log"
    try:
        if args.url:
            url = args.url.rstrip("/")
            if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
                raise SystemExit("--url must be a loopback address (127.x, localhost or [::1])")
        else:
            proc, url = start_server(threads, args.workers, log_path)
        # Warm up every worker thread (first calls build detectors) before measuring.
        asyncio.run(http_load(url, body, max(2, threads), 2.0, args.client))
        if args.single > 0:
            res = asyncio.run(http_load(url, body, 1, args.single, args.client))
            raw["http_1_client"] = res
            rows.append(summarise("HTTP, 1 client", res))
        server_cpu0 = None if proc is None else _cpu_seconds(proc.pid)
        res = asyncio.run(http_load(url, body, args.clients, args.duration, args.client))
        if server_cpu0 is not None:
            res["server_cpu_s"] = round(_cpu_seconds(proc.pid) - server_cpu0, 2)
        raw["http"] = res
        rows.append(summarise(f"HTTP, {args.clients} clients", res))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    if not args.no_baseline:
        if args.single > 0:
            res = baseline(body, threads, args.single, 1)
            raw["inprocess_1_caller"] = res
            rows.append(summarise("in-process, 1 caller", res))
        res = baseline(body, threads, args.duration, args.clients)
        raw["inprocess"] = res
        rows.append(summarise(f"in-process, {args.clients} callers", res))

    http = raw["http"]
    lost = http["sent"] - http["answered"]  # requests that got no answer (connection errors, timeouts)
    # The server's own count of requests served during the run (one process only: /healthz is per process).
    counted = http["server_served"] if args.workers == 1 and not args.url else None
    print(
        f"\nfacekeypoints {args.clients} clients x {args.duration:g} s on loopback; server: {args.workers} "
        f"process(es) x {threads} threads; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
        "640x480 JPEG, 1 face"
    )
    head = ("requests", "errors", "lost", "req/s", "p50 ms", "p95 ms", "p99 ms")
    print(f"{'run':28} " + " ".join(f"{h:>8}" for h in head))
    for r in rows:
        print(
            f"{r['run']:28} {r['requests']:8d} {r['errors']:8d} {r['lost']:8d} {r['req_per_s']:8.2f} "
            f"{r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f}"
        )
    print(
        f"HTTP run: sent {http['sent']}, answered {http['answered']}, server counted "
        f"{'n/a' if counted is None else counted} served; "
        f"errors {http['error_kinds'] or 0}; lost {http['lost_reasons'] or 0}; "
        f"server timeouts {http['server_timeouts']}, busy {http['server_busy']}"
    )
    cores = f"{http['server_cpu_s'] / http['elapsed_s']:.2f}" if "server_cpu_s" in http else "n/a"
    print(
        f"CPU during the HTTP run ({args.client} client): server {cores} cores, "
        f"load generator {http['client_cpu_s'] / http['elapsed_s']:.2f} cores"
    )
    by_run = {r["run"]: r for r in rows}
    inproc = by_run.get(f"in-process, {args.clients} callers")
    if inproc:
        overhead = 1 - by_run[f"HTTP, {args.clients} clients"]["req_per_s"] / inproc["req_per_s"]
        print(f"throughput cost of HTTP at {args.clients} clients: {overhead * 100:.1f}%")
    one, one_in = by_run.get("HTTP, 1 client"), by_run.get("in-process, 1 caller")
    if one_in:
        ceiling = threads * one_in["req_per_s"]
        share = by_run[f"HTTP, {args.clients} clients"]["req_per_s"] / ceiling
        print(
            f"HTTP at {args.clients} clients: {share * 100:.0f}% of {threads} threads x the one-caller in-process rate "
            f"({one_in['req_per_s']:.1f}/s: decode, detect, landmarks, JSON on one thread)"
        )
    if one and one_in:
        print(f"per-request cost of HTTP (1 client, p50): {one['p50'] - one_in['p50']:.1f} ms")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        for res in raw.values():
            res.pop("latencies", None)
        Path(args.json).write_text(json.dumps({"rows": rows, "raw": raw}, indent=2) + "\n")
    failed = http["errors"] or lost or (counted is not None and counted != http["ok"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
