"""Push targets (docs/push.md): where to reach a device that is not connected. A target belongs
to one login session and ends with it (FK cascade on delete; the worker also skips the targets
of ended sessions)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.session import LoginSession
from models.user import User

ENDPOINT_MAX = 2048


class PushKind(StrEnum):
    WEBPUSH = "webpush"  # RFC 8030 + VAPID (RFC 8292) + aes128gcm (RFC 8291)
    UNIFIEDPUSH = "unifiedpush"  # a plain POST of the payload to the device's endpoint
    GATEWAY = "gateway"  # a Matrix push gateway (Sygnal, ...) that holds the APNs/FCM keys


class PushTarget(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="push_targets", on_delete=fields.CASCADE)
    user_id: str
    session: fields.ForeignKeyRelation[LoginSession] = fields.ForeignKeyField(
        "models.LoginSession", related_name="push_targets", on_delete=fields.CASCADE)
    session_id: str
    kind = fields.CharEnumField(PushKind, max_length=16)
    endpoint = fields.CharField(max_length=ENDPOINT_MAX)
    # webpush: {p256dh, auth}; gateway: {app_id, pushkey}; unifiedpush: {}.
    keys: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_success_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    failures = fields.IntField(default=0)  # in a row; reset by a success

    class Meta:
        table = "push_target"
        unique_together = (("session", "endpoint"),)
        indexes = (("user_id",),)
