"""Reactions, unsend and edit (docs/messages.md): the one code path behind the MQTT ops `react`,
`unreact`, `unsend`, `edit` and their HTTP routes."""

from __future__ import annotations

from typing import Any

from actions.context import Context
from contract.msgactions import ActionResult


async def react(ctx: Context, user_id: str, thread_id: str, message_id: str, emoji: str,
                ) -> ActionResult:
    raise NotImplementedError


async def unreact(ctx: Context, user_id: str, thread_id: str, message_id: str, emoji: str,
                  ) -> ActionResult:
    raise NotImplementedError


async def unsend(ctx: Context, user_id: str, thread_id: str, message_id: str) -> ActionResult:
    raise NotImplementedError


async def edit(ctx: Context, user_id: str, thread_id: str, message_id: str, *,
               body: str | None, content: dict[str, Any] | None) -> ActionResult:
    raise NotImplementedError
