"""Sends waiting for their confirmation, keyed by `client_msg_id` (also each attempt's `req`,
so the ack of any attempt, even a late first one, confirms the send); and the other commands
(`react`, `unsend`, `edit`, `vote`, ...) waiting for their ack, keyed by their `req`.

The `ack` confirms a send (its `duplicate` says whether an earlier attempt had stored it). The
echo of our own message on the thread topic arrives just before the ack (docs/mqtt.md, "How the
bridge handles a batch"); it is kept, and confirms the send if the ack never comes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mqim_client.errors import CommandError
from mqim_client.events import AckEvent, ActionResult, ErrorEvent, MessageEvent, SendResult


@dataclass
class Pending:
    thread_id: str
    client_msg_id: str
    future: asyncio.Future[SendResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    echo: SendResult | None = None

    def retry(self) -> None:
        """Forget a refusal (rate limited) before sending again."""
        if self.future.done():
            self.future = asyncio.get_running_loop().create_future()


class Outbox:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self._pending: dict[str, Pending] = {}
        self._calls: dict[str, asyncio.Future[ActionResult]] = {}

    def expect(self, req: str) -> asyncio.Future[ActionResult]:
        """A command's answer: its ack's ActionResult, or CommandError."""
        future = self._calls[req] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, req: str) -> None:
        self._calls.pop(req, None)

    def open(self, thread_id: str, client_msg_id: str) -> Pending:
        if client_msg_id in self._pending:
            raise ValueError(f"client_msg_id {client_msg_id!r} is being sent already")
        pending = self._pending[client_msg_id] = Pending(thread_id, client_msg_id)
        return pending

    def close(self, client_msg_id: str) -> None:
        self._pending.pop(client_msg_id, None)

    def on_ack(self, event: AckEvent) -> bool:
        """True if the ack was for one of our sends or commands."""
        call = self._calls.get(event.req or "")
        if call is not None and isinstance(event.data, ActionResult):
            if not call.done():
                call.set_result(event.data)
            return True
        pending = self._pending.get(event.req or "")
        if pending is None or not isinstance(event.data, SendResult):
            return False
        if not pending.future.done():
            pending.future.set_result(event.data)
        return True

    def on_error(self, event: ErrorEvent) -> bool:
        call = self._calls.get(event.req or "")
        if call is not None:
            if not call.done():
                call.set_exception(CommandError(
                    event.req, event.code, event.error, event.msg, event.retry_after))
            return True
        pending = self._pending.get(event.req or "")
        if pending is None:
            return False
        if not pending.future.done():
            pending.future.set_exception(CommandError(
                event.req, event.code, event.error, event.msg, event.retry_after))
        return True

    def on_echo(self, event: MessageEvent) -> None:
        if event.sender_id != self.user_id or event.client_msg_id is None:
            return
        pending = self._pending.get(event.client_msg_id)
        if pending is not None and pending.thread_id == event.thread_id:
            pending.echo = SendResult(
                message_id=event.message_id, seq=event.seq, thread_id=event.thread_id,
                client_msg_id=event.client_msg_id, duplicate=False)

    def fail_all(self, exc: BaseException) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)
        for call in self._calls.values():
            if not call.done():
                call.set_exception(exc)
