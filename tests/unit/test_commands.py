"""Uplink payload parsing: every malformed payload becomes a CommandError with a code."""

from __future__ import annotations

import json

import pytest

from contract.commands import CommandError, ReadCommand, SendCommand, TypingCommand, parse_command


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
        (b"\x80abc", None, "not valid UTF-8 JSON"),
        (b"null", None, "JSON object"),
        (b'{"op": "dance", "req": "r"}', "r", "unknown op"),
        (b'{"req": "r"}', "r", "unknown op"),
        (b'{"op": "unsend", "req": "r"}', "r", "message_id"),
        (b'{"op": "presence", "req": "r", "status": "away"}', "r", "status"),
        (b'{"op": "send", "req": "r", "thread_id": "t"}', "r", "client_msg_id"),
        (b'{"op": "read", "req": "r", "thread_id": "t", "seq": "3"}', "r", "seq"),
        (b'{"op": "typing", "req": 7, "thread_id": "t"}', None, "req"),
        # Hostile shapes that used to raise inside the bridge's batch.
        (b'{"op": "typing", "req": "r", "thread_id": "%s"}' % (b"t" * 300), "r", "thread_id"),
        (b'{"op": "send", "req": "r", "thread_id": "t", "client_msg_id": "\\ud800", '
         b'"body": "x"}', "r", "surrogate"),
        (b'{"op": "send", "req": "r", "thread_id": "t", "client_msg_id": "a\\u0000"}', "r",
         "client_msg_id"),
        (b"[" * 5000, None, "depth"),
        (b'{"req": "r", "op": "send", "attachments": ' + b"[" * 1000 + b"]" * 1000 + b"}", "r",
         "nested deeper"),
        (b'{"op": "send", "req": "r", "thread_id": "t", "client_msg_id": "c", "body": "x", '
         b'"attachments": ' + b"[" * 40 + b"]" * 40 + b"}", "r", "nested deeper"),
        (b'{"req": "r", "op": "read", "thread_id": "t", "seq": ' + b"9" * 5000 + b"}", "r",
         "infinity"),
        (b'{"op": "read", "req": "r", "thread_id": "t", "seq": 9223372036854775808}', "r", "seq"),
        (b'{"op": "read", "req": "r", "thread_id": "t\\n", "seq": 1}', "r", "thread_id"),
        (b'{"op": "send", "req": "r", "thread_id": "t", "client_msg_id": "c", "body": "x", '
         b'"mentions": ["bob\\u0000"]}', "r", "mentions"),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, bytes) else None,
)
def test_malformed_payloads_are_errors(payload: bytes, req: str | None, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(payload, 1 << 20)
    assert caught.value.req == req
    assert caught.value.error.number == 1001
    assert fragment in caught.value.error.msg


def test_oversized_payload_names_its_req() -> None:
    """A client must learn which send was refused, or it retries it forever."""
    payload = b'{"op": "send", "req": "big-1", "body": "' + b"x" * 2000 + b'"}'
    with pytest.raises(CommandError) as caught:
        parse_command(payload, 1024)
    assert (caught.value.req, caught.value.error.number) == ("big-1", 1012)
    assert "over 1024 bytes" in caught.value.error.msg
    with pytest.raises(CommandError) as unnamed:
        parse_command(b"x" * 2000, 1024)
    assert (unnamed.value.req, unnamed.value.error.number) == (None, 1012)


@pytest.mark.parametrize(
    ("payload", "req"),
    [
        (b'{"req":"a\\"b", "op": ', 'a"b'),
        (b'{"op": "send", "req" : "r-1",', "r-1"),
        (b'{"req": 5, "op": "send",', None),
        (b'{"req": "' + b"r" * 65 + b'", ', None),  # longer than a req may be
        (b" " * 70_000 + b'{"req": "late"', None),  # beyond the bounded scan
        # Only the first "req" key is read (one bounded match, so a payload of thousands of
        # near-misses costs no more than any other).
        (b'{"req": 5, "op": "send", "x": {"req": "nested"}', None),
        (b'{"req": "' + b"a" * 63 + b'\\' * 500, None),
    ],
)
def test_req_is_found_in_unparseable_payloads(payload: bytes, req: str | None) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(payload, 1 << 20)
    assert caught.value.req == req
