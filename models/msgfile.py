"""Which messages reference which uploads (docs/messages.md): the link that lets members who can
read a message fetch its files, and that tells an unsend which files no other message needs."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

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
