"""Figures the hostile suites measure (inputs tried, 5xx seen, worst victim ack latency),
printed at the end of the run so a closing note can quote them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.embedded.broker import MqimBroker
from broker.embedded.launch import embedded_broker
from config import Settings
from tests.helpers import make_settings
from tests.hostile.mqtt_raw import SHORT_CONNECT_TIMEOUT, TokenDirectory

# surface -> figure -> value; counters add up, maxima keep the largest.
FIGURES: defaultdict[str, dict[str, float]] = defaultdict(dict)


def count(surface: str, figure: str, amount: float = 1) -> None:
    FIGURES[surface][figure] = FIGURES[surface].get(figure, 0) + amount


def record_max(surface: str, figure: str, value: float) -> None:
    FIGURES[surface][figure] = max(FIGURES[surface].get(figure, value), value)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("hostile input figures")
    for surface, figures in sorted(FIGURES.items()):
        shown = ", ".join(f"{name} {value:g}" for name, value in sorted(figures.items()))
        terminalreporter.write_line(f"{surface}: {shown}")


@pytest.fixture
def figures() -> defaultdict[str, dict[str, float]]:
    return FIGURES

@pytest.fixture(scope="module")
async def short_timeout_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Settings, MqimBroker]]:
    """An in-process embedded broker (real listener) that waits 1 s for a CONNECT."""
    settings = make_settings(Path(tmp_path_factory.mktemp("short-timeout")), mqtt_ws=None)
    async with embedded_broker(settings, TokenDirectory(),
                               connect_timeout=SHORT_CONNECT_TIMEOUT) as broker:
        yield settings, broker
