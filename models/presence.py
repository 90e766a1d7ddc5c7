"""Presence of each user (table): online, idle or offline, and when last seen. Fed by the
`presence` uplink op and by the will that a client sets to `{"op": "presence", "status":
"offline"}`, so a killed client goes offline too."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PresenceStatus(StrEnum):
    ONLINE = "online"
    IDLE = "idle"
    OFFLINE = "offline"


class Presence(Model):
    user_id = fields.CharField(primary_key=True, max_length=64)
    status = fields.CharEnumField(PresenceStatus, max_length=8, default=PresenceStatus.OFFLINE)
    last_seen_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "presence"
