"""The service's edges, against a real uvicorn server on a loopback port: what ordinary and hostile clients see.

Clients that write their whole body before reading, clients that trickle, the
pages' references to other hosts, and the API key. Each server runs in a
thread of the test process on a free port, with the bundled model loaded once.
"""

from __future__ import annotations

import contextlib
import html.parser
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
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
from facekeypoints.server.protocol import uvicorn_options  # noqa: E402


@pytest.fixture(scope="module")
def small_picture() -> bytes:
    return _encode(np.full((120, 160, 3), 128, np.uint8), ".png")


@contextlib.contextmanager
def live_server(engine: Engine, **config):
    """A uvicorn server in a thread on a free loopback port, set up as ``facekeypoints serve`` sets it up."""
    import uvicorn

    cfg = ServerConfig(threads=2, **config)
    eng = live_server.last_engine = Engine(cfg, model=engine.model)
    port = free_port()
    app = create_app(cfg, engine=eng)
    options = uvicorn_options(cfg)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
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


# --- 13: slow clients hold a connection only so long, and never lock ordinary requests out ---------------


class Tricklers:
    """``count`` connections that send their request a byte at a time, each reopened ``reopen_s`` after the
    server closed it.

    Half trickle their headers, half send whole headers (``Content-Length: 100000``)
    and trickle the body. Records how long each connection was kept open and the
    status line of any answer it got.
    """

    def __init__(self, port: int, count: int, every_s: float = 0.05, reopen_s: float = 0.25):
        self.port, self.count, self.every_s, self.reopen_s = port, count, every_s, reopen_s
        self.lifetimes: list[tuple[str, float]] = []  # (kind, seconds) of each connection the server closed
        self.answers: list[bytes] = []
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _open(self, kind: str) -> dict:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setblocking(False)
        self.opened += 1
        if kind == "head":
            todo = (
                b"POST /v1/landmarks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n" + b"X-Pad: a\r\n" * 999
            )
        else:
            sock.sendall(request_head("POST", "/v1/landmarks", Content_Length="100000"))
            todo = b"\0" * 100000
        return {"sock": sock, "kind": kind, "todo": todo, "t0": time.monotonic(), "got": b""}

    def _run(self):
        import select

        conns = [self._open("head" if i % 2 else "body") for i in range(self.count)]
        while not self._stop.is_set():
            now = time.monotonic()
            for i, c in enumerate(conns):
                if c["sock"] is None and now >= c["reopen"]:
                    conns[i] = self._open(c["kind"])
            live = [c for c in conns if c["sock"] is not None]
            readable, _, _ = select.select([c["sock"] for c in live], [], [], self.every_s)
            for c in live:
                closed = False
                if c["sock"] in readable:
                    try:
                        data = c["sock"].recv(65536)
                    except OSError:
                        data = b""
                    c["got"] += data
                    closed = not data
                if not closed:
                    try:
                        c["sock"].send(c["todo"][:1])
                        c["todo"] = c["todo"][1:]
                    except OSError:
                        closed = True
                if closed:
                    self.lifetimes.append((c["kind"], time.monotonic() - c["t0"]))
                    if c["got"]:
                        self.answers.append(c["got"].split(b"\r\n", 1)[0])
                    c["sock"].close()
                    c["sock"], c["reopen"] = None, time.monotonic() + self.reopen_s
        for c in conns:
            if c["sock"] is not None:
                c["sock"].close()


def test_trickling_clients_do_not_stop_ordinary_requests(engine, small_picture):
    """100 connections trickling their headers or body, reopened as they are closed."""
    with live_server(engine, header_timeout_s=0.5, body_timeout_s=1.0, max_connections=120) as port:
        base = f"http://127.0.0.1:{port}"
        with Tricklers(port, 100) as tricklers:
            time.sleep(0.5)
            answered, slowest, t_start = 0, 0.0, time.monotonic()
            while answered < 8 or time.monotonic() - t_start < 2.5:  # past both time limits, several times
                t0 = time.monotonic()
                with httpx.Client(base_url=base, timeout=10) as client:  # a fresh connection each time
                    r = client.post("/v1/landmarks", content=small_picture)
                    assert r.status_code == 200, r.text
                    health = client.get("/healthz")
                    assert health.status_code == 200
                slowest = max(slowest, time.monotonic() - t0)
                answered += 1
                assert health.json()["connections"]["open"] <= 120
        counters = httpx.get(base + "/healthz").json()["connections"]
    assert slowest < 5.0, slowest  # about 0.05 s on a quiet machine, with or without the tricklers
    # Slow clients were closed at their time limits (or earlier, to make room): none held on.
    longest = {kind: max((t for k, t in tricklers.lifetimes if k == kind), default=None) for kind in ("head", "body")}
    assert None not in longest.values(), f"some slow clients were never closed: {longest}"
    assert longest["head"] < 0.5 + 1.0 and longest["body"] < 1.0 + 1.0, longest
    assert counters["header_timeouts"] > 0 and counters["body_timeouts"] > 0, counters
    assert b"HTTP/1.1 408 Request Timeout" in tricklers.answers, set(tricklers.answers)


def test_the_connection_cap_pushes_out_the_slowest_and_refuses_only_when_all_are_answered(engine, small_picture):
    with live_server(engine, max_connections=2) as port:
        url = f"http://127.0.0.1:{port}/v1/landmarks"
        # A: served, then kept alive; B: opened later, still sending its headers.
        a = socket.create_connection(("127.0.0.1", port))
        a.sendall(request_head("POST", "/v1/landmarks", Content_Length=str(len(small_picture))) + small_picture)
        assert read_answer(a)[0] == 200
        b = socket.create_connection(("127.0.0.1", port))
        b.sendall(b"POST /v1/landmarks HTTP/1.1\r\n")
        time.sleep(0.2)
        # A third connection pushes out B (sending a request), not A (served, idle), though A is older.
        assert httpx.post(url, content=small_picture, timeout=30).status_code == 200
        b.settimeout(5)
        assert b.recv(10) == b""
        a.sendall(request_head("POST", "/v1/landmarks", Content_Length=str(len(small_picture))) + small_picture)
        assert read_answer(a)[0] == 200  # A still serves
        a.close()
        b.close()

    # Every open connection is being answered: a new one is answered 503 at once, and is not left hanging.
    gate = threading.Event()
    with live_server(engine, max_connections=2, max_queue=4) as port:
        app_engine = live_server.last_engine
        real_decode = app_engine.decode
        app_engine.decode = lambda data, header: (gate.wait(20), real_decode(data, header))[1]
        busy = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        for sock in busy:
            sock.sendall(request_head("POST", "/v1/landmarks", Content_Length=str(len(small_picture))) + small_picture)
        deadline = time.monotonic() + 10
        while app_engine.running + app_engine.waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port)) as third:
            status, _, body = read_answer(third, timeout=5)
        assert status == 503 and json.loads(body)["error"] == "busy", body
        gate.set()
        for sock in busy:
            assert read_answer(sock)[0] == 200
            sock.close()
        counters = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["connections"]
        assert counters["refused"] == 1


# --- 14: no page of ours refers to another host ---------------------------------------------------------


class _References(html.parser.HTMLParser):
    """Every URL an HTML page refers to: src, href, action, srcset, poster, data attributes and inline url()."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("src", "href", "action", "formaction", "poster", "data", "manifest", "content"):
                self.urls.append(value.strip())
            elif name == "srcset":
                self.urls += [part.strip().split()[0] for part in value.split(",") if part.strip()]
            elif name == "style":
                self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", value)

    def handle_data(self, data):  # inline scripts and styles
        self.urls += re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+[^\s'\"<>)]*", data)


def _other_hosts(urls: list[str], host: str) -> list[str]:
    out = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss", "ftp", "") and parts.netloc and parts.netloc != host:
            out.append(url)
    return out


def test_no_page_refers_to_another_host(engine):
    """Every GET route that answers HTML, and the files it loads, refer only to this server."""
    from test_server import make_client

    with make_client(engine) as client:
        host = "testserver"
        paths = [r.path for r in client.app.routes if "GET" in getattr(r, "methods", ()) and "{" not in r.path]
        assert "/" in paths
        pages = {}
        for path in paths:
            r = client.get(path)
            if r.headers.get("content-type", "").startswith("text/html"):
                pages[path] = r.text
        assert set(pages) == {"/"}, sorted(
            pages
        )  # no /docs, /redoc or oauth2 redirect page: their scripts are on a CDN
        for path, text in pages.items():
            refs = _References()
            refs.feed(text)
            assert refs.urls, f"{path}: no references found; the check would be empty"
            assert _other_hosts(refs.urls, host) == [], path
            for url in refs.urls:  # what the page loads from us is checked the same way
                parts = urllib.parse.urlsplit(url)
                if parts.scheme in ("", "http", "https") and not parts.netloc and parts.path.startswith("/static/"):
                    loaded = client.get(parts.path).text
                    found = re.findall(r"(?:https?:|wss?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s'\"`)]*", loaded)
                    assert found == [], f"{parts.path} refers to {found}"
        for gone in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert client.get(gone).status_code == 404
        assert client.get("/openapi.json").json()["paths"]


# --- 15: the API key --------------------------------------------------------------------------------------

KEY = "k3y-for-the-test-0123456789"


def test_api_key_guards_every_v1_route_and_nothing_else(engine, small_picture, monkeypatch):
    from test_server import assert_error, make_client

    from facekeypoints.server import gateway

    compared = []
    real_compare = gateway.hmac.compare_digest
    monkeypatch.setattr(gateway.hmac, "compare_digest", lambda a, b: compared.append(1) or real_compare(a, b))
    with make_client(engine, api_key=KEY, cors_origins=("http://app.example",)) as client:
        post = lambda path, **headers: client.post(path, content=small_picture, headers=headers)  # noqa: E731
        for path in ("/v1/landmarks", "/v1/render", "/v1/no-such-route"):
            r = post(path)
            body = assert_error(r, 401, "unauthorized")
            assert "Authorization: Bearer KEY" in body["detail"]
            assert r.headers["www-authenticate"] == 'Bearer realm="facekeypoints"'
        assert_error(client.get("/v1/models"), 401, "unauthorized")
        for wrong in ("Bearer not-the-key-0123456789", f"Basic {KEY}", f"Bearer {KEY}x", "Bearer", KEY):
            r = post("/v1/landmarks", Authorization=wrong)
            assert_error(r, 401, "unauthorized")
        assert 'error="invalid_token"' in post("/v1/landmarks", Authorization="Bearer nope").headers["www-authenticate"]
        assert compared, "the key was not compared with hmac.compare_digest"

        assert post("/v1/landmarks", Authorization=f"Bearer {KEY}").status_code == 200
        assert post("/v1/landmarks", Authorization=f"bearer  {KEY} ").status_code == 200
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        # Open without the key: health, the page and its files, the API description, CORS preflights.
        for path in ("/healthz", "/", "/static/app.js", "/static/style.css", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        preflight = client.options(
            "/v1/landmarks",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        spec = client.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
        assert spec["paths"]["/v1/landmarks"]["post"]["security"] == [{"apiKey": []}]
        assert "401" in spec["paths"]["/v1/models"]["get"]["responses"]
        assert "security" not in spec["paths"]["/healthz"]["get"]
    with make_client(engine) as client:  # no key: open, as before
        assert client.post("/v1/landmarks", content=small_picture).status_code == 200
        assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_an_unauthorized_upload_is_answered_401_to_a_client_that_writes_first(engine, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    with live_server(engine, api_key_file=str(key_file)) as port:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/landmarks", data=ELEVEN_MB, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=60)
        assert info.value.code == 401 and json.loads(info.value.read())["error"] == "unauthorized"


def test_api_key_settings(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n")
    cfg = ServerConfig(api_key_file=str(key_file))
    assert cfg.read_api_key() == KEY
    assert ServerConfig.from_env(cfg.to_env()) == cfg
    assert ServerConfig.from_env({"FACEKEYPOINTS_SERVE_API_KEY": KEY}).read_api_key() == KEY
    assert KEY not in repr(ServerConfig(api_key=KEY))
    assert ServerConfig().read_api_key() is None
    problems = {
        "missing": (str(tmp_path / "nope"), "no such file"),
        "two lines": ("a" * 20 + "\n" + "b" * 20, "one line"),
        "short": ("abc", "at least 16"),
        "spaces": ("a key with spaces in it", "without spaces"),
        "empty": ("\n", "empty"),
    }
    for name, (content, message) in problems.items():
        path = tmp_path / name
        if name != "missing":
            path.write_text(content)
        with pytest.raises(ValueError, match=message) as info:
            ServerConfig(api_key_file=str(path)).read_api_key()
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not both"):
        ServerConfig(api_key=KEY, api_key_file=str(key_file))
    with pytest.raises(ValueError, match="at least 16"):
        ServerConfig(api_key="short")


@pytest.fixture
def serve_stub(monkeypatch):
    """``facekeypoints serve`` up to uvicorn.run, which records its arguments instead of listening."""
    import os

    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    saved = dict(os.environ)  # serve writes its settings there, for worker processes: put it all back after
    for name in list(os.environ):
        if name.startswith("FACEKEYPOINTS_SERVE_"):
            del os.environ[name]
    try:
        yield calls
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_serve_api_key_file_and_the_warning_on_an_outside_address(serve_stub, tmp_path, capsys):
    import os

    from fastapi.testclient import TestClient

    from facekeypoints import cli

    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 0
    err = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0 without an API key" in err and "--api-key-file" in err
    assert err.count("\n") == 1

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    assert cli.main(["serve", "--host", "0.0.0.0", "--api-key-file", str(key_file)]) == 0
    assert "warning" not in capsys.readouterr().err
    app = serve_stub[-1][0]
    with TestClient(app) as client:
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.get("/healthz").status_code == 200

    for host in ("127.0.0.1", "localhost", "::1"):
        assert cli.main(["serve", "--host", host]) == 0
        assert "warning" not in capsys.readouterr().err

    os.environ["FACEKEYPOINTS_SERVE_API_KEY_FILE"] = str(key_file)  # the environment, as documented
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 0
    assert "warning" not in capsys.readouterr().err
    with TestClient(serve_stub[-1][0]) as client:
        assert client.get("/v1/models").status_code == 401

    os.environ["FACEKEYPOINTS_SERVE_API_KEY_FILE"] = str(tmp_path / "missing")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such file" in err and err.count("\n") == 0


# --- 16: the soak bench runs, and its report says what it must --------------------------------------------


def test_soak_bench_smoke(tmp_path):
    """bench/soak.py for a few seconds: every request answered as expected, RSS figures reported."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(bench), "--duration", "4", "--clients", "4", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["passed"] and report["load"]["failed"] == 0, report["load"]["failures"]
    assert report["load"]["requests"] > 10 and all(n > 0 for n in report["load"]["by_kind"].values())
    rss = report["rss"]
    assert 0 < rss["start_mib"] <= rss["peak_mib"] and rss["end_mib"] <= rss["peak_mib"]
    assert rss["keeps_growing"] is None and "not judged" in rss["verdict"]  # 4 s is too short to judge
    assert report["server_counters"]["timeouts"] == 0


# --- 17: clean messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--threads", "0"),
        ("--workers", "0"),
        ("--timeout", "0"),
        ("--max-upload-mb", "inf"),
        ("--max-megapixels", "nan"),
        ("--max-queue", "-1"),
        ("--max-connections", "0"),
        ("--header-timeout", "-1"),
        ("--body-timeout", "0"),
    ],
)
def test_serve_refuses_bad_numbers_naming_the_flag(flag, value, capsys):
    from facekeypoints import cli

    assert cli.main(["serve", flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"facekeypoints: error: {flag} {value}: must be"), err


def test_routing_errors_say_what_to_do(engine):
    from test_server import assert_error, make_client

    with make_client(engine) as client:
        body = assert_error(client.get("/v2/landmarks"), 404, "not_found")
        assert body["detail"] == "no route GET /v2/landmarks; the routes are listed in /openapi.json"
        body = assert_error(client.get("/v1/landmarks"), 405, "method_not_allowed")
        assert body["detail"] == "GET is not allowed on /v1/landmarks; use POST"


def test_malformed_http_is_answered_with_the_json_error(engine):
    with live_server(engine) as port:
        for request in (
            b"NOT HTTP AT ALL\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000,  # still no end of headers past 16 KiB
        ):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                status, headers, body = read_answer(sock)
            assert status == 400 and headers["content-type"] == "application/json"
            assert json.loads(body) == {
                "error": "bad_request",
                "detail": "the request is not valid HTTP/1.1, or its line and headers are over 16 KiB",
            }
