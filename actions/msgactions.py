"""Reactions, unsend and edit (docs/messages.md): the one code path behind the MQTT ops `react`,
`unreact`, `unsend`, `edit` and their HTTP routes, and the versions list of an edited message.

Each action checks and writes in one transaction (models/msgtarget.py `acting_on`, the rules in
models/msgactions.py), then, after the commit, publishes the entry it wrote on the thread topic.
An action that changed nothing answers `seq: None` and publishes nothing.
"""

from __future__ import annotations

from typing import Any

from actions.context import Context
from actions.timeline import entry_event
from actions.uploads import erase_unreferenced
from contract.msgactions import ActionResult, MessageVersionView
from models import msgactions as rules
from models.clock import epoch_ms
from models.message import Message
from models.msgtarget import acting_on


async def _published(ctx: Context, thread_id: str, message_id: str, entry: Message | None,
                     ) -> ActionResult:
    if entry is not None:
        await ctx.publish([(ctx.topics.thread(thread_id), entry_event(entry))])
    return ActionResult(thread_id=thread_id, message_id=message_id,
                        seq=entry.seq if entry else None)


async def react(ctx: Context, user_id: str, thread_id: str, message_id: str, emoji: str,
                ) -> ActionResult:
    rules.check_emoji(emoji)  # before taking the thread's lock
    async with acting_on(thread_id, user_id, message_id) as t:
        entry = await rules.add_reaction(t, user_id, emoji)
    return await _published(ctx, thread_id, message_id, entry)


async def unreact(ctx: Context, user_id: str, thread_id: str, message_id: str, emoji: str,
                  ) -> ActionResult:
    rules.check_emoji(emoji)
    async with acting_on(thread_id, user_id, message_id) as t:
        entry = await rules.remove_reaction(t, user_id, emoji)
    return await _published(ctx, thread_id, message_id, entry)


async def unsend(ctx: Context, user_id: str, thread_id: str, message_id: str) -> ActionResult:
    async with acting_on(thread_id, user_id, message_id) as t:
        unsent = await rules.unsend_message(t, user_id, ctx.settings.unsend_window)
    result = await _published(ctx, thread_id, message_id, unsent.entry)
    # After the commit: the files go only once no row can point at them any more.
    await erase_unreferenced(ctx.storage, unsent.upload_ids)
    return result


async def edit(ctx: Context, user_id: str, thread_id: str, message_id: str, *,
               body: str | None, content: dict[str, Any] | None) -> ActionResult:
    async with acting_on(thread_id, user_id, message_id) as t:
        entry = await rules.edit_message(t, user_id, body, content,
                                         window=ctx.settings.edit_window,
                                         max_body_chars=ctx.settings.max_body_chars)
    return await _published(ctx, thread_id, message_id, entry)


async def message_edits(user_id: str, thread_id: str, message_id: str,
                        ) -> list[MessageVersionView]:
    """`GET …/messages/{mid}/edits`: every version, oldest first. Publishes nothing."""
    return [MessageVersionView(version=v.version, body=v.body, content=v.content,
                               edited_at=epoch_ms(v.at))
            for v in await rules.message_versions(user_id, thread_id, message_id)]
