"""Start ``facekeypoints serve`` on a free loopback port for a bench, and wait until it answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(extra_args: list[str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """The server process (output to ``log_path``) and its base URL, once ``/healthz`` answers 200."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "facekeypoints", "serve", "--port", str(port), "--log-level", "warning"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd + extra_args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")
