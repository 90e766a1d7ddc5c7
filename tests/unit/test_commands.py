"""Uplink payload parsing: every malformed payload becomes a CommandError with a code."""

from __future__ import annotations

import json

import pytest

from bridge.commands import CommandError, ReadCommand, SendCommand, TypingCommand, parse_command


def test_valid_commands_parse() -> None:
    send = parse_command(json.dumps({"op": "send", "req": "c1", "thread_id": "t", "client_msg_id":
                                     "m", "body": "hi", "unknown_field": 1}).encode(), 1024)
    assert isinstance(send, SendCommand)
    assert (send.req, send.type, send.mentions) == ("c1", "text", [])
    typing = parse_command(b'{"op": "typing", "thread_id": "t", "is_typing": false}', 1024)
    assert isinstance(typing, TypingCommand)
    assert typing.is_typing is False
    assert isinstance(parse_command(b'{"op": "read", "thread_id": "t", "seq": 3}', 1024),
                      ReadCommand)


@pytest.mark.parametrize(
    ("payload", "req", "fragment"),
    [
        (b"x" * 2000, None, "over 1024 bytes"),
        (b"\x80abc", None, "not UTF-8 JSON"),
        (b"null", None, "JSON object"),
        (b'{"op": "dance", "req": "r"}', "r", "unknown op"),
        (b'{"req": "r"}', "r", "unknown op"),
        (b'{"op": "unsend", "req": "r"}', "r", "not supported by this server yet"),
        (b'{"op": "presence", "req": "r", "status": "away"}', "r", "status"),
        (b'{"op": "send", "req": "r", "thread_id": "t"}', "r", "client_msg_id"),
        (b'{"op": "read", "req": "r", "thread_id": "t", "seq": "3"}', "r", "seq"),
        (b'{"op": "typing", "req": 7, "thread_id": "t"}', None, "req"),
    ],
)
def test_malformed_payloads_are_errors(payload: bytes, req: str | None, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(payload, 1024)
    assert caught.value.req == req
    assert caught.value.error.number == 1001
    assert fragment in caught.value.error.msg
