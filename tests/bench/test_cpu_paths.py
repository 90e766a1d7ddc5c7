"""What issue 16's CPU work changed, kept honest: the nesting bound still holds now that most
payloads skip the walk, `mqim serve` really runs on uvloop with its collector tuned and still
stops on SIGTERM, and the bench's profile reader counts own time right. About 5 s."""

from __future__ import annotations

import importlib.util
import signal
import sys
import time
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from contract.commands import CommandError, parse_command
from contract.errors import InvalidParameterError
from contract.jsonin import MAX_DEPTH, decode_json
from tests.stacks import running_stack

BENCH = Path(__file__).resolve().parents[2] / "bench"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("as_text", [False, True])
def test_the_nesting_bound_holds_with_or_without_the_walk(as_text: bool) -> None:
    def decode(raw: bytes) -> object:
        return decode_json(raw.decode() if as_text else raw)

    assert decode(nested(MAX_DEPTH)) is not None
    with pytest.raises(InvalidParameterError, match="nested deeper"):
        decode(nested(MAX_DEPTH + 1))
    # Brackets inside strings count towards the bound but nest nothing: walked, and accepted.
    shallow = orjson.dumps({"body": "[{" * 500, "mentions": [["x"]]})
    assert decode(shallow) == {"body": "[{" * 500, "mentions": [["x"]]}
    # Deep nesting behind many string brackets is still found.
    hostile = b'{"body": "' + b"{" * 100 + b'", "a": ' + nested(MAX_DEPTH) + b"}"
    with pytest.raises(InvalidParameterError, match="nested deeper"):
        decode(hostile)


def test_a_deep_send_is_refused_with_its_req() -> None:
    payload = (b'{"op": "send", "req": "r1", "thread_id": "t1", "client_msg_id": "c1", '
               b'"content": {"a": ' + nested(MAX_DEPTH) + b"}}")
    with pytest.raises(CommandError) as refused:
        parse_command(payload, 64 * 1024)
    assert refused.value.req == "r1"
    assert "nested deeper" in refused.value.error.msg
    plain = b'{"op": "send", "thread_id": "t1", "client_msg_id": "c1", "body": "[[[["}'
    assert parse_command(plain, 64 * 1024).body == "[[[["  # type: ignore[union-attr]


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


async def test_serve_runs_on_uvloop_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with running_stack("embedded", tmp_path) as stack:
        maps = text_of(Path(f"/proc/{stack.process.pid}/maps"))
        assert "/uvloop/" in maps, "mqim serve did not load uvloop"
        stack.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        await stack.process.wait()
        assert time.monotonic() - started < 10
        assert stack.process.returncode == 0
    assert "mqim stopped" in text_of(stack.log_path)


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_profile_reader_counts_own_time_per_function(tmp_path: Path) -> None:
    spy = load("profile_spy")
    collapsed = "\n".join([
        "process 1:\"mqim\";main (mqim/cli.py:200);handle (/x/site-packages/bridge/batch.py:60) 7",
        "process 1:\"mqim\";main (mqim/cli.py:201);handle (/x/site-packages/bridge/batch.py:61) 3",
        "process 1:\"mqim\";main (mqim/cli.py:200);gc_collect_main (libpython3.11.so.1.0) 5",
        "a line that is not a sample",
    ])
    own, total = spy.own_time(collapsed)
    assert total == 15
    assert own["handle (bridge/batch.py)"] == 10  # two lines of one function: one entry
    assert own["gc_collect_main (libpython3.11.so.1.0)"] == 5
    path = tmp_path / "embedded-direct.txt"
    path.write_text(collapsed, encoding="utf-8")
    table = spy.top_table(path, 2)
    assert "| 1 | handle (bridge/batch.py) | 66.7% |" in table
    assert "15 samples" in table


def test_cpu_per_message_and_its_targets_are_reported() -> None:
    common = load("bench_common")  # before profile_cpu, which imports it by that name
    cpu = load("profile_cpu")
    fast = common.Figures("1:1 chats, max rate", "mosquitto", server_cpu_s=1.8,
                          broker_cpu_s=0.7, ratio=0.62)
    cpu.cpu_per_message(fast, 20_000, 20_000)
    assert (round(fast.mqim_us_per_msg), round(fast.broker_us_per_msg)) == (90, 35)
    slow = common.Figures("1:1 chats, max rate", "embedded", server_cpu_s=4.0, ratio=0.5)
    cpu.cpu_per_message(slow, 20_000, 40_000)  # e.g. two members receive each message
    assert (round(slow.mqim_us_per_msg), round(slow.mqim_us_per_event)) == (200, 100)
    latency = common.Figures("1:1 chats, 1000/s", "mosquitto", p99_ms=30.0)
    verdicts = [row for f in (fast, slow, latency) for row in cpu.issue16_rows(f)]
    assert [ok for _, _, ok in verdicts] == [True, True, False, False, False]
    table = cpu.cpu_table([fast, slow, latency])
    assert "| mosquitto | 1:1 chats, max rate | 0 | 90 | 90 | 35 |" in table
    assert "(in mqim)" in table
    assert "1000/s" not in table  # no CPU measured: no row
