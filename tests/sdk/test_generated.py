"""The SDK's event models are generated from the server's contract and cannot drift: the
committed sdk/mqim_client/events.py must equal a fresh rendering, and the SDK must read every
event example of docs/mqtt.md as the server's own models do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import generate_events
from contract.events import DOWNLINK_EVENTS as SERVER_EVENTS
from mqim_client.events import DOWNLINK_EVENTS, MessageEvent, TypingEvent
from tests.docs.markdown import DOCS, REPO_ROOT, code_blocks, read


def test_committed_events_equal_a_fresh_generation() -> None:
    committed = generate_events.TARGET.read_text(encoding="utf-8")
    assert committed == generate_events.render(), (
        "sdk/mqim_client/events.py is stale: run .venv/bin/python sdk/generate_events.py")


def test_check_mode_passes_now_and_fails_on_a_stale_file(tmp_path: Path) -> None:
    result = subprocess.run(  # our own script, fixed arguments
        [sys.executable, "sdk/generate_events.py", "--check"], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    stale = tmp_path / "events.py"
    stale.write_text(generate_events.render().replace("frozen=True", "frozen=False"))
    assert generate_events.main(["--check"], target=stale) == 1
    assert generate_events.main([], target=stale) == 0
    assert stale.read_text() == generate_events.render()


def test_every_contract_event_type_has_a_model() -> None:
    server = SERVER_EVENTS.json_schema()["discriminator"]["mapping"]
    sdk = DOWNLINK_EVENTS.json_schema()["discriminator"]["mapping"]
    assert set(sdk) == set(server)
    assert len(server) >= 19


def _doc_events() -> list[str]:
    lines = []
    for block in code_blocks(read(DOCS / "mqtt.md")):
        if block.language == "json":
            lines += [line for line in block.text.splitlines()
                      if line.startswith("{") and '"type"' in line and '"op"' not in line]
    return lines


@pytest.mark.parametrize("line", _doc_events())
def test_sdk_reads_each_documented_event_like_the_server(line: str) -> None:
    ours, theirs = DOWNLINK_EVENTS.validate_json(line), SERVER_EVENTS.validate_json(line)
    assert type(ours).__name__ == type(theirs).__name__
    dumped, wire = ours.model_dump(mode="json", by_alias=True), json.loads(line)
    assert {key: dumped[key] for key in wire} == wire
    fields = {info.alias or name: info for name, info in type(ours).model_fields.items()}
    for key in set(dumped) - set(wire):  # absent optional fields take their defaults
        assert dumped[key] == fields[key].default, key


def test_unknown_fields_are_ignored_and_aliases_work() -> None:
    event = DOWNLINK_EVENTS.validate_json(
        '{"type":"typ","thread_id":"t1","from":"bob","is_typing":true,"new_field":1}')
    assert isinstance(event, TypingEvent)
    assert event.from_ == "bob"


def test_a_malformed_event_is_refused() -> None:
    with pytest.raises(ValueError, match="seq"):
        MessageEvent.model_validate_json('{"type":"message","thread_id":"t","seq":"x"}')


def test_unsupported_schema_shapes_stop_the_generator() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        generate_events.annotation({"type": "string", "format": "date-time", "oneOf": []})
    with pytest.raises(ValueError, match="recursive"):
        generate_events.dependency_order({"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}})
