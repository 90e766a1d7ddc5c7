"""Shared fixtures: one real `mqim serve` stack (embedded amqtt broker + bridge + HTTP API on
ephemeral ports, SQLite in a temp dir) for the session, and a real HTTP client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mqim.serve import RunningServer, running_server
from tests.helpers import make_settings


@pytest.fixture(scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("mqim-data")
    async with running_server(make_settings(data_dir)) as running:
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{server.settings.http}", timeout=10) as client:
        yield client
