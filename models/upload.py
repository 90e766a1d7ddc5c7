"""Uploaded files (docs/design.md section 9): one row per stored object, and who may read it.

The bytes live in the storage backend (storage/), under `storage_key`; this table holds what was
learnt while they streamed in (size, sniffed content type, image dimensions, SHA-256). Rule:
`may_read_upload` is the one place that decides who may fetch an upload; today only its owner
(members of threads whose messages reference it come with message attachments). To everyone else
an upload does not exist (404, never 403).
"""

from __future__ import annotations

import secrets

from tortoise import fields
from tortoise.models import Model

from contract.errors import UploadNotFoundError
from models.user import User

UPLOAD_ID_PREFIX = "f"
NAME_MAX = 255
CONTENT_TYPE_MAX = 100


class Upload(Model):
    """A file someone uploaded: stored under `storage_key` in the configured backend."""

    id = fields.CharField(primary_key=True, max_length=40)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="uploads", on_delete=fields.CASCADE
    )
    owner_id: str
    storage_key = fields.CharField(max_length=200)
    name = fields.CharField(max_length=NAME_MAX)
    size = fields.BigIntField()
    content_type = fields.CharField(max_length=CONTENT_TYPE_MAX)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    sha256 = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "upload"
        indexes = (("owner_id", "created_at"),)


def new_upload_id() -> str:
    """Unguessable: an id is not a capability (may_read_upload decides), but enumerating
    uploads must not be a way to learn how many there are."""
    return UPLOAD_ID_PREFIX + secrets.token_hex(16)


async def may_read_upload(user_id: str, upload: Upload) -> bool:
    """Whether `user_id` may fetch `upload`'s bytes: its owner, for now. Async on purpose: the
    rule for members of threads whose messages reference the upload will query."""
    return upload.owner_id == user_id


async def readable_upload(user_id: str, upload_id: str) -> Upload:
    """The upload, if `user_id` may read it; else UploadNotFoundError, as if it did not exist."""
    upload = await Upload.get_or_none(id=upload_id)
    if upload is None or not await may_read_upload(user_id, upload):
        raise UploadNotFoundError(f"no upload {upload_id}")
    return upload
