"""Push notifications (docs/push.md): who gets one for a burst of new entries, and sending it to
their devices' push targets. Called by the worker (actions/reach.py), never by the message
path. Also the use cases behind /api/me/push-targets and the VAPID public key.

A burst costs a fixed handful of statements however many members it concerns
(models/pushrules.py), then one send per target, at most SEND_CONCURRENCY at a time, and one
statement each for the successes, the gone targets and each failure.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from actions import httpout, pushsend
from config import Settings
from contract.errors import InvalidParameterError
from contract.push import (
    PREVIEW_CHARS,
    GatewayCounts,
    GatewayDevice,
    GatewayNotification,
    GatewayRequest,
    PushPayload,
    PushTargetBody,
    PushTargetInfo,
    VapidPublicKey,
)
from models import pushrules
from models.clock import epoch_ms, utcnow
from models.message import EntryKind, Message
from models.msgstate import ALL_MENTION
from models.push import PushKind, PushTarget

logger = logging.getLogger(__name__)

SEND_CONCURRENCY = 20
SEND_TIMEOUT = 10.0


def _info(target: PushTarget) -> PushTargetInfo:
    keys = {k: v for k, v in dict(target.keys).items() if k != "auth"}  # a secret: never shown
    return PushTargetInfo(
        id=target.id, kind=target.kind.value, endpoint=target.endpoint, keys=keys,
        session_id=target.session_id, created_at=epoch_ms(target.created_at),
        last_success_at=epoch_ms(target.last_success_at) if target.last_success_at else None,
        last_error=target.last_error, failures=target.failures)


async def add_target(settings: Settings, user_id: str, session_id: str,
                     body: PushTargetBody) -> PushTargetInfo:
    """Register (or renew) a push target of the caller's session."""
    try:
        keys = body.checked_keys()
    except ValueError as exc:
        raise InvalidParameterError(f"keys: {exc}") from exc
    await pushsend.check_endpoint(body.endpoint, allow_insecure=settings.reach_allow_insecure)
    return _info(await pushrules.register_target(user_id, session_id, body.kind, body.endpoint,
                                                 keys))


async def list_targets(user_id: str) -> list[PushTargetInfo]:
    return [_info(t) for t in await pushrules.list_targets(user_id)]


async def delete_target(user_id: str, target_id: int) -> None:
    await pushrules.delete_target(user_id, target_id)


async def vapid_key(settings: Settings) -> VapidPublicKey:
    vapid = await asyncio.to_thread(pushsend.load_vapid, settings)
    return VapidPublicKey(public_key=pushsend.vapid_public_key(vapid))


@dataclass(frozen=True)
class _Notice:
    user_id: str
    payload: PushPayload


class BurstEntry(Protocol):
    """What the burst index reads of a message (a `Message` row)."""

    @property
    def seq(self) -> int: ...
    @property
    def sender_id(self) -> str | None: ...
    @property
    def mentions(self) -> Any: ...


E = TypeVar("E", bound=BurstEntry)


class Burst(Generic[E]):
    """A burst's messages (oldest first) indexed once, so that each member's part of it costs
    O(log n): a plain scan per member is members x messages steps, a million in a busy group's
    wave."""

    def __init__(self, messages: Sequence[E]) -> None:
        self.messages = messages
        self.seqs = [m.seq for m in messages]
        self.own: dict[str, list[int]] = defaultdict(list)  # each sender's seqs
        self.mentioned: dict[str, list[E]] = defaultdict(list)
        self.to_all: list[E] = []  # the newest "@all", then the newest by another sender
        for m in messages:
            if m.sender_id is not None:
                self.own[m.sender_id].append(m.seq)
            mentions = m.mentions if isinstance(m.mentions, list) else []
            for user_id in mentions:
                if user_id == ALL_MENTION:
                    others = [x for x in self.to_all if x.sender_id != m.sender_id]
                    self.to_all = [m, *others[:1]]
                else:
                    self.mentioned[str(user_id)].append(m)

    def count(self, user_id: str, after: int) -> int:
        """How many of the burst's messages above seq `after` are from someone else."""
        own = self.own.get(user_id, [])
        return (len(self.seqs) - bisect_right(self.seqs, after)
                - (len(own) - bisect_right(own, after)))

    def newest(self, user_id: str) -> E:
        """The newest message from someone else (the caller checked there is one)."""
        i = len(self.messages) - 1
        while self.messages[i].sender_id == user_id:  # at most that member's own messages
            i -= 1
        return self.messages[i]

    def mentions(self, user_id: str, after: int) -> bool:
        """Whether a message from someone else above `after` mentions them or "@all"."""
        if any(m.seq > after and m.sender_id != user_id for m in self.to_all):
            return True
        for m in reversed(self.mentioned.get(user_id, [])):
            if m.seq <= after:
                return False
            if m.sender_id != user_id:
                return True
        return False


def _notices(settings: Settings, thread_id: str, messages: Sequence[Message],
             members: Sequence[pushrules.Candidate], older: dict[str, int]) -> list[_Notice]:
    """One notice per member the burst concerns: messages from others above their read mark,
    and when they muted the thread, only if one of those mentions them."""
    burst = Burst(messages)
    notices: list[_Notice] = []
    for member in members:
        count = burst.count(member.user_id, member.unread_from)
        if not count:
            continue
        mention = burst.mentions(member.user_id, member.unread_from)
        if member.muted and not mention:
            continue
        newest = burst.newest(member.user_id)
        preview = (newest.body or "")[:PREVIEW_CHARS] if settings.push_previews else None
        notices.append(_Notice(member.user_id, PushPayload(
            thread_id=thread_id, seq=newest.seq, sender_id=newest.sender_id, mention=mention,
            count=older.get(member.user_id, 0) + count, preview=preview or None)))
    return notices


def _gateway(target: PushTarget, payload: PushPayload) -> GatewayRequest | None:
    if target.kind != PushKind.GATEWAY:
        return None
    return GatewayRequest(notification=GatewayNotification(
        event_id=f"{payload.thread_id}:{payload.seq}", room_id=payload.thread_id,
        sender=payload.sender_id, counts=GatewayCounts(unread=payload.count),
        devices=[GatewayDevice(app_id=str(target.keys.get("app_id", "")),
                               pushkey=str(target.keys.get("pushkey", "")))]))


async def notify(settings: Settings, thread_id: str, entries: Sequence[Message]) -> int:
    """Push `entries` (a burst of one thread, oldest first) to the members they concern; the
    number of notifications sent."""
    if not entries or not await PushTarget.exists():
        return 0
    messages = [e for e in entries if e.kind == EntryKind.MESSAGE and not e.deleted]
    if not messages:
        return 0
    members = await pushrules.candidates(thread_id, messages[-1].seq)
    older = await pushrules.older_unread(thread_id, messages[0].seq, members)
    notices = _notices(settings, thread_id, messages, members, older)
    if not notices:
        return 0
    payloads = {n.user_id: n.payload for n in notices}
    targets = await pushrules.live_targets(list(payloads))
    if not targets:
        return 0
    vapid: Any = None
    if any(t.kind == PushKind.WEBPUSH for t in targets):
        vapid = await asyncio.to_thread(pushsend.load_vapid, settings)
    limit = asyncio.Semaphore(SEND_CONCURRENCY)
    refused = await pushsend.refused_origins([t.endpoint for t in targets], settings)

    async with httpout.session(SEND_TIMEOUT) as http:
        async def one(target: PushTarget) -> pushsend.Outcome:
            payload = payloads[target.user_id]
            if (why := refused.get(pushsend.origin(target.endpoint))) is not None:
                return pushsend.Outcome(False, error=why)
            async with limit:
                return await pushsend.send(http, vapid, settings, target, payload,
                                           _gateway(target, payload))

        outcomes = await asyncio.gather(*(one(t) for t in targets), return_exceptions=True)
    await _record(targets, outcomes)
    return len(notices)


async def _record(targets: Sequence[PushTarget],
                  outcomes: Sequence[pushsend.Outcome | BaseException]) -> None:
    """What each send did, on its target: one statement for the successes, one for the gone
    targets, one per other failure (failures are rare, and each has its own message)."""
    succeeded: list[int] = []
    gone: list[int] = []
    for target, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            logger.warning("push to target %s failed: %r", target.id, outcome)
            outcome = pushsend.Outcome(False, error=f"{type(outcome).__name__}")
        if outcome.ok:
            succeeded.append(target.id)
        elif outcome.gone:
            gone.append(target.id)
        else:
            await pushrules.record_failure(target.id, outcome.error or "failed")
    await pushrules.record_success(succeeded, utcnow())
    await pushrules.drop_targets(gone)
