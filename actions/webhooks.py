"""Outgoing webhooks (docs/webhooks.md): the routes' use cases (create, list, delete, deliveries,
replay), fanning a thread's new entries out to the hooks that want them (rows of the durable
outbox), and delivering the outbox, signed. The last two are called by the worker
(actions/reach.py), never by the message path.

Delivery is at least once: a row is marked delivered only after a 2xx, so a crash between the
POST and the update sends it again (receivers dedupe on X-Mqim-Delivery). One worker delivers
(`mqim serve` or `mqim push`): head-of-line order per hook assumes that.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from tortoise.backends.base.client import BaseDBAsyncClient

from actions import httpout
from actions.outbound import check_outbound_url
from actions.timeline import entry_event
from config import Settings
from contract import webhooks as wire
from contract.errors import ForbiddenError, InvalidParameterError, NotFoundError
from models import hooks
from models.clock import epoch_ms, utcnow
from models.message import Message
from models.user import get_user
from models.webhook import DeliveryStatus, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

CONCURRENCY = 16  # hooks delivered at once
ROUNDS = 20  # heads per hook per call, at most: a backlog drains without starving push
DRAIN_SECONDS = 2.0  # no new round after this long (slow receivers must not starve push)


# -- the routes' use cases -------------------------------------------------------------------

async def check_url(url: str, allow_insecure: bool) -> str:
    """`url` if a hook may POST to it (actions/outbound.py); 1001 otherwise."""
    await check_outbound_url(url, what="url", max_chars=wire.URL_MAX,
                             allow_insecure=allow_insecure)
    return url


async def _is_admin(user_id: str) -> bool:
    return bool((await get_user(user_id)).is_admin)


def _view(hook: Webhook) -> wire.WebhookView:
    return wire.WebhookView(id=hook.id, url=hook.url, events=hook.events or [],
                            bot_id=hook.bot_id, active=hook.active,
                            created_at=epoch_ms(hook.created_at))


async def create_webhook(settings: Settings, caller_id: str,
                         body: wire.CreateWebhookBody) -> wire.WebhookCreated:
    admin = await _is_admin(caller_id)
    if body.bot_id is None:
        if not admin:
            raise ForbiddenError("server hooks are for server admins; name a bot_id you own")
    else:
        owner = await hooks.bot_owner(body.bot_id)
        if owner is None:
            raise NotFoundError(f"no bot {body.bot_id}")
        if owner != caller_id and not admin:
            raise ForbiddenError("not your bot")
    url = await check_url(body.url, settings.reach_allow_insecure)
    events = list(dict.fromkeys(body.events or []))  # [] = all
    secret = secrets.token_bytes(32).hex()
    hook = await hooks.create_hook(caller_id, url, events, body.bot_id, secret)
    return wire.WebhookCreated(**_view(hook).model_dump(), secret=secret)


async def list_webhooks(caller_id: str) -> list[wire.WebhookView]:
    return [_view(h) for h in await hooks.listed(caller_id, await _is_admin(caller_id))]


async def _own_hook(caller_id: str, hook_id: int) -> Webhook:
    """The hook, if the caller owns it or is an admin; 1005 otherwise (existence is not told)."""
    hook = await hooks.get_hook(hook_id)
    if hook is None or (hook.owner_id != caller_id and not await _is_admin(caller_id)):
        raise NotFoundError(f"no webhook {hook_id}")
    return hook


async def delete_webhook(caller_id: str, hook_id: int) -> wire.WebhookDeleted:
    await hooks.delete_hook((await _own_hook(caller_id, hook_id)).id)
    return wire.WebhookDeleted(id=hook_id, deleted=True)


async def list_deliveries(caller_id: str, hook_id: int, status: str | None,
                          limit: int) -> list[wire.DeliveryView]:
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise InvalidParameterError("status: pending, delivered or failed")
    hook = await _own_hook(caller_id, hook_id)
    rows = await hooks.deliveries(hook.id, DeliveryStatus(status) if status else None, limit)
    return [wire.DeliveryView(
        id=d.id, kind=d.event_kind, status=d.status.value, attempts=d.attempts,
        last_status=d.last_status, last_error=d.last_error, created_at=epoch_ms(d.created_at),
        delivered_at=epoch_ms(d.delivered_at) if d.delivered_at else None) for d in rows]


async def replay(caller_id: str, hook_id: int) -> wire.ReplayResult:
    hook = await _own_hook(caller_id, hook_id)
    return wire.ReplayResult(replayed=await hooks.replay(hook.id))


# -- the worker's part -----------------------------------------------------------------------

async def fan_out(conn: BaseDBAsyncClient, thread_id: str, entries: Sequence[Message]) -> None:
    """Record, inside `conn`'s transaction, one delivery per entry per hook that wants it, in
    timeline order (so ids, and thus delivery order, follow seqs)."""
    if not entries:
        return
    audience = await hooks.audience(conn, thread_id)
    if not audience.hooks:
        return
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for entry in entries:
        event: dict[str, Any] | None = None
        for hook in audience.hooks:
            kind = hooks.kind_for(hook, entry, audience.direct)
            if kind is None:
                continue
            if event is None:  # rendered once per entry, only if some hook wants it
                event = entry_event(entry).model_dump(mode="json", by_alias=True)
            payload = wire.WebhookPayload(kind=kind, hook_id=hook.id, event=event)
            rows.append((hook.id, kind, payload.model_dump(mode="json")))
    if rows:
        await hooks.record(conn, rows)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Mqim-Signature value: HMAC-SHA256 over "<timestamp>.<body>", keyed by the secret's
    UTF-8 bytes."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return wire.SIGNATURE_PREFIX + mac.hexdigest()


async def deliver_due(settings: Settings) -> int:
    """Deliver what is due, oldest first per hook; the number of attempts made. Rounds follow
    each other while there is due work (a backlog drains at once), at most ROUNDS per call and
    none begun after DRAIN_SECONDS."""
    if not await hooks.any_pending():
        return 0
    made = 0
    limit = asyncio.Semaphore(CONCURRENCY)
    stop_at = time.monotonic() + DRAIN_SECONDS
    async with httpout.session(settings.webhook_timeout) as client:
        for _ in range(ROUNDS):
            if time.monotonic() > stop_at:
                break
            heads = await hooks.due_heads(utcnow())
            if not heads:
                break
            await asyncio.gather(*(_deliver(settings, client, limit, hook, delivery)
                                   for hook, delivery in heads))
            made += len(heads)
    return made


async def _deliver(settings: Settings, client: aiohttp.ClientSession, limit: asyncio.Semaphore,
                   hook: Webhook, delivery: WebhookDelivery) -> None:
    async with limit:
        status: int | None = None
        try:
            if not settings.reach_allow_insecure:  # the host may resolve elsewhere by now
                await check_url(hook.url, False)
            body = json.dumps(delivery.payload, separators=(",", ":"),
                              ensure_ascii=False).encode()
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json", wire.HEADER_EVENT: delivery.event_kind,
                wire.HEADER_DELIVERY: str(delivery.id), wire.HEADER_TIMESTAMP: str(timestamp),
                wire.HEADER_SIGNATURE: sign(hook.secret, timestamp, body),
                "User-Agent": "mqim-webhooks",
            }
            # The answer's body is never read: a receiver's answer is not ours to buffer.
            reply = await httpout.post(client, hook.url, body, headers)
            status = reply.status
            if reply.ok:
                await hooks.mark_delivered(delivery, status)
                return
            error = f"HTTP {status}"
        except InvalidParameterError as exc:
            error = exc.msg
        except httpout.OutboundError as exc:
            error = str(exc)
        except Exception as exc:  # one hook's surprise must not stop the others
            logger.exception("webhook %s: delivery %s failed", hook.id, delivery.id)
            error = f"{type(exc).__name__}"
        await hooks.mark_failed_attempt(delivery, status, error, settings.webhook_max_attempts,
                                        settings.webhook_backoff_ms)
