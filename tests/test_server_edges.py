"""The service's edges, against a real uvicorn server on a loopback port: what ordinary and hostile clients see.

Clients that write their whole body before reading, clients that trickle, the
pages' references to other hosts, and the API key. Each server runs in a
thread of the test process on a free port, with the bundled model loaded once.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the [serve] extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is not installed")
pytest.importorskip("python_multipart", reason="the [serve] extra (python-multipart) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from test_server import _encode, free_port  # noqa: E402

from facekeypoints.server.app import Engine, create_app  # noqa: E402
from facekeypoints.server.limits import ServerConfig  # noqa: E402


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine(ServerConfig(threads=2))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def small_picture() -> bytes:
    return _encode(np.full((120, 160, 3), 128, np.uint8), ".png")


@contextlib.contextmanager
def live_server(engine: Engine, **config):
    """A uvicorn server in a thread on a free loopback port, set up as ``facekeypoints serve`` sets it up."""
    import uvicorn

    cfg = ServerConfig(threads=2, **config)
    eng = Engine(cfg, model=engine.model)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(cfg, engine=eng), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
        eng.close()


def read_answer(sock: socket.socket, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 answer with a Content-Length, read from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(rest) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the answer"
        rest += chunk
    return status, headers, rest


def request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"] + [
        f"{k.replace('_', '-')}: {v}" for k, v in headers.items()
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- 12: an answer before the body is read reaches a client that writes everything first -----------------

ELEVEN_MB = b"\0" * 11_000_000


def test_413_reaches_a_client_that_writes_the_whole_body_first(engine, small_picture):
    """The body is sent whole before anything is read (as urllib and requests do): the 413 is read, no reset."""
    with live_server(engine) as port:
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                head = request_head("POST", "/v1/landmarks", Content_Length=str(len(ELEVEN_MB)))
                sock.sendall(head + ELEVEN_MB)
                status, headers, body = read_answer(sock)
            assert status == 413, body
            assert json.loads(body)["error"] == "payload_too_large"
            assert headers["connection"] == "close"

        # The same without Content-Length (chunked): refused while streaming, past the limit.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            step = 1 << 20
            chunks = b"".join(b"%x\r\n%s\r\n" % (step, ELEVEN_MB[:step]) for _ in range(11))
            sock.sendall(request_head("POST", "/v1/landmarks", Transfer_Encoding="chunked") + chunks + b"0\r\n\r\n")
            status, _, body = read_answer(sock)
        assert status == 413 and json.loads(body)["error"] == "payload_too_large"

        # Python's urllib, the client of the issue.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/landmarks", data=ELEVEN_MB, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=60)
        assert info.value.code == 413
        assert json.loads(info.value.read())["error"] == "payload_too_large"

        # Any answer given before the body is read: 406 from the Accept header, 404, on a kept-alive connection.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                request_head("POST", "/v1/render", Content_Length=str(len(small_picture)), Accept="text/plain")
                + small_picture
            )
            assert read_answer(sock)[0] == 406
            sock.sendall(request_head("POST", "/nowhere", Content_Length="3000000") + b"\0" * 3_000_000)
            assert read_answer(sock)[0] == 404
            sock.sendall(request_head("POST", "/v1/landmarks", Content_Length=str(len(small_picture))) + small_picture)
            assert read_answer(sock)[0] == 200  # the same connection still serves


def test_the_drain_is_bounded_in_time_and_size(engine):
    with live_server(engine, max_upload_bytes=1000, body_timeout_s=0.5) as port:
        # A client that stops sending: the answer comes at once, the connection closes at the time limit.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request_head("POST", "/v1/landmarks", Content_Length="500000") + b"\0" * 2000)
            t0 = time.monotonic()
            status, _, _ = read_answer(sock)
            assert status == 413 and time.monotonic() - t0 < 0.4
            assert sock.recv(10) == b"" and time.monotonic() - t0 < 3
        # More than would ever be read: no drain, the connection is closed at once.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request_head("POST", "/v1/landmarks", Content_Length=str(1 << 30)))
            t0 = time.monotonic()
            status, _, _ = read_answer(sock)
            assert status == 413
            assert sock.recv(10) == b"" and time.monotonic() - t0 < 0.4
        # Expect: 100-continue: the client has sent no body and is answered at once.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request_head("POST", "/v1/landmarks", Content_Length="500000", Expect="100-continue"))
            t0 = time.monotonic()
            assert read_answer(sock)[0] == 413
            assert sock.recv(10) == b"" and time.monotonic() - t0 < 0.4
