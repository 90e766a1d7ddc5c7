"""The uplink ops other than `send`, as a table: op -> the action it calls and the ack it gives.

Each entry only unpacks the command and calls the use case in `actions/`, the same function the
matching HTTP route calls; what it returns is the `data` of the command's `ack`. `send` is not
here: the bridge stores a batch's sends together (bridge/batch.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actions import presence, reading
from actions.context import Context
from contract.commands import (
    Command,
    DeliveredCommand,
    PresenceCommand,
    ReadCommand,
    TypingCommand,
)
from contract.http import PresenceResult, ReadResult
from contract.receipts import DeliveredResult

AckData = ReadResult | DeliveredResult | PresenceResult | dict[str, Any]
Op = Callable[[Context, str, Any], Awaitable[AckData]]


async def _typing(ctx: Context, sender_id: str, command: TypingCommand) -> AckData:
    await presence.typing(ctx, sender_id, command.thread_id, command.is_typing)
    return {}


async def _read(ctx: Context, sender_id: str, command: ReadCommand) -> AckData:
    return await reading.mark_read(ctx, sender_id, command.thread_id, command.seq)


async def _delivered(ctx: Context, sender_id: str, command: DeliveredCommand) -> AckData:
    return await reading.mark_delivered(ctx, sender_id, command.thread_id, command.seq)


async def _presence(ctx: Context, sender_id: str, command: PresenceCommand) -> AckData:
    return await presence.set_status(ctx, sender_id, command.status)


OPS: dict[type[Command], Op] = {
    TypingCommand: _typing,
    ReadCommand: _read,
    DeliveredCommand: _delivered,
    PresenceCommand: _presence,
}
