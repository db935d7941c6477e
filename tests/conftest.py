import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository, or skip when this checkout has none."""
    if not (SHARED_DATA / "train-test-data.zip").is_file():
        pytest.skip(f"real data not present at {SHARED_DATA} (only on the development machine)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def engine():
    """The web service's engine (the shared model, 2 worker threads), one per test module; the
    server test modules skip themselves first where the [serve] extra is missing."""
    from facekeypoints.server.app import Engine
    from facekeypoints.server.limits import ServerConfig

    eng = Engine(ServerConfig(threads=2))
    yield eng
    eng.close()
