"""Queries and rules over outgoing webhooks (models/webhook.py, docs/webhooks.md): which hooks a
thread's entries go to and as which event kind, the outbox's head per hook, a delivery's
outcome, and the owner's view (list, delete, deliveries, replay). No HTTP here: sending is
actions/webhooks.py's.

Ordering: a hook's deliveries go out in id order, one at a time (the head of its pending rows),
so a receiver sees each hook's events in timeline order per thread even across retries; a
delivery that gives up (`failed`) lets the next one go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.functions import Min

from models.bot import Bot
from models.clock import utcnow
from models.message import EntryKind, Message
from models.msgstate import ALL_MENTION
from models.thread import Member, Thread, ThreadKind
from models.webhook import DeliveryStatus, Webhook, WebhookDelivery

BACKOFF_CAP = timedelta(minutes=5)
ERROR_MAX = 500
_ACTION_KIND = "message_action"
_LOG_KINDS = {"log:subscribe": "member_joined", "log:unsubscribe": "member_left"}


async def bot_owner(bot_user_id: str) -> str | None:
    """The owner of the bot whose user id this is; None: no such bot."""
    bot = await Bot.filter(user_id=bot_user_id).only("owner_id").first()
    return bot.owner_id if bot else None


async def create_hook(owner_id: str, url: str, events: Sequence[str], bot_id: str | None,
                      secret: str) -> Webhook:
    return await Webhook.create(owner_id=owner_id, url=url, events=list(events), bot_id=bot_id,
                                secret=secret)


async def listed(user_id: str, admin: bool) -> list[Webhook]:
    """The caller's hooks, and every server hook for an admin; oldest first."""
    mine = Q(owner_id=user_id)
    return list(await Webhook.filter(mine | Q(bot_id=None) if admin else mine).order_by("id"))


async def get_hook(hook_id: int) -> Webhook | None:
    return await Webhook.filter(id=hook_id).first()


async def delete_hook(hook_id: int) -> None:
    await Webhook.filter(id=hook_id).delete()  # its deliveries cascade


async def deliveries(hook_id: int, status: DeliveryStatus | None,
                     limit: int) -> list[WebhookDelivery]:
    rows = WebhookDelivery.filter(webhook_id=hook_id)
    if status is not None:
        rows = rows.filter(status=status)
    return list(await rows.order_by("-id").limit(limit))


async def replay(hook_id: int) -> int:
    """Failed deliveries pending again, from their first attempt; how many."""
    return await WebhookDelivery.filter(webhook_id=hook_id, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=utcnow())


# -- fan-out ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Audience:
    """The active hooks a thread's entries go to, and whether the thread is a direct one."""

    hooks: list[Webhook]
    direct: bool


async def audience(conn: BaseDBAsyncClient, thread_id: str) -> Audience:
    """Server hooks, and the hooks of the bots that are current members of the thread."""
    hooks = await Webhook.filter(active=True).using_db(conn).order_by("id")
    bot_ids = {h.bot_id for h in hooks if h.bot_id is not None}
    members: set[str] = set()
    if bot_ids:
        members = set(await Member.filter(thread_id=thread_id, user_id__in=bot_ids).using_db(
            conn).values_list("user_id", flat=True))  # type: ignore[arg-type]
    wanted = [h for h in hooks if h.bot_id is None or h.bot_id in members]
    if not wanted:
        return Audience([], False)
    thread = await Thread.filter(id=thread_id).using_db(conn).only("id", "kind").first()
    return Audience(wanted, thread is not None and thread.kind == ThreadKind.DIRECT)


def entry_kinds(entry: Message, direct: bool, bot_id: str | None) -> list[str]:
    """The event kinds an entry is, most specific first (a hook gets it once, as the first kind
    it asked for). `mention` exists only for a bot hook (its bot, or "@all", is mentioned)."""
    if entry.kind == EntryKind.ACTION:
        return [_ACTION_KIND]
    if entry.kind == EntryKind.EVENT:
        return [_LOG_KINDS.get(entry.type, "thread_event")]
    kinds = []
    mentions = entry.mentions or []
    if bot_id is not None and not entry.deleted and (bot_id in mentions
                                                     or ALL_MENTION in mentions):
        kinds.append("mention")
    if direct:
        kinds.append("direct_message")
    kinds.append("message")
    return kinds


def kind_for(hook: Webhook, entry: Message, direct: bool) -> str | None:
    """The kind `hook` gets `entry` as; None: not for this hook (a kind it did not ask for, or
    an entry by the hook's own bot)."""
    if hook.bot_id is not None and entry.sender_id == hook.bot_id:
        return None
    wanted: list[str] = hook.events or []
    for kind in entry_kinds(entry, direct, hook.bot_id):
        if not wanted or kind in wanted:
            return kind
    return None


async def record(conn: BaseDBAsyncClient, rows: Sequence[tuple[int, str, dict[str, Any]]],
                 ) -> None:
    """The outbox rows (hook id, kind, payload), due at once, in order: one statement."""
    now = utcnow()
    await WebhookDelivery.bulk_create(
        [WebhookDelivery(webhook_id=hook_id, event_kind=kind, payload=payload,
                         next_attempt_at=now) for hook_id, kind, payload in rows],
        using_db=conn)


# -- delivery --------------------------------------------------------------------------------

async def any_pending() -> bool:
    return await WebhookDelivery.filter(status=DeliveryStatus.PENDING).exists()


async def due_heads(now: datetime) -> list[tuple[Webhook, WebhookDelivery]]:
    """Per active hook, its oldest pending delivery, if that one is due (head of line)."""
    heads = await WebhookDelivery.filter(
        status=DeliveryStatus.PENDING, webhook__active=True,
    ).annotate(first=Min("id")).group_by("webhook_id").values_list("first", flat=True)
    if not heads:
        return []
    due = await WebhookDelivery.filter(id__in=list(heads), next_attempt_at__lte=now,
                                       status=DeliveryStatus.PENDING).order_by("id")
    if not due:
        return []
    hooks = {h.id: h for h in await Webhook.filter(id__in={d.webhook_id for d in due})}
    return [(hooks[d.webhook_id], d) for d in due if d.webhook_id in hooks]


async def mark_delivered(delivery: WebhookDelivery, status: int) -> None:
    await WebhookDelivery.filter(id=delivery.id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.DELIVERED, attempts=delivery.attempts + 1, last_status=status,
        last_error=None, delivered_at=utcnow())


def backoff(base_ms: int, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from `base_ms`, at most 5 min."""
    if attempts > 20:  # 2**20 base intervals is past the cap for any base: no huge ints
        return BACKOFF_CAP
    return min(timedelta(milliseconds=base_ms * 2 ** (attempts - 1)), BACKOFF_CAP)


async def mark_failed_attempt(delivery: WebhookDelivery, status: int | None, error: str,
                              max_attempts: int, base_ms: int) -> None:
    """One more failed attempt: retried after a backoff, or given up after the last one."""
    attempts = delivery.attempts + 1
    gave_up = attempts >= max_attempts
    await WebhookDelivery.filter(id=delivery.id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING, attempts=attempts,
        last_status=status, last_error=error[:ERROR_MAX],
        next_attempt_at=utcnow() + backoff(base_ms, attempts))
