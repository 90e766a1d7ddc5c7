"""docs/tutorial.md runs as written: its `sh` blocks, in order, in one bash process against a real
`mqim serve` (once per deployment mode), with the server's addresses in MQIM_HTTP and MQIM_MQTT,
the variables the tutorial's first block defines. The test then reads what the session printed:
every event must parse as the contract says, and the story must be the one the page tells."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from contract.events import parse as parse_event
from tests.docs.markdown import DOCS, code_blocks, read
from tests.stacks import running_stack

TUTORIAL = read(DOCS / "tutorial.md")
SCRIPT_SECONDS = 120
TOOLS = ("curl", "python3", "stdbuf", "mosquitto_pub", "mosquitto_sub")


def tutorial_script() -> str:
    """What a reader pastes: every `sh` block, in order; `set -e` so a failing step fails."""
    blocks = [block.text for block in code_blocks(TUTORIAL) if block.language == "sh"]
    assert len(blocks) >= 5, "the tutorial's sh blocks were not found"
    return "set -euo pipefail\n" + "\n".join(blocks)


def test_tutorial_hard_codes_no_ids_tokens_or_ports() -> None:
    script = tutorial_script()
    for pattern in (r"\bt[0-9a-f]{16}\b", r"\bm[0-9a-f]{20}\b", r"\bu[0-9a-f]{16}\b", r"eyJ"):
        assert re.search(pattern, script) is None, f"the tutorial hard-codes {pattern}"
    addresses = [line for line in script.splitlines() if "127.0.0.1" in line]
    assert addresses == ["MQIM_HTTP=${MQIM_HTTP:-127.0.0.1:8000}",
                         "MQIM_MQTT=${MQIM_MQTT:-127.0.0.1:1883}"]


async def run_tutorial(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", tutorial_script(), cwd=cwd, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), SCRIPT_SECONDS)
    except TimeoutError:
        # The session's background subscribers share bash's process group.
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def printed_events(out: str) -> list[tuple[str, dict[str, Any]]]:
    """The `topic payload` lines mosquitto_sub -v printed, each checked against the contract."""
    events = []
    for line in out.splitlines():
        if line.startswith("im/"):
            topic, payload = line.split(" ", 1)
            parse_event(payload)
            events.append((topic, json.loads(payload)))
    return events


@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_tutorial_runs_as_written(mode: str, tmp_path: Path) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"docs/tutorial.md needs {', '.join(missing)} "
                    "(Debian: apt-get install mosquitto-clients curl)")
    workdir = tmp_path / "stack"
    workdir.mkdir()
    async with running_stack(mode, workdir) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQIM_")}
        env |= {"MQIM_HTTP": str(stack.settings.http), "MQIM_MQTT": str(stack.settings.mqtt),
                "TMPDIR": str(tmp_path)}
        code, out, err = await run_tutorial(env, tmp_path)
    assert code == 0, f"the tutorial failed ({code}):\n{out}\n{err}"

    events = printed_events(out)
    added = [e for t, e in events if t == "im/u/bob" and e["type"] == "thread_added"]
    assert len(added) == 1
    thread_id = added[0]["thread_id"]
    on_thread = [e for t, e in events if t == f"im/t/{thread_id}"]
    sent = [e for e in on_thread if e["type"] == "message" and e["body"] == "hello bob"]
    assert len(sent) == 2, "the retry publishes the stored message again"
    assert sent[0] == sent[1]
    acks = {e["req"]: e["data"] for t, e in events if t == "im/u/alice" and e["type"] == "ack"}
    assert acks["c1"]["duplicate"] is False
    assert acks["c1-retry"]["duplicate"] is True
    assert acks["c1"]["seq"] == acks["c1-retry"]["seq"] == sent[0]["seq"]
    reply = next(e for e in on_thread if e["type"] == "message_reply")
    assert reply["body"] == "hi alice"
    assert reply["reply_to"] == sent[0]["message_id"]
    receipt = next(e for e in on_thread if e["type"] == "read_receipt")
    assert receipt["reader"] == "alice"
    assert receipt["seq"] == reply["seq"] == acks["c4"]["read_seq"]
    assert any(t == "im/u/alice" and e["type"] == "read" for t, e in events)

    assert f'"thread_id":"{thread_id}","max_seq":4,"read_seq":3,"unread":1' in out
    assert '"body":"over HTTP"' in out
    timeline = ["1 event alice created the group", "2 message hello bob",
                "3 message_reply hi alice", "4 message over HTTP"]
    lines = out.splitlines()
    start = lines.index(timeline[0])
    assert lines[start:start + 4] == timeline
    assert lines[-1].startswith("session done in ")
