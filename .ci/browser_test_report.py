"""After the test run in .ci/run: say loudly when the browser test (tests/e2e) did not run.

    python3 .ci/browser_test_report.py REPORT_JSON PYTEST_STATUS

REPORT_JSON is what tests/e2e/conftest.py wrote (FACEKEYPOINTS_E2E_REPORT); it may be missing
(pytest never got there). Prints, as the last lines of the CI output, a banner starting
"BROWSER TEST SKIPPED: <reason>" when any browser test was skipped or none ran. Exits with
PYTEST_STATUS, except that a run whose pytest passed exits 1 when chromium, node and
playwright-core are all installed and the browser test still did not run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
E2E = ROOT / "tests" / "e2e"
RULE = "=" * 78


def tools_present() -> list[str]:
    """What the browser test needs beyond Python that is missing here (empty: all present)."""
    chromium = Path(os.environ.get("FACEKEYPOINTS_CHROMIUM", "/usr/bin/chromium"))
    missing = []
    if not chromium.is_file():
        missing.append(f"chromium ({chromium})")
    if shutil.which("node") is None:
        missing.append("node")
    if not (E2E / "node_modules" / "playwright-core" / "package.json").is_file():
        missing.append("playwright-core (tests/e2e/node_modules)")
    return missing


def main(argv: list[str]) -> int:
    report_path, status = Path(argv[0]), int(argv[1])
    try:
        tests = json.loads(report_path.read_text())["tests"]
    except (OSError, ValueError, KeyError):
        tests = None
    if tests is None:
        reasons = ["pytest wrote no report for tests/e2e (it stopped before, or did not collect that folder)"]
        ran = skipped = []
    else:
        ran = [t for t, r in tests.items() if r["outcome"] in ("passed", "failed")]
        skipped = [t for t, r in tests.items() if r["outcome"] == "skipped"]
        reasons = list(dict.fromkeys(tests[t].get("reason") or "no reason given" for t in skipped))
        if not tests:
            reasons = ["no browser test was collected"]
    if tests and not skipped:
        passed, failed = (sum(r["outcome"] == o for r in tests.values()) for o in ("passed", "failed"))
        print(f"browser test (tests/e2e): {passed} passed, {failed} failed, none skipped", flush=True)
        return status
    missing = tools_present()
    lines = [RULE]
    lines += [f"BROWSER TEST SKIPPED: {reason}" for reason in reasons]
    if skipped:
        lines.append(f"  {len(skipped)} of {len(tests)} tests in tests/e2e were skipped, {len(ran)} ran:")
        lines += [f"    {t}" for t in skipped]
    lines.append("  The web page was NOT fully checked in a browser by this run.")
    if missing:
        lines.append(f"  Missing here: {', '.join(missing)}.")
    else:
        lines.append("  chromium, node and playwright-core are all installed: it should have run, so this run FAILS.")
    lines.append(RULE)
    print("\n".join(lines), flush=True)
    return status or (0 if missing else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
