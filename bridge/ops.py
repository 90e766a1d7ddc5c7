"""The uplink ops other than `send`, as a table: op -> the action it calls and the ack it gives.

Each entry only unpacks the command and calls the use case in `actions/`, the same function the
matching HTTP route calls; what it returns is the `data` of the command's `ack`. `send` is not
here: the bridge stores a batch's sends together (bridge/batch.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actions import msgactions, polls, presence, reading
from actions.context import Context
from contract.commands import (
    Command,
    DeliveredCommand,
    EditCommand,
    PresenceCommand,
    ReactCommand,
    ReadCommand,
    TypingCommand,
    UnreactCommand,
    UnsendCommand,
    VoteCommand,
)
from contract.http import PresenceResult, ReadResult
from contract.msgactions import ActionResult
from contract.receipts import DeliveredResult

AckData = ReadResult | DeliveredResult | PresenceResult | ActionResult | dict[str, Any]
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


async def _react(ctx: Context, sender_id: str, command: ReactCommand) -> AckData:
    return await msgactions.react(ctx, sender_id, command.thread_id, command.message_id,
                                  command.emoji)


async def _unreact(ctx: Context, sender_id: str, command: UnreactCommand) -> AckData:
    return await msgactions.unreact(ctx, sender_id, command.thread_id, command.message_id,
                                    command.emoji)


async def _unsend(ctx: Context, sender_id: str, command: UnsendCommand) -> AckData:
    return await msgactions.unsend(ctx, sender_id, command.thread_id, command.message_id)


async def _edit(ctx: Context, sender_id: str, command: EditCommand) -> AckData:
    return await msgactions.edit(ctx, sender_id, command.thread_id, command.message_id,
                                 body=command.body, content=command.content)


async def _vote(ctx: Context, sender_id: str, command: VoteCommand) -> AckData:
    return await polls.vote(ctx, sender_id, command.thread_id, command.poll_id,
                            list(command.option_ids))


OPS: dict[type[Command], Op] = {
    TypingCommand: _typing,
    ReadCommand: _read,
    DeliveredCommand: _delivered,
    PresenceCommand: _presence,
    ReactCommand: _react,
    UnreactCommand: _unreact,
    UnsendCommand: _unsend,
    EditCommand: _edit,
    VoteCommand: _vote,
}
