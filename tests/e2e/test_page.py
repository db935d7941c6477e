"""End to end: the web page in headless chromium, against `facekeypoints serve` on a loopback port.

Uploads a one-face photo, a two-face photo and a photo without a face through
the page, and checks the face count it reports and the boxes and landmarks it
draws on its canvas; then the download, a filter and the (fake) webcam. The
browser is Debian's ``chromium`` driven by ``playwright-core`` from
``tests/e2e/node_modules`` (``npm ci --prefix tests/e2e``); ``.ci/run`` installs
both. Skipped, with the reason, where they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("FACEKEYPOINTS_CHROMIUM", "/usr/bin/chromium"))
SCRIPT = HERE / "page_check.mjs"


def _requirements() -> str | None:
    """Why the browser test cannot run here, or None."""
    for module in ("fastapi", "uvicorn", "httpx"):
        try:
            __import__(module)
        except ImportError:
            return f"the [serve]/[dev] extras are not installed ({module} is missing)"
    if not CHROMIUM.is_file():
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"
    if shutil.which("node") is None:
        return "node is not installed (apt-get install -y nodejs npm)"
    if not (HERE / "node_modules" / "playwright-core" / "package.json").is_file():
        return f"playwright-core is not installed in {HERE / 'node_modules'} (npm ci --prefix tests/e2e)"
    return None


pytestmark = pytest.mark.skipif(_requirements() is not None, reason=str(_requirements()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import httpx

    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "facekeypoints", "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"facekeypoints serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url + "healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"facekeypoints serve did not answer within 90 s:\n{log.read_text()}")
            time.sleep(0.3)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[dict]:
    import cv2
    import numpy as np
    from matplotlib import cbook

    folder = tmp_path_factory.mktemp("photos")
    portrait = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    one = folder / "one face.jpg"
    two = folder / "two_faces.png"
    none = folder / "no_face.png"
    cv2.imwrite(str(one), portrait)
    cv2.imwrite(str(two), np.concatenate([portrait, portrait], axis=1))
    cv2.imwrite(str(none), np.full((240, 320, 3), (90, 160, 200), np.uint8))
    return [{"path": str(one), "faces": 1}, {"path": str(two), "faces": 2}, {"path": str(none), "faces": 0}]


@pytest.fixture(scope="module")
def report(server, photos, tmp_path_factory) -> dict:
    url, _log = server
    out = tmp_path_factory.mktemp("browser")
    config = {"url": url, "photos": photos, "out": str(out), "chromium": str(CHROMIUM)}
    proc = subprocess.run(
        ["node", str(SCRIPT), json.dumps(config)], cwd=HERE, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"node failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from the browser script:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    result = json.loads(lines[-1])
    result["out"] = str(out)
    assert "fatal" not in result, result.get("fatal")
    return result


def test_page_reports_and_draws_the_faces(report):
    assert len(report["photos"]) == 3
    for photo in report["photos"]:
        name = Path(photo["path"]).name
        assert photo["state"] == "done", f"{name}: {photo['status']}"
        assert photo["faceCount"] == str(photo["expected"]), f"{name}: page says {photo['faceCount']} faces"
        assert photo["time"].endswith(")") and " ms" in photo["time"], photo["time"]
        assert len(photo["canvas"]["faces"]) == photo["expected"]
        for face in photo["canvas"]["faces"]:
            # The box outline and the landmark dots are on the canvas where the API put them.
            assert face["boxEdgeFraction"] >= 0.8, (name, face)
            assert face["pointFraction"] >= 0.8, (name, face)
    widths = [p["canvas"]["width"] for p in report["photos"]]
    assert widths == [512, 1024, 320]


def test_page_downloads_the_drawn_picture(report):
    assert report["download"] == {"name": "facekeypoints.png", "png": True, "width": 320, "height": 240}


def test_page_filter(report):
    if not report["filters"]:
        pytest.skip("no filters in this installation")
    f = report["filter"]
    assert f["state"] == "done", f["status"]
    assert f["faceCount"] == str(f["expected"])
    assert f["changed"], "the filtered picture looks the same as the drawn one"
    assert (f["width"], f["height"]) == (1024, 600)


def test_page_webcam_streams_frames(report):
    cam = report["webcam"]
    assert cam["pressed"] == "true"
    assert cam["state"] == "done", cam["status"]
    assert cam["faceCount"].isdigit()


def test_page_is_self_contained_and_error_free(report, server):
    assert report["outsideRequests"] == []
    assert report["consoleErrors"] == []
    _url, log = server
    text = log.read_text()
    assert text.count("POST /v1/landmarks 200") >= 3
