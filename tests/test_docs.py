"""The documentation site (docs/, mkdocs.yml) stays true: its Python runs, its numbers are traceable.

- Every ```python block of every docs/*.md page runs as written, with the README's placeholders
  (``photo.jpg``, ``clip.mp4``, ``my_overlay.json``; tests/test_readme.py), in a fresh namespace.
- Every page is in the site's navigation, and ``mkdocs build --strict`` passes where the ``[docs]``
  extra is installed (CI builds the site in .ci/run in any case).
- Every percentage and millisecond figure of the model card is found in ``bench/results/`` or in the
  model's metadata, and the metadata's ``model_card`` agrees with the card and with its sources.
- The command-line page names every verb.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_readme import readme_blocks, run_block

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "bench" / "results"
META = ROOT / "src" / "facekeypoints" / "weights" / "facekeypoints-pip-w112.json"

_PAGES = sorted(DOCS.glob("*.md"))
_BLOCKS = [(page, line, source) for page in _PAGES for line, source in readme_blocks(page.read_text("utf-8"))]


def test_the_pages_have_python_blocks():
    assert len(_BLOCKS) >= 8
    assert {"python_api.md", "video.md", "filters.md", "pose_and_alignment.md"} <= {p.name for p, _, _ in _BLOCKS}


@pytest.mark.parametrize("page,line,source", _BLOCKS, ids=[f"{p.name}:{line}" for p, line, _ in _BLOCKS])
def test_docs_python_block_runs(page, line, source, tmp_path, monkeypatch):
    run_block(source, f"docs/{page.name}:{line}", tmp_path, monkeypatch, "__docs__")


def test_every_page_is_in_the_navigation():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config.split("\nnav:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, re.M))
    assert listed == {p.name for p in _PAGES}


def test_the_site_builds_strict(tmp_path):
    if shutil.which("mkdocs") is None and not _has_module("mkdocs"):
        pytest.skip("the [docs] extra is not installed (pip install -e '.[docs]'); CI builds the site in .ci/run")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env={**_env(), "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "index.html").is_file()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


_FILE_SUFFIXES = {"png", "jpg", "json", "jsonl", "onnx", "csv", "mp4", "npz", "py", "md"}
_NAMES = sorted(
    {
        m.group(0)
        for page in _PAGES
        for m in re.finditer(r"\bfacekeypoints(?:\.[A-Za-z_]\w*)+", page.read_text("utf-8"))
        if m.group(0).split(".")[1] not in _FILE_SUFFIXES
    }
)


@pytest.mark.parametrize("dotted", _NAMES)
def test_dotted_names_in_the_docs_resolve(dotted):
    """``facekeypoints.conventions.convert`` and the like, named in the pages, exist: the longest
    importable module prefix, then attributes."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in ("torch", "onnx", "fastapi", "uvicorn", "multipart"):
                pytest.skip(f"{dotted} needs {exc.name}")  # an optional extra this installation lacks
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return


# --- the model card ---------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _source_numbers() -> set[float]:
    """Every number written in bench/results/*.json and *.md, and in the model's metadata."""
    found: set[float] = set()
    for path in [*RESULTS.glob("*.json"), *RESULTS.glob("*.md"), META]:
        found.update(float(m) for m in _NUMBER.findall(path.read_text("utf-8")))
    return found


def _traceable(figure: str, sources: set[float]) -> bool:
    """``figure`` (as written, e.g. "3.54" or "98.6") is a source number, rounded as written,
    or a source fraction in percent (0.9858 -> 98.6)."""
    value = float(figure)
    digits = len(figure.split(".")[1]) if "." in figure else 0
    return any(round(v, digits) == value or round(100 * v, digits) == value for v in sources)


def test_every_figure_of_the_model_card_comes_from_bench_results_or_the_metadata():
    card = (DOCS / "model_card.md").read_text("utf-8")
    figures = re.findall(r"(\d+(?:\.\d+)?)\s?(?:%|ms\b)", card)
    assert len(figures) > 30
    sources = _source_numbers()
    missing = sorted({f for f in figures if not _traceable(f, sources)})
    assert not missing, f"model_card.md figures found in no bench/results file nor the metadata: {missing}"


def test_the_model_card_covers_what_a_card_must():
    card = (DOCS / "model_card.md").read_text("utf-8")
    headings = set(re.findall(r"^## (.+)$", card, re.M))
    needed = {"What it is", "Training data and terms", "Intended uses", "Not intended", "Known weaknesses"}
    assert needed <= headings
    assert {"Numbers (real photos first)", "How it was chosen", "Output: the landmark convention"} <= headings
    numbers = card.split("## Numbers (real photos first)", 1)[1]
    assert numbers.index("300-W common") < numbers.index("Udacity test")  # real photos first
    assert "research use only" in card


def test_the_metadata_model_card_agrees_with_the_card_and_its_sources():
    meta = json.loads(META.read_text())
    card_facts = meta["model_card"]
    card = (DOCS / "model_card.md").read_text("utf-8")
    assert card_facts["url"] == "docs/model_card.md" and (ROOT / card_facts["url"]).is_file()
    assert card_facts["output_convention"] == meta["convention"]
    assert "research use only" in card_facts["terms"]
    for bench in card_facts["benchmarks"]:
        source = ROOT / bench["source"]
        numbers = {float(m) for m in _NUMBER.findall(source.read_text())}
        for key in ("nme_io_percent", "dlib_nme_io_percent"):
            if key in bench:
                figure = f"{bench[key]:.2f}"
                assert _traceable(figure, numbers), (bench, key)
                assert f"{figure} %" in card, f"the card does not state {figure} %"


# --- the command line page ---------------------------------------------------------------------


def test_the_cli_page_names_every_verb():
    from facekeypoints import cli

    page = (DOCS / "cli.md").read_text("utf-8")
    for verb in cli.available_verbs():
        assert f"facekeypoints {verb}" in page, verb
    assert "facekeypoints --version" in page


def test_the_service_answers_with_the_model_card():
    """``GET /v1/models`` records the bundled model's card: its key facts from the metadata, and where the card is."""
    pytest.importorskip("fastapi", reason="the web service needs the [serve] extra")
    pytest.importorskip("httpx", reason="FastAPI's test client needs httpx (the [dev] extra)")
    from fastapi.testclient import TestClient

    from facekeypoints.server import ServerConfig, create_app

    with TestClient(create_app(ServerConfig(threads=1))) as client:
        (model,) = client.get("/v1/models").json()["models"]
    meta = json.loads(META.read_text())
    assert (model["name"], model["version"]) == (meta["name"], meta["version"])
    assert model["model_card"] == meta["model_card"]
    assert model["model_card"]["url"] == "docs/model_card.md"
