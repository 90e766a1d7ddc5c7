"""Uploaded files (docs/design.md section 9): one row per stored object, and who may read it.

The bytes live in the storage backend (storage/), under `storage_key`; this table holds what was
learnt while they streamed in (size, sniffed content type, image dimensions, SHA-256). Rule:
`may_read_upload` is the one place that decides who may fetch an upload: its owner; anyone who
may read a message that references it (a `message_file` row, within their visible range of that
thread, models/message.visible_range); any signed-in user, if it is its owner's current avatar;
the members of a thread whose image it is. To everyone else an upload does not exist (404,
never 403).
"""

from __future__ import annotations

import re
import secrets

from tortoise import connections, fields
from tortoise.models import Model

from contract.errors import UploadNotFoundError
from models.sqldialect import SqlDialect
from models.user import User

UPLOAD_ID_PREFIX = "f"
UPLOAD_ID_MAX = 40
# How an avatar or a thread image names one of our uploads: a path on this server, so it holds
# behind any proxy or host name (models/profile.py and models/govrules.py accept it).
UPLOAD_PATH = re.compile(r"/api/uploads/f[0-9a-f]{32}")
NAME_MAX = 255
CONTENT_TYPE_MAX = 100


class Upload(Model):
    """A file someone uploaded: stored under `storage_key` in the configured backend."""

    id = fields.CharField(primary_key=True, max_length=UPLOAD_ID_MAX)
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


def could_be_upload_id(value: str) -> bool:
    """Whether `value` has the shape of an upload id (the prefix, and no longer than the key)."""
    return value.startswith(UPLOAD_ID_PREFIX) and len(value) <= UPLOAD_ID_MAX


def new_upload_id() -> str:
    """Unguessable: an id is not a capability (may_read_upload decides), but enumerating
    uploads must not be a way to learn how many there are."""
    return UPLOAD_ID_PREFIX + secrets.token_hex(16)


# One statement: a message the user can read references it (as a current member: the whole
# history when it is shared, else from their join; as a former member: up to their leaving), or
# it is its owner's avatar, or the image of a thread the user is in. Avatars and thread images
# hold a URL ending in the upload's path (an absolute URL: the profile and thread rules take
# http(s) URLs only).
_MAY_READ = """
SELECT 1 FROM message_file f JOIN thread t ON t.id = f.thread_id
JOIN thread_member m ON m.thread_id = f.thread_id AND m.user_id = {user}
WHERE f.upload_id = {upload} AND (t.history_visibility = 'shared' OR f.seq >= m.join_seq)
UNION ALL
SELECT 1 FROM message_file f JOIN thread t ON t.id = f.thread_id
JOIN thread_member_past p ON p.thread_id = f.thread_id AND p.user_id = {user}
WHERE f.upload_id = {upload} AND f.seq <= p.leave_seq
  AND (t.history_visibility = 'shared' OR f.seq >= p.join_seq)
UNION ALL
SELECT 1 FROM user_account u WHERE u.id = {owner} AND u.avatar_url LIKE {suffix}
UNION ALL
SELECT 1 FROM thread_member m JOIN thread t ON t.id = m.thread_id
WHERE m.user_id = {user} AND t.image_url LIKE {suffix}
LIMIT 1
"""


async def may_read_upload(user_id: str, upload: Upload) -> bool:
    """Whether `user_id` may fetch `upload`'s bytes (the rule in the module docstring): no query
    for its owner, one for anyone else."""
    if upload.owner_id == user_id:
        return True
    conn = connections.get("default")
    sql = SqlDialect(conn)
    # Upload ids are letters and digits: nothing in the suffix is a LIKE wildcard.
    params = [upload.id, user_id, upload.owner_id, f"%/api/uploads/{upload.id}"]
    query = _MAY_READ.format(upload=sql.numbered(1), user=sql.numbered(2),
                             owner=sql.numbered(3), suffix=sql.numbered(4))
    _, rows = await conn.execute_query(query, params)
    return bool(rows)


async def readable_upload(user_id: str, upload_id: str) -> Upload:
    """The upload, if `user_id` may read it; else UploadNotFoundError, as if it did not exist."""
    upload = await Upload.get_or_none(id=upload_id) if could_be_upload_id(upload_id) else None
    if upload is None or not await may_read_upload(user_id, upload):
        raise UploadNotFoundError(f"no upload {upload_id}")
    return upload
