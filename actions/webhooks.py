"""Outgoing webhooks (docs/webhooks.md): fanning a thread's new entries out to the hooks that
want them (rows of the durable outbox), and delivering the outbox. Called by the worker
(actions/reach.py)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from config import Settings
from models.message import Message
from models.webhook import DeliveryStatus, Webhook, WebhookDelivery


async def any_active() -> bool:
    """Whether any hook is active at all (if not, the worker skips the fan-out)."""
    return await Webhook.filter(active=True).exists()


async def fan_out(conn: BaseDBAsyncClient, thread_id: str, entries: Sequence[Message]) -> None:
    """Record, inside `conn`'s transaction, one delivery per entry per hook that wants it."""
    if not entries or not await Webhook.filter(active=True).using_db(conn).exists():
        return
    raise NotImplementedError


async def deliver_due(settings: Settings) -> int:
    """Deliver what is due, oldest first per hook; the number of attempts made."""
    if not await WebhookDelivery.filter(status=DeliveryStatus.PENDING).exists():
        return 0
    raise NotImplementedError
