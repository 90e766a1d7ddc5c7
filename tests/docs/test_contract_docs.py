"""docs/mqtt.md and docs/http-api.md against contract/: the command and event tables list exactly
the contract's ops and event types, each with every field it puts on the wire; every JSON example
of a command or an event parses as the contract says; the error-code table lists every code."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from contract import errors
from contract.commands import SUPPORTED_OPS, Command, CommandError, parse_command
from contract.events import DownlinkEvent
from contract.events import parse as parse_event
from tests.docs.markdown import DOCS, backticked, code_blocks, read, section, table_rows

MQTT_DOC = read(DOCS / "mqtt.md")
# Codes the HTTP adapter answers with that are no MqimError: a wrong method, a database that
# does not answer /health.
HTTP_ONLY_CODES = {(1001, "method_not_allowed"), (5003, "unavailable")}


def _by_literal(models: tuple[type[BaseModel], ...], field: str) -> dict[str, type[BaseModel]]:
    """Each value of the Literal-typed `field` (`type`, `op`) and the model it selects."""
    found: dict[str, type[BaseModel]] = {}
    for model in models:
        for value in typing.get_args(model.model_fields[field].annotation):
            found[value] = model
    return found


def _union_members(union: Any) -> tuple[type[BaseModel], ...]:
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    return typing.get_args(union)


EVENTS = _by_literal(_union_members(DownlinkEvent), "type")
COMMANDS = _by_literal(_union_members(Command), "op")


def wire_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_event_table_lists_exactly_the_contracts_events() -> None:
    documented = table_rows(section(MQTT_DOC, "Every event"))
    assert sorted(set(EVENTS) - set(documented)) == [], "events missing from docs/mqtt.md"
    assert sorted(set(documented) - set(EVENTS)) == [], "docs/mqtt.md lists unknown events"


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_event_table_names_every_field(event_type: str) -> None:
    row = table_rows(section(MQTT_DOC, "Every event"))[event_type]
    missing = wire_names(EVENTS[event_type]) - backticked(row)
    assert not missing, f"docs/mqtt.md: the {event_type} row lacks {sorted(missing)}"


def test_command_table_lists_exactly_the_contracts_ops() -> None:
    documented = table_rows(section(MQTT_DOC, "Every command"))
    assert set(COMMANDS) == set(SUPPORTED_OPS)
    assert sorted(set(COMMANDS) - set(documented)) == [], "ops missing from docs/mqtt.md"
    assert sorted(set(documented) - set(COMMANDS)) == [], "docs/mqtt.md lists unknown ops"


@pytest.mark.parametrize("op", sorted(COMMANDS))
def test_command_table_names_every_field(op: str) -> None:
    row = table_rows(section(MQTT_DOC, "Every command"))[op]
    missing = wire_names(COMMANDS[op]) - backticked(row)
    assert not missing, f"docs/mqtt.md: the {op} row lacks {sorted(missing)}"


def _examples(text: str, *, strict: bool) -> list[dict[str, Any]]:
    """The JSON objects in a page's json and text blocks: one per line (a `topic {json}` line as
    mosquitto_sub -v prints it counts too). With `strict`, every line of a json block must be one
    object; otherwise lines that are not (pretty-printed answers) are skipped."""
    found: list[dict[str, Any]] = []
    for block in code_blocks(text):
        if block.language not in ("json", "text"):
            continue
        for line in block.text.splitlines():
            candidate = line[line.index("{"):] if "{" in line else line
            try:
                value = json.loads(candidate)
            except ValueError:
                assert not (strict and block.language == "json"), f"not one JSON object: {line}"
                continue
            if not isinstance(value, dict):
                continue
            found.append(value)
            # An HTTP answer whose data is a list of timeline entries (history) shows events too.
            data = value.get("data")
            if isinstance(data, list):
                found.extend(item for item in data if isinstance(item, dict) and "type" in item)
    return found


@pytest.mark.parametrize("page", ["mqtt.md", "tutorial.md"])
def test_every_example_parses_as_the_contract(page: str) -> None:
    examples = _examples(read(DOCS / page), strict=page == "mqtt.md")
    commands = [e for e in examples if "op" in e]
    events = [e for e in examples if "type" in e and "op" not in e]
    assert events, f"no event examples found in docs/{page}"
    for command in commands:
        parsed = parse_command(json.dumps(command).encode(), 64 * 1024)
        assert parsed.op == command["op"]
    for event in events:
        parse_event(json.dumps(event))  # raises on an unknown type or a wrong field


def test_documented_events_cover_every_type() -> None:
    shown = {e["type"] for e in _examples(MQTT_DOC, strict=True) if "op" not in e}
    assert sorted(set(EVENTS) - shown) == [], "event types without an example in docs/mqtt.md"


def test_unknown_op_is_refused_as_documented() -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(b'{"op": "zap"}', 1024)
    expected = f"expected one of {', '.join(SUPPORTED_OPS)}"
    assert refused.value.error.msg.endswith(expected)
    assert expected in MQTT_DOC


def _contract_codes() -> set[tuple[int, str]]:
    codes: set[tuple[int, str]] = set()
    pending: list[type[errors.MqimError]] = [errors.MqimError]
    while pending:
        cls = pending.pop()
        codes.add((cls.number, cls.code.value))
        pending.extend(cls.__subclasses__())
    return codes


def test_error_table_lists_every_code() -> None:
    body = section(read(DOCS / "http-api.md"), "Error codes")
    documented: set[tuple[int, str]] = set()
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0].isdigit():
            documented.add((int(cells[0]), cells[1].strip("`")))
    contract = _contract_codes()
    assert sorted(contract - documented) == [], "error codes missing from docs/http-api.md"
    assert sorted(documented - contract - HTTP_ONLY_CODES) == [], "codes the contract lacks"
