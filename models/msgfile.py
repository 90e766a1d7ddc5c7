"""Which messages reference which uploads (docs/messages.md): the link that lets members who can
read a message fetch its files, and that tells an unsend which files no other message needs."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from models.append import StoredMessage
from models.message import Message
from models.upload import Upload


class MessageFile(Model):
    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="files", on_delete=fields.CASCADE
    )
    message_id: str
    upload: fields.ForeignKeyRelation[Upload] = fields.ForeignKeyField(
        "models.Upload", related_name="messages", on_delete=fields.CASCADE
    )
    upload_id: str
    thread_id = fields.CharField(max_length=32)
    seq = fields.BigIntField()

    class Meta:
        table = "message_file"
        unique_together = (("message", "upload"),)
        indexes = (("upload_id",),)


async def link_files(conn: BaseDBAsyncClient | None,
                     links: Sequence[tuple[Message | StoredMessage, str]]) -> None:
    """Record that each message references each upload id (its readers may fetch it)."""
    if links:
        await MessageFile.bulk_create(
            [MessageFile(message_id=m.id, upload_id=u, thread_id=m.thread_id, seq=m.seq)
             for m, u in links], ignore_conflicts=True, using_db=conn)


async def unlink_files(conn: BaseDBAsyncClient, message_id: str) -> list[str]:
    """Forget the message's uploads (it is being unsent); their ids, for `unreferenced`."""
    query = MessageFile.filter(message_id=message_id).using_db(conn)
    upload_ids = [str(u) for u in await query.values_list("upload_id", flat=True)]
    await query.delete()
    return upload_ids


async def unreferenced(upload_ids: Sequence[str]) -> list[Upload]:
    """Those of the uploads that no message references any more (an unsent message's files,
    unless another message, a forward say, still shows them)."""
    if not upload_ids:
        return []
    kept = {str(u) for u in await MessageFile.filter(upload_id__in=list(upload_ids))
            .values_list("upload_id", flat=True)}
    return list(await Upload.filter(id__in=[u for u in upload_ids if u not in kept]))
