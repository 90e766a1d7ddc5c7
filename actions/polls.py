"""Polls (docs/messages.md): create, vote (the MQTT op `vote` and its route), close."""

from __future__ import annotations

from actions.context import Context
from contract.msgactions import ActionResult


async def vote(ctx: Context, user_id: str, thread_id: str, poll_id: str, option_ids: list[int],
               ) -> ActionResult:
    raise NotImplementedError
