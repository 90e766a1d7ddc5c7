"""Forwarding a message (docs/messages.md): a copy in each target thread, sent through
`actions.messaging.send_messages` as one batch, with `forwarded_from` naming the original.

The copy keeps the source's type, body, content and attachments; its mentions and reply_to are
dropped (they mean something in the source thread only). `forwarded_from.sender_id` is the
original author: forwarding a forward keeps the first `forwarded_from`. The uploads the source
references are linked to each copy (models/msgfile.link_files), so the targets' members may
fetch them.

Every target is checked before anything is sent (models/forward.check_targets), so a refused
target refuses the whole call. What the send itself may still refuse after that check (a block
in a direct thread, a mute or a dissolution in between) refuses the call with that error, while
the copies in the other targets stay sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from actions.context import Context
from actions.messaging import send_messages
from contract.errors import InvalidParameterError, MqimError
from contract.polls import Forwarded
from models.forward import check_targets, forwardable_source, upload_ids_of
from models.message import Draft, Message
from models.msgfile import link_files


async def forward(ctx: Context, user_id: str, thread_id: str, message_id: str,
                  thread_ids: Sequence[str]) -> list[Forwarded]:
    """One copy per target, in the order given."""
    if len(set(thread_ids)) != len(thread_ids):
        raise InvalidParameterError("thread_ids must be distinct")
    source = await forwardable_source(user_id, thread_id, message_id)
    await check_targets(user_id, thread_ids)
    origin = source.forwarded_from or {
        "thread_id": source.thread_id, "message_id": source.id, "sender_id": source.sender_id}
    drafts = [Draft(sender_id=user_id, thread_id=target,
                    client_msg_id=f"fwd-{secrets.token_hex(12)}", type=source.type,
                    body=source.body, content=source.content,
                    attachments=list(source.attachments or []), forwarded_from=dict(origin))
              for target in thread_ids]
    outcomes = await send_messages(ctx, drafts)
    refused = next((o for o in outcomes if isinstance(o, MqimError)), None)
    sent = [o for o in outcomes if not isinstance(o, MqimError)]
    upload_ids = await upload_ids_of(source.id)
    if upload_ids and sent:
        copies = await Message.filter(id__in=[s.message_id for s in sent])
        await link_files(None, [(copy, u) for copy in copies for u in upload_ids])
    if refused is not None:
        raise refused
    return [Forwarded(thread_id=s.thread_id, message_id=s.message_id, seq=s.seq) for s in sent]
