"""One real product (Rasa server with the trained model + the app) per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.appserver import ROOT, AppServer


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    if not (ROOT / "models" / "ward.tar.gz").exists():
        pytest.fail("no trained model: run `make model` (make test does it)")
    server = AppServer(var_dir=tmp_path_factory.mktemp("var"))
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
