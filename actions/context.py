"""What every use case gets besides its arguments: settings, the publisher, the broker's access
sync, the topic scheme, the abuse limits and the upload storage. Built once per process by the
entry point and passed in (never looked up), so the same action runs under HTTP, the bridge or a
test.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from actions.metrics import EVENTS_PUBLISHED
from broker.acl import AccessSync
from broker.errors import BrokerError
from broker.link.publisher import Event, EventPublisher
from config import Settings
from contract.topics import TopicScheme
from models.ratelimit import RateLimits
from models.thread import receiver_ids
from storage import Storage

logger = logging.getLogger(__name__)
# EVENTS_PUBLISHED's child per event type: `labels()` per event was 1-2% of a message's CPU.
_PUBLISHED_BY_TYPE: dict[str, Counter] = {}


def _count_published(events: Sequence[Event]) -> None:
    counts: dict[str, int] = {}
    for _, event in events:
        kind = getattr(event, "type", "other")
        counts[kind] = counts.get(kind, 0) + 1
    for kind, count in counts.items():
        child = _PUBLISHED_BY_TYPE.get(kind)
        if child is None:
            child = _PUBLISHED_BY_TYPE[kind] = EVENTS_PUBLISHED.labels(type=kind)
        child.inc(count)


@dataclass(frozen=True)
class Context:
    settings: Settings
    publisher: EventPublisher
    access: AccessSync
    topics: TopicScheme
    limits: RateLimits
    # Where uploads live (storage/): the routes stream into it, an unsend erases from it.
    storage: Storage

    async def publish(self, events: Sequence[Event], *, qos: int = 1) -> None:
        """Publish after commit. A broker failure never undoes the commit (the change is stored
        and clients catch up by seq), so it is logged here, not raised."""
        if not events:
            return
        _count_published(events)
        try:
            await self.publisher.publish_all(events, qos=qos)
        except BrokerError as exc:
            logger.warning("committed, but could not publish %d event(s): %s", len(events), exc)

    async def tell_broker(self, change: Awaitable[None], what: str) -> None:
        """Await an AccessSync call made after a commit (`ctx.access.…`). A broker failure is
        logged, not raised: the change is stored, and `mqim acl sync` repairs the broker."""
        try:
            await change
        except BrokerError as exc:
            logger.error("%s, but the broker was not told: %s", what, exc)

    async def receivers_changed(self, thread_id: str, what: str) -> None:
        """After a commit that changed who receives a thread (its members, their recv_msg_opt,
        its status): tell the broker the thread's receivers now (models.thread.receiver_ids)."""
        receivers = await receiver_ids(thread_id)
        await self.tell_broker(self.access.membership_changed(thread_id, receivers), what)

    def publishing_to(self, publisher: EventPublisher) -> Context:
        """The same context with another publisher (the bridge's per-batch outbox)."""
        return dataclasses.replace(self, publisher=publisher)


class Outbox:
    """An EventPublisher that keeps what it is given, in order, until `flush`: the bridge sends
    a whole batch's events and answers in one sequence, events before the acks that follow
    them, and fails the batch (un-acked, redelivered) if the broker is lost meanwhile."""

    def __init__(self) -> None:
        self._queued: list[tuple[int, list[Event]]] = []

    async def publish_all(self, events: Sequence[Event], *, qos: int = 1) -> None:
        self._extend(qos, events)

    def add(self, event: Event) -> None:
        """Queue one QoS 1 event without awaiting (the bridge's acks and errors)."""
        self._extend(1, (event,))

    def _extend(self, qos: int, events: Sequence[Event]) -> None:
        if self._queued and self._queued[-1][0] == qos:
            self._queued[-1][1].extend(events)
        else:
            self._queued.append((qos, list(events)))

    async def flush(self, publisher: EventPublisher) -> None:
        """Everything queued, ephemeral (QoS 0) events first, then the rest in order."""
        queued, self._queued = self._queued, []
        ephemeral = [e for qos, events in queued if qos == 0 for e in events]
        lasting = [e for qos, events in queued if qos != 0 for e in events]
        if ephemeral:
            await publisher.publish_all(ephemeral, qos=0)
        if lasting:
            await publisher.publish_all(lasting)
