"""Handling one batch of uplinks: parse each, call its use case, answer it, publish at the end.

    BatchHandler(ctx).handle(uplinks)

Sends are stored together (one read, one atomic write: actions.messaging.send_messages); the
other ops go through the table in bridge/ops.py. Use cases publish into a per-batch `Outbox`, and
the answers (`ack`, `error`) are queued after the events they follow; the whole batch goes out as
one sequence on one connection once every command is handled, before the runner acks the
uplinks to the broker.

Each command succeeds or fails on its own: a bad command gets its `error` (with its `req`), and
never costs the other users' commands in the same batch. If the batch's write fails, its sends
are stored one at a time; a command that still fails while the database answers is that
command's fault (an `internal_error` for it alone). Only the database's own faults (a lost or
broken connection, or no answer to a ping) make `handle` raise, so the runner pauses and
retries the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from actions.context import Context, Outbox
from actions.messaging import SendOutcome, send_messages
from actions.metrics import count_error
from bridge.ops import OPS, AckData
from contract.commands import Command, CommandError, SendCommand, parse_command
from contract.errors import InternalError, MqimError, error_event
from contract.events import AckEvent
from contract.http import SendResult
from models.db import database_alive, is_transient_fault, refused_value
from models.message import Draft, draft_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Uplink:
    """One received uplink: the sender comes from the topic (enforced by the broker)."""

    sender_id: str
    payload: bytes


class DatabaseUnavailableError(Exception):
    """The database did not answer: the batch must be retried, not answered."""


class BatchHandler:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def handle(self, uplinks: Sequence[Uplink]) -> None:
        """Handle a batch and publish its events and answers; raises only on infrastructure
        faults (DatabaseUnavailableError, or the broker's BrokerError from the publisher)."""
        outbox = Outbox()
        ctx = self._ctx.publishing_to(outbox)
        sends: list[tuple[Uplink, SendCommand]] = []
        others: list[tuple[Uplink, Command]] = []
        for uplink in uplinks:
            try:
                command = parse_command(uplink.payload, ctx.settings.max_payload_bytes)
            except CommandError as exc:
                logger.info("bad uplink from %s: %s", uplink.sender_id, exc.error.msg)
                self._answer(outbox, uplink.sender_id, exc.req, exc.error)
                continue
            if isinstance(command, SendCommand):
                sends.append((uplink, command))
            else:
                others.append((uplink, command))
        if drafted := self._drafted(outbox, sends):
            await self._sends(ctx, outbox, drafted)
        for uplink, command in others:
            await self._other(ctx, outbox, uplink.sender_id, command)
        await outbox.flush(self._ctx.publisher)

    def _answer(self, outbox: Outbox, user_id: str, req: str | None,
                result: SendResult | AckData | MqimError) -> None:
        if isinstance(result, MqimError):
            count_error("mqtt", result.number, result.code.value)
            outbox.add((self._ctx.topics.user(user_id), error_event(result, req)))
        elif req is not None:
            outbox.add((self._ctx.topics.user(user_id),
                        AckEvent(type="ack", req=req, data=result)))

    def _drafted(self, outbox: Outbox, sends: list[tuple[Uplink, SendCommand]],
                 ) -> list[tuple[Uplink, SendCommand, Draft]]:
        """Each send with its draft; a send whose content is invalid for its type (4003) is
        answered here and goes no further."""
        drafted = []
        for uplink, command in sends:
            try:
                draft = draft_of(command, uplink.sender_id, command.thread_id,
                                 command.client_msg_id)
            except MqimError as exc:
                self._answer(outbox, uplink.sender_id, command.req, exc)
            else:
                drafted.append((uplink, command, draft))
        return drafted

    async def _sends(
        self, ctx: Context, outbox: Outbox, sends: list[tuple[Uplink, SendCommand, Draft]]
    ) -> None:
        """All the sends in one write, or, if that failed, each alone (so a send that failed
        by chance, e.g. on a dropped connection, gets a second try)."""
        try:
            outcomes = await self._store(ctx, sends)
        except Exception as exc:  # noqa: BLE001  # see _fault
            logger.warning("a batch of %d send(s) failed (%r); storing them one at a time",
                           len(sends), exc)
        else:
            for (uplink, command, _), outcome in zip(sends, outcomes, strict=True):
                self._answer(outbox, uplink.sender_id, command.req, outcome)
            return
        for uplink, command, draft in sends:
            try:
                [outcome] = await self._store(ctx, [(uplink, command, draft)])
            except Exception as exc:  # noqa: BLE001  # see _fault
                await self._fault(outbox, uplink.sender_id, command.req, exc)
            else:
                self._answer(outbox, uplink.sender_id, command.req, outcome)

    @staticmethod
    async def _store(ctx: Context, sends: list[tuple[Uplink, SendCommand, Draft]],
                     ) -> list[SendOutcome]:
        return await send_messages(ctx, [draft for _, _, draft in sends])

    async def _other(self, ctx: Context, outbox: Outbox, sender_id: str, command: Command,
                     ) -> None:
        op = OPS[type(command)]
        for attempt in (1, 2):  # typing, presence and read are idempotent: safe to redo
            try:
                result = await op(ctx, sender_id, command)
            except MqimError as exc:
                self._answer(outbox, sender_id, command.req, exc)
            except Exception as exc:  # noqa: BLE001  # _fault tells a bad command from a down database
                if attempt == 2:
                    await self._fault(outbox, sender_id, command.req, exc)
                continue
            else:
                self._answer(outbox, sender_id, command.req, result)
            return

    async def _fault(self, outbox: Outbox, sender_id: str, req: str | None, exc: Exception,
                     ) -> None:
        """An unexpected failure of one command: the database's (down, or a transaction it
        rolled back to break a deadlock: raise, so the batch is retried after a pause, on fresh
        connections) or the command's own (answer it with an error; the others go on)."""
        if (refusal := refused_value(exc)) is not None:
            self._answer(outbox, sender_id, req, refusal)
            return
        if is_transient_fault(exc) or not await database_alive():
            raise DatabaseUnavailableError("the database does not answer") from exc
        logger.error("an uplink command from %s failed; answered with internal_error",
                     sender_id, exc_info=exc)
        error = InternalError("the server could not process this command")
        self._answer(outbox, sender_id, req, error)
