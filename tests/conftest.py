"""Shared fixtures: the shared corpus and cases beside the repository, and Azurite."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

# Fixtures of the fakes of external services, such as `fake_openai`, for every test.
pytest_plugins = ["tests.fakes.openai_server", "tests.fakes.ai_search_server"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("KM_TEST_SHARED_DIR", REPO_ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() == "true"

# Azurite's well-known development account, served on loopback by .ci/run.
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)


def _missing(reason: str) -> None:
    """Skip on a user's clone, but fail in CI, where everything must be present."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def _shared_subdir(name: str) -> Path:
    path = SHARED_DIR / name
    if not path.is_dir():
        _missing(f"{path} is absent: the shared corpus and cases are not beside this clone")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return _shared_subdir("corpus")


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    return _shared_subdir("cases")


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    return _shared_subdir("contracts")


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def azurite_connection_string() -> str:
    """Connection string of the Azurite that .ci/run (or the developer) started on 127.0.0.1."""
    if not (_port_open(10000) and _port_open(10001)):
        _missing("Azurite is not listening on 127.0.0.1:10000 and :10001; start it as .ci/run does")
    return AZURITE_CONNECTION_STRING
