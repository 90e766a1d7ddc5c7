"""The message path's shortcuts (issue 16) give what the slow ways gave: a message's event built
without validation encodes to the same bytes as the validated one, a client_msg_id is refused
for exactly the control characters the per-character test refused, the embedded broker's
keep-alive still ends a silent connection (and only a silent one), the published-events
counter still counts each event, and a packet's remaining length encodes as MQTT says."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actions.context import _count_published
from actions.timeline import entry_event
from broker.embedded.keepalive import KeepAlive
from broker.link.wire_link import remaining_length
from contract.errors import ContentInvalidError
from contract.events import ForwardedFrom, MessageEvent, encode, parse
from models.append import StoredMessage
from models.message import Draft, check_draft

NOW = datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)
FORWARD = {"thread_id": "t_other", "message_id": "m_first", "sender_id": None}

# (what differs from a plain text message), covering every field entry_event sets.
VARIANTS: list[dict[str, Any]] = [
    {},
    {"reply_to": "m_parent", "mentions": ["u_bob", "all"]},
    {"type": "image", "body": None, "content": {"upload_id": "f_1", "width": 3, "height": 4},
     "attachments": [{"upload_id": "f_2", "name": "ä ✓.png", "size": 12}]},
    {"forwarded_from": FORWARD, "client_msg_id": None, "sender_id": None},
    {"edited_at": NOW, "body": "zwei\nlines \"quoted\" \u2028", "deleted": False},
    {"deleted": True, "body": None, "mentions": [], "attachments": []},
]


def stored(**changes: Any) -> StoredMessage:
    fields: dict[str, Any] = {
        "id": "m_0123456789", "thread_id": "t_abc", "seq": 42, "sender_id": "u_alice",
        "client_msg_id": "c-1", "type": "text", "body": "hello", "reply_to": None,
        "mentions": [], "attachments": [], "content": None, "forwarded_from": None,
        "created_at": NOW,
    }
    return StoredMessage(**(fields | changes))


def validated(entry: StoredMessage) -> MessageEvent:
    """The event as entry_event built it before: through pydantic's validation."""
    return MessageEvent(
        type="message_reply" if entry.reply_to else "message", thread_id=entry.thread_id,
        seq=entry.seq, message_id=entry.id, created_at=int(entry.created_at.timestamp() * 1000),
        sender_id=entry.sender_id, client_msg_id=entry.client_msg_id, msg_type=entry.type,
        body=entry.body, reply_to=entry.reply_to, mentions=entry.mentions or [],
        attachments=entry.attachments or [], content=entry.content,
        forwarded_from=(ForwardedFrom.model_validate(entry.forwarded_from)
                        if entry.forwarded_from else None),
        edited_at=int(entry.edited_at.timestamp() * 1000) if entry.edited_at else None,
        deleted=entry.deleted,
    )


@pytest.mark.parametrize("changes", VARIANTS)
def test_unvalidated_message_event_is_the_validated_one(changes: dict[str, Any]) -> None:
    entry = stored(**changes)
    fast, slow = entry_event(entry), validated(entry)
    assert isinstance(fast, MessageEvent)
    assert encode(fast) == encode(slow)
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert parse(encode(fast)) == slow  # and it passes the contract's validation
    # History's model_copy(update=...) works on it, and copies rather than shares.
    copied = fast.model_copy(update={"reply_count": 2, "reactions": {"👍": ["u_bob"]}})
    assert encode(copied) == encode(slow.model_copy(
        update={"reply_count": 2, "reactions": {"👍": ["u_bob"]}}))
    assert fast.reactions == {}
    assert "reply_count" not in fast.model_fields_set


def test_the_unvalidated_build_matches_pydantic_internals() -> None:
    """What `_trusted` assumes of MessageEvent: nothing runs after construction and no private
    attributes; a pydantic upgrade that changes this fails here, not on the wire."""
    assert MessageEvent.__pydantic_post_init__ is None
    assert not MessageEvent.__private_attributes__
    assert MessageEvent.model_config.get("extra") == "forbid"


async def silent_reader(idle: float, pause: float, packets: int, gap_reading: float,
                        ) -> tuple[str, float]:
    """A reader task that waits for `packets` packets `gap_reading` s apart, idling `pause` s
    (not reading) after each: how it ended and after how long."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def reader() -> str:
        this = asyncio.current_task()
        assert this is not None
        keep_alive = KeepAlive(loop, this, idle)
        try:
            for _ in range(packets):
                keep_alive.reading()
                await asyncio.sleep(gap_reading)  # the wait for the next packet
                keep_alive.read()
                await asyncio.sleep(pause)  # handling it: not silence
            keep_alive.reading()
            await asyncio.sleep(10 * idle + 1)  # then nothing more comes
            return "read on"
        except asyncio.CancelledError:
            return "expired" if keep_alive.expired() else "cancelled"
        finally:
            keep_alive.close()

    return await reader(), loop.time() - started


def test_client_msg_id_control_characters_are_refused_as_before() -> None:
    """C0 controls, DEL and C1 controls are refused anywhere in a client_msg_id; everything
    else up to U+01FF (and a few wider ones) is not."""
    for code in [*range(0x200), 0x2028, 0xFEFF, 0x1F600]:
        draft = Draft(sender_id="u_a", thread_id="t_a", client_msg_id=f"c{chr(code)}1",
                      body="hi")
        control = code < 0x20 or 0x7F <= code <= 0x9F
        if control:
            with pytest.raises(ContentInvalidError, match="control characters"):
                check_draft(draft, 100)
        else:
            check_draft(draft, 100)


async def test_keep_alive_ends_only_a_silent_read() -> None:
    # Packets every 0.05 s with idle 0.5 s: never silent that long while reading, although
    # the whole exchange lasts far longer than idle and handling pauses exceed it. (Wide
    # margins: on a loaded machine a sleep overruns; only an early end is the bug.)
    how, took = await silent_reader(idle=0.5, pause=0.6, packets=3, gap_reading=0.05)
    assert how == "expired"
    assert 3 * 0.65 + 0.5 - 0.01 <= took <= 3 * 0.65 + 0.5 + 1.0, took
    # A read silent from the start ends at idle, not before.
    how, took = await silent_reader(idle=0.15, pause=0, packets=0, gap_reading=0)
    assert how == "expired"
    assert 0.15 - 0.005 <= took <= 0.15 + 1.0, took


async def test_keep_alive_tells_other_cancellations_apart() -> None:
    loop = asyncio.get_running_loop()
    outcome: list[str] = []

    async def reader() -> None:
        this = asyncio.current_task()
        assert this is not None
        keep_alive = KeepAlive(loop, this, 5.0)
        keep_alive.reading()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append("expired" if keep_alive.expired() else "cancelled")
            raise
        finally:
            keep_alive.close()

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["cancelled"]


def test_published_events_are_counted_per_type() -> None:
    def count(kind: str) -> float:
        return REGISTRY.get_sample_value("mqim_events_published_total", {"type": kind}) or 0.0

    before = count("message"), count("message_reply"), count("other")
    events = [("t", stored()), ("t", stored(reply_to="m_x")), ("t", stored())]
    _count_published([(topic, entry_event(entry)) for topic, entry in events])
    _count_published([("t", entry_event(stored()))])
    _count_published([("u", object())])  # type: ignore[list-item]  # anything without a type
    assert (count("message"), count("message_reply"), count("other")) == (
        before[0] + 3, before[1] + 1, before[2] + 1)


@pytest.mark.parametrize(("n", "encoded"), [
    # MQTT 3.1.1, 2.2.3: the edges of each length in bytes.
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f"),
    # Inside the one- and two-byte shortcut.
    (321, b"\xc1\x02"), (8_000, b"\xc0\x3e"),
])
def test_remaining_length_encodes_as_the_spec_table(n: int, encoded: bytes) -> None:
    assert remaining_length(n) == encoded
