"""The search and history benches run end to end on a small thread and print every figure (one
database each, the smallest stack: SQLite). Speed is not asserted (shared, noisy machines): this
keeps the benches from rotting as the schema moves (a NOT NULL column their raw fills miss)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the benches import db_bench and each other
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_search_bench_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    code = await _load("search_bench").main(["--db", "sqlite", "--messages", "3000", "--child"])
    out = capsys.readouterr().out
    assert "== sqlite: 3,000 messages in one thread" in out
    for row in ("thread search", "global search", "history page (50)", "HTTP thread search"):
        assert f"  {row}" in out
    assert code == 0, out  # 3,000 messages are far below the 100 ms target


@pytest.mark.slow
async def test_history_bench_quick_run(capsys: pytest.CaptureFixture[str]) -> None:
    code = await _load("history_bench").main(["--db", "sqlite", "--messages", "3000",
                                              "--pages", "20", "--child"])
    out = capsys.readouterr().out
    assert "== sqlite: 2 threads of 3,000 messages" in out
    assert re.search(r"rich: [56]\d\d reactions, 60 edited messages", out), out
    assert "  newest page" in out
    assert "  deep page (random)" in out
    assert code in (0, 1), out  # the ratio is reported, not asserted (noise on 20 pages)
