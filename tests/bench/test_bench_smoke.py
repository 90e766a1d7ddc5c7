"""The benchmark runs end to end on small numbers in both modes and reports every figure.

Speed is not asserted here (CI machines are shared and noisy): the bench itself prints each
target against the raw broker measured in the same run. This keeps the bench from rotting.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pstats
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "mqim_bench.py"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_bench_quick_run_reports_every_figure(
    mode: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location("mqim_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["mqim_bench"] = bench
    spec.loader.exec_module(bench)
    sdk = ["--scenario", "sdk"] if mode == "embedded" else []  # the SDK speaks to both alike
    # The CPU profile on one of the two runs; the variables it sets end with the test.
    for name in ("PYTHONPATH", "BENCH_CPROFILE_OUT"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    cprofile = ["--cprofile", str(tmp_path)] if mode == "mosquitto" else []
    results = await bench.main(["--quick", "--mode", mode, "--scenario", "direct",
                                "--scenario", "history", "--scenario", "fanout", *sdk,
                                *cprofile])
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
    direct = next(r for r in results if r.scenario.startswith("1:1 chats, max"))
    assert direct.extra["uplinks_per_batch"] >= 1
    out = capsys.readouterr().out
    assert "| target | this run |" in out
    if cprofile:  # the server's CPU profile of the max-rate pipelines, and its top functions
        stats = pstats.Stats(str(tmp_path / "mosquitto-direct.pstats"))
        functions = {(Path(file).name, name) for file, _, name in stats.stats}  # type: ignore[attr-defined]
        assert ("append.py", "append_messages") in functions  # the bridge's own code is in it
        assert "top 10 by own CPU time, mosquitto-direct.pstats" in out
    assert f"{mode}: fan-out >= 70% of raw" in out
    if sdk:
        assert_sdk_figures(results, out)


def assert_sdk_figures(results: list[Any], out: str) -> None:
    """The SDK scenario: a raw-protocol row (two bracketing runs) and an SDK row, every figure
    there, and the side-by-side table printed."""
    rows = {r.scenario: r for r in results if r.scenario.startswith("group of 2, ")}
    raw, sdk = rows["group of 2, raw protocol"], rows["group of 2, mqim_client SDK"]
    assert (raw.messages, sdk.messages) == (400, 200)
    for r in (raw, sdk):
        assert r.persisted_per_s > 0
        for figure in (r.p50_ms, r.p99_ms, r.extra["confirm_p50_ms"], r.extra["confirm_p99_ms"]):
            assert 0 < figure < 60_000, r
        assert r.p50_ms <= r.p99_ms
    assert 0 < sdk.ratio < 10
    assert all(sdk.extra[k] > 0 for k in ("confirm_p50_vs_raw", "receive_p99_vs_raw"))
    assert "| mode | client | msgs | msgs/s | confirm p50 ms |" in out
    assert "| embedded | mqim_client SDK | 200 |" in out


def test_the_sdk_scenario_fails_on_a_missing_or_repeated_message() -> None:
    """The receiver's tally is what makes "exactly once" a check: a gap or a copy must fail."""
    sys.path.insert(0, str(BENCH.parent))
    from sdk_scenario import Tally  # bench/ is not a package

    def body(i: int) -> str:
        return f"{time.perf_counter_ns()}:{i}:xx"

    complete = Tally("complete", 3)
    for i in (2, 0, 1):
        complete.add(body(i))
    complete.check()  # out of order is fine
    assert complete.complete.is_set()
    gap, copy, stray = Tally("gap", 3), Tally("copy", 2), Tally("stray", 1)
    for tally, indices in ((gap, (0, 2)), (copy, (0, 1, 1)), (stray, (0, 5))):
        for i in indices:
            tally.add(body(i))
    for tally, says in ((gap, "missing [1]"), (copy, "repeated {1: 2}"), (stray, "stray [5]")):
        with pytest.raises(RuntimeError, match=re.escape(says)):
            tally.check()
