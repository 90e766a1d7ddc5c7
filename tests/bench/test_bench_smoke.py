"""The benchmark runs end to end on small numbers in both modes and reports every figure.

Speed is not asserted here (CI machines are shared and noisy): the bench itself prints each
target against the raw broker measured in the same run. This keeps the bench from rotting.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "mqim_bench.py"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_bench_quick_run_reports_every_figure(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("mqim_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["mqim_bench"] = bench
    spec.loader.exec_module(bench)
    results = await bench.main(["--quick", "--mode", mode, "--scenario", "direct",
                                "--scenario", "history", "--scenario", "fanout"])
    scenarios = [r.scenario for r in results]
    assert any(s.startswith("1:1 chats, max") for s in scenarios), scenarios
    assert any(s.startswith("one group of") for s in scenarios), scenarios
    assert sum(s.startswith("history page") for s in scenarios) == 2, scenarios
    for r in results:
        if r.scenario.startswith(("1:1", "one group")):
            assert r.delivered_per_s > 0
            assert r.raw_per_s > 0
            assert 0 < r.ratio < 10
            assert not math.isnan(r.p99_ms)
        assert r.server_rss_mb > 0
    out = capsys.readouterr().out
    assert "| target | this run |" in out
    assert f"{mode}: fan-out >= 70% of raw" in out
