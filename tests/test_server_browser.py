"""The page in a real browser, with and without an API key: Debian's headless chromium, driven over its DevTools pipe.

No browser-automation package is needed: chromium speaks the DevTools protocol
(JSON messages ending in a NUL byte) on file descriptors 3 and 4 when started with
``--remote-debugging-pipe``, and :class:`Browser` is the few lines that drive it.
Skipped where chromium is missing. The fuller page test (drawing, download,
filters, webcam) is tests/e2e, driven by playwright-core.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from test_server import _encode  # noqa: E402
from test_server_edges import live_server  # noqa: E402

CHROMIUM = os.environ.get("FACEKEYPOINTS_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"Debian's chromium is not installed at {CHROMIUM}"
)

KEY = "k3y-for-the-test-0123456789"


class Browser:
    """Headless chromium and one page in it, over the DevTools pipe."""

    def __init__(self, profile: Path):
        to_chromium_r, self._to_chromium = os.pipe()
        self._from_chromium, from_chromium_w = os.pipe()

        def fds():  # in the child: its fd 3 reads what we write, fd 4 writes what we read
            os.dup2(to_chromium_r, 3)
            os.dup2(from_chromium_w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chromium_r)
        os.close(from_chromium_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "DOM"):
            self.call(f"{domain}.enable", session=True)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        os.close(self._to_chromium)
        os.close(self._from_chromium)

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chromium], [], [], left)[0]:
                return None
            chunk = os.read(self._from_chromium, 1 << 16)
            assert chunk, "chromium closed its DevTools pipe"
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: bool = False, timeout: float = 30, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chromium, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self._read(deadline - time.monotonic())
            if answer is None:
                break
            if answer.get("id") == self._next_id:
                assert "error" not in answer, f"{method}: {answer['error']}"
                return answer.get("result", {})
            if "method" in answer:
                self.events.append(answer)
        raise AssertionError(f"{method}: no answer within {timeout} s")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str):
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"not true within {timeout} s: {expression}; page state {self.state()}")

    def state(self) -> dict:
        return self.evaluate(
            "({state: document.body.dataset.state, status: document.getElementById('status').textContent,"
            " faces: document.getElementById('face-count').textContent,"
            " keyForm: !document.getElementById('key-form').hidden,"
            " model: document.getElementById('model-name').textContent})"
        )

    def choose_file(self, selector: str, path: str) -> None:
        root = self.call("DOM.getDocument", session=True)["root"]["nodeId"]
        node = self.call("DOM.querySelector", session=True, nodeId=root, selector=selector)["nodeId"]
        self.call("DOM.setFileInputFiles", session=True, nodeId=node, files=[path])

    def requests(self) -> list[dict]:
        """Every request the page made so far: url, method and headers."""
        self.call("Runtime.evaluate", session=True, expression="0")  # collect the events that came before
        return [e["params"]["request"] for e in self.events if e["method"] == "Network.requestWillBeSent"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    import cv2
    from matplotlib import cbook

    path = tmp_path_factory.mktemp("photo") / "one face.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))), cv2.COLOR_BGR2RGB)
    path.write_bytes(_encode(rgb, ".jpg"))
    return str(path)


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def _only_this_server(requests: list[dict], port: int) -> None:
    hosts = {httpx.URL(r["url"]).host + f":{httpx.URL(r['url']).port}" for r in requests if r["url"].startswith("http")}
    assert hosts == {f"127.0.0.1:{port}"}, hosts
    assert all(r["url"].startswith(("http://127.0.0.1", "blob:", "data:")) for r in requests), [
        r["url"] for r in requests
    ]


def test_page_without_a_key_asks_for_none_and_loads_nothing_from_elsewhere(engine, browser, photo):
    with live_server(engine) as port:
        browser.goto(f"http://127.0.0.1:{port}/")
        browser.wait_for("document.body.dataset.state === 'ready'")
        assert not browser.state()["keyForm"]
        browser.choose_file("#photo", photo)
        browser.wait_for("document.body.dataset.state === 'done'")
        assert browser.state()["faces"] == "1"
        requests = browser.requests()
    _only_this_server(requests, port)
    assert not any("authorization" in {k.lower() for k in r["headers"]} for r in requests)


def test_page_asks_for_the_key_and_sends_it(engine, browser, photo, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    with live_server(engine, api_key_file=str(key_file)) as port:
        browser.goto(f"http://127.0.0.1:{port}/")
        browser.wait_for("document.body.dataset.state === 'key'")
        state = browser.state()
        assert state["keyForm"] and "needs an API key" in state["status"] and state["model"] == "", state

        # A wrong key is refused, and asked for again.
        browser.evaluate(
            "document.getElementById('api-key').value = 'not-the-key-0123456789';"
            "document.getElementById('key-form').requestSubmit()"
        )
        browser.wait_for(
            "document.body.dataset.state === 'key' && /refused/.test(document.getElementById('status').textContent)"
        )
        assert browser.evaluate("sessionStorage.getItem('facekeypoints.apiKey')") is None

        # The right key: the page loads the model and finds the face, sending the key each time.
        browser.evaluate(
            f"document.getElementById('api-key').value = '{KEY}'; document.getElementById('key-form').requestSubmit()"
        )
        browser.wait_for("document.body.dataset.state === 'ready'")
        assert not browser.state()["keyForm"] and "Model" in browser.state()["model"]
        browser.choose_file("#photo", photo)
        browser.wait_for("document.body.dataset.state === 'done'")
        assert browser.state()["faces"] == "1"
        assert browser.evaluate("sessionStorage.getItem('facekeypoints.apiKey')") == KEY
        requests = browser.requests()
    _only_this_server(requests, port)
    api = [r for r in requests if "/v1/" in r["url"]]
    sent = [{k.lower(): v for k, v in r["headers"].items()}.get("authorization") for r in api]
    assert sent[0] is None and sent[1] == "Bearer not-the-key-0123456789"  # models, unauthenticated then wrong
    assert sent[-2:] == [f"Bearer {KEY}"] * 2, sent  # /v1/models, then /v1/landmarks with the photo
    assert [r["url"].split("/v1/")[1] for r in api[-2:]] == ["models", "landmarks"]
    assert all(KEY not in r["url"] for r in requests)  # never in a URL (logs, history)
