"""Shared fixtures: a real stack per deployment mode for the session (see tests/stacks.py), and
a real HTTP client to it. Tests that take `server` run once per mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import VALIDATED
from tests.stacks import Stack, running_stack


@pytest.fixture(scope="session", params=["embedded", "mosquitto"])
async def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="session")
async def embedded_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """For tests of the embedded amqtt broker's own gaps."""
    async with running_stack("embedded", tmp_path_factory.mktemp("embedded-only")) as running:
        yield running


@pytest.fixture
async def http(server: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{server.settings.http}", timeout=10) as client:
        yield client


@pytest.fixture
async def embedded_http(embedded_server: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://{embedded_server.settings.http}", timeout=10
    ) as client:
        yield client


# Packages whose package-scoped fixture is a whole deployment (a 3-node RabbitMQ cluster, the
# conformance world of four brokers): their tests run in one xdist worker, so it starts once.
_ONE_WORKER_PACKAGES = {"cluster", "conformance"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """CI runs the tests in 2 xdist workers with `--dist loadgroup` (.ci/run). The tests on a
    session stack (`server`'s embedded or mosquitto, `embedded_server`) stay in one worker per
    stack, so each stack starts once, as in a serial run; a file's other tests stay together
    (its module-scoped fixtures start once), and so do those packages'."""
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts
        callspec = getattr(item, "callspec", None)
        stack = callspec.params.get("server") if callspec is not None else None
        if stack is None and "embedded_server" in getattr(item, "fixturenames", ()):
            stack = "embedded"
        group = (f"stack-{stack}" if stack is not None
                 else parts[0] if parts[0] in _ONE_WORKER_PACKAGES else "/".join(parts))
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if VALIDATED:
        terminalreporter.section("events validated against contract/events.py")
        terminalreporter.write_line(", ".join(f"{kind} {n}" for kind, n in VALIDATED.most_common()))
