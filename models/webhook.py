"""Outgoing webhooks (docs/webhooks.md): a hook is a URL that receives the timeline events of
some threads (all of them for a server hook, a bot's threads for a bot hook), signed with its
secret. `webhook_delivery` is the durable outbox: one row per event per hook, delivered in order
per hook, at least once, with retries; it survives restarts."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.user import User

URL_MAX = 2048


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt; POST …/replay sends it again


class Webhook(Model):
    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="webhooks", on_delete=fields.CASCADE)
    owner_id: str
    # The bot whose threads it follows; None: a server hook (every thread; server admins only).
    bot_id = fields.CharField(max_length=64, null=True)
    url = fields.CharField(max_length=URL_MAX)
    secret = fields.CharField(max_length=128)
    events: Any = fields.JSONField(default=list)  # the event kinds it wants; [] = all
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook"
        indexes = (("bot_id",),)


class WebhookDelivery(Model):
    id = fields.BigIntField(primary_key=True)
    webhook: fields.ForeignKeyRelation[Webhook] = fields.ForeignKeyField(
        "models.Webhook", related_name="deliveries", on_delete=fields.CASCADE)
    webhook_id: int
    event_kind = fields.CharField(max_length=32)
    payload: Any = fields.JSONField()
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_status = fields.IntField(null=True)  # the receiver's HTTP status, if it answered
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_delivery"
        indexes = (("webhook_id", "status", "id"), ("status", "next_attempt_at"))
