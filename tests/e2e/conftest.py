"""What became of the browser tests, for ``.ci/run``.

Where the environment variable ``FACEKEYPOINTS_E2E_REPORT`` names a file, pytest writes
there, at the end of the session, one JSON object: ``{"tests": {nodeid: {"outcome":
"passed" | "failed" | "skipped", "reason": ...}}}`` for the tests in this folder. ``.ci/run``
reads it to print a banner when the browser test was skipped (and to fail when the tools it
needs were all there). Without the variable nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_outcomes: dict[str, dict] = {}


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, "Skipped: reason")
        text = str(longrepr[2])
        return text.removeprefix("Skipped: ")
    return str(longrepr).strip().splitlines()[-1] if longrepr else ""


def pytest_runtest_logreport(report):
    """Called for the tests of this folder only (a hook of a conftest below the root)."""
    if report.when == "call" or not report.passed:  # the test itself, or a setup/teardown that did not pass
        entry = _outcomes.setdefault(report.nodeid, {"outcome": report.outcome})
        if report.outcome == "failed" or entry["outcome"] == "passed":
            entry["outcome"] = report.outcome
        if not report.passed and "reason" not in entry:
            entry["reason"] = _reason(report)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("FACEKEYPOINTS_E2E_REPORT")
    if not path:
        return
    Path(path).write_text(json.dumps({"tests": _outcomes}, indent=1) + "\n")
