"""Handling one batch of uplink commands: parse, call the models, publish after commit.

Handlers only parse, call and publish. Sends of a batch go to the models in one call (one read,
one atomic write); events and acks are published only after that write commits.

Each command succeeds or fails on its own: a bad command gets its `error` (with its `req`), and
never costs the other users' commands in the same batch. If the batch's write fails, its sends
are stored one at a time; a command that still fails while the database answers is that
command's fault (an `internal_error` for it alone). Only a database that does not answer makes
`handle` raise, so the runner pauses and retries the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker.link.publisher import Event, EventPublisher
from contract.commands import (
    Command,
    CommandError,
    PresenceCommand,
    ReadCommand,
    SendCommand,
    TypingCommand,
    parse_command,
)
from contract.errors import InternalError, MqimError, RateLimitedError
from contract.topics import TopicScheme
from models.append import append_messages
from models.db import database_alive
from models.message import Appended, draft_of
from models.presence import presence_audience, set_presence
from models.ratelimit import RateLimits
from models.readstate import mark_read
from models.thread import check_member

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Uplink:
    """One received uplink: the sender comes from the topic (enforced by the broker)."""

    sender_id: str
    payload: bytes


class DatabaseUnavailableError(Exception):
    """The database did not answer: the batch must be retried, not answered."""


def error_event(error: MqimError, req: str | None) -> dict[str, Any]:
    event = {"type": "error", "req": req, "code": error.number, "error": error.code.value,
             "msg": error.msg}
    if isinstance(error, RateLimitedError):
        event["retry_after"] = error.retry_after
    return event


def ack_event(req: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "ack", "req": req, "data": dict(data)}


class BatchHandler:
    def __init__(
        self, publisher: EventPublisher, scheme: TopicScheme, limits: RateLimits, *,
        max_payload_bytes: int, max_body_chars: int,
    ) -> None:
        self._publisher = publisher
        self._limits = limits
        self._scheme = scheme
        self._max_payload_bytes = max_payload_bytes
        self._max_body_chars = max_body_chars

    async def handle(self, uplinks: Sequence[Uplink]) -> None:
        """Process a batch in arrival order of its effects; raises only on infrastructure faults."""
        replies: list[Event] = []
        sends: list[tuple[Uplink, SendCommand]] = []
        others: list[tuple[Uplink, TypingCommand | ReadCommand | PresenceCommand]] = []
        for uplink in uplinks:
            try:
                command: Command = parse_command(uplink.payload, self._max_payload_bytes)
            except CommandError as exc:
                logger.info("bad uplink from %s: %s", uplink.sender_id, exc.error.msg)
                replies.append(self._reply(uplink.sender_id, error_event(exc.error, exc.req)))
                continue
            if isinstance(command, SendCommand):
                try:
                    await self._limits.hit_send(uplink.sender_id)
                except RateLimitedError as exc:
                    replies.append(self._reply(uplink.sender_id, error_event(exc, command.req)))
                    continue
                sends.append((uplink, command))
            else:
                others.append((uplink, command))
        # Committed thread events, then the replies, go out as one sequence (fewer PUBACK
        # round trips than two); one connection keeps their order, so events precede acks.
        events = await self._isolated_sends(sends, replies) if sends else []
        ephemeral: list[Event] = []
        for uplink, command in others:
            for attempt in (1, 2):  # typing, presence and read are idempotent: safe to redo
                try:
                    ephemeral += await self._other(uplink.sender_id, command, events, replies)
                except MqimError as exc:
                    replies.append(self._reply(uplink.sender_id, error_event(exc, command.req)))
                except Exception as exc:  # noqa: BLE001  # _fault tells a bad command from a down database
                    if attempt == 2:
                        await self._fault(uplink.sender_id, command.req, exc, replies)
                    continue
                break
        await self._publisher.publish_all(ephemeral, qos=0)
        await self._publisher.publish_all(events + replies)

    async def _other(
        self, sender_id: str, command: TypingCommand | ReadCommand | PresenceCommand,
        events: list[Event], replies: list[Event],
    ) -> list[Event]:
        """Handle a command other than send; returns its ephemeral (QoS 0) events."""
        if isinstance(command, TypingCommand):
            typing = await self._typing(sender_id, command)
            if command.req:
                replies.append(self._reply(sender_id, ack_event(command.req, {})))
            return [typing]
        if isinstance(command, PresenceCommand):
            return await self._presence(sender_id, command, replies)
        await self._read(sender_id, command, events, replies)
        return []

    async def _isolated_sends(
        self, sends: list[tuple[Uplink, SendCommand]], replies: list[Event]
    ) -> list[Event]:
        """_handle_sends for the batch, or, if its write failed, for each send alone (so a send
        that failed by chance, e.g. on a dropped connection, gets a second try)."""
        try:
            return await self._handle_sends(sends, replies)
        except Exception as exc:  # noqa: BLE001  # see _fault
            logger.warning("a batch of %d send(s) failed (%r); storing them one at a time",
                           len(sends), exc)
        events: list[Event] = []
        for uplink, command in sends:
            try:
                events += await self._handle_sends([(uplink, command)], replies)
            except Exception as exc:  # noqa: BLE001  # see _fault
                await self._fault(uplink.sender_id, command.req, exc, replies)
        return events

    async def _fault(
        self, sender_id: str, req: str | None, exc: Exception, replies: list[Event]
    ) -> None:
        """An unexpected failure of one command: the database's (raise, so the batch is retried)
        or the command's own (answer it with an error; the others go on)."""
        if not await database_alive():
            raise DatabaseUnavailableError("the database does not answer") from exc
        logger.error("an uplink command from %s failed; answered with internal_error",
                     sender_id, exc_info=exc)
        error = InternalError("the server could not process this command")
        replies.append(self._reply(sender_id, error_event(error, req)))

    def _reply(self, user_id: str, event: Mapping[str, Any]) -> Event:
        return (self._scheme.user(user_id), event)

    async def _handle_sends(
        self, sends: list[tuple[Uplink, SendCommand]], replies: list[Event]
    ) -> list[Event]:
        """Store the sends; return their thread events and add acks/errors to `replies`."""
        drafts = [draft_of(c, uplink.sender_id, c.thread_id, c.client_msg_id)
                  for uplink, c in sends]
        results = await append_messages(drafts, max_body_chars=self._max_body_chars)
        # Committed: the entries in seq order (the caller publishes them before the acks).
        # Duplicates are published again: the first attempt may have died between commit and
        # publish (a bridge crash, a lost broker); receivers deduplicate by (thread_id, seq).
        entries = {r.entry.id: r.entry for r in results if isinstance(r, Appended)}
        events: list[Event] = [
            (self._scheme.thread(e.thread_id), e.to_event())
            for e in sorted(entries.values(), key=lambda e: (e.thread_id, e.seq))
        ]
        for (uplink, command), result in zip(sends, results, strict=True):
            if isinstance(result, MqimError):
                replies.append(self._reply(uplink.sender_id, error_event(result, command.req)))
            elif command.req is not None:
                entry = result.entry
                replies.append(self._reply(uplink.sender_id, ack_event(command.req, {
                    "message_id": entry.id,
                    "seq": entry.seq,
                    "thread_id": entry.thread_id,
                    "client_msg_id": entry.client_msg_id,
                    "duplicate": result.duplicate,
                })))
        return events

    async def _typing(self, sender_id: str, command: TypingCommand) -> Event:
        await check_member(command.thread_id, sender_id)
        return (self._scheme.thread(command.thread_id), {
            "type": "typ", "thread_id": command.thread_id, "from": sender_id,
            "is_typing": command.is_typing,
        })

    async def _presence(
        self, sender_id: str, command: PresenceCommand, replies: list[Event]
    ) -> list[Event]:
        state = await set_presence(sender_id, command.status)
        if command.req is not None:
            replies.append(self._reply(sender_id, ack_event(command.req, {
                "status": state.status.value})))
        if not state.changed:
            return []
        threads, friends = await presence_audience(sender_id)
        event = state.event()
        return [(self._scheme.thread(t), event) for t in threads] + [
            (self._scheme.user(f), event) for f in friends]

    async def _read(
        self, sender_id: str, command: ReadCommand, events: list[Event], replies: list[Event]
    ) -> None:
        mark = await mark_read(sender_id, command.thread_id, command.seq)
        if mark.advanced:
            events.append((self._scheme.thread(command.thread_id), mark.receipt_event()))
            replies.append(self._reply(sender_id, mark.sync_event()))
        if command.req is not None:
            replies.append(self._reply(sender_id, ack_event(command.req, {
                "thread_id": command.thread_id, "read_seq": mark.read_seq,
            })))
