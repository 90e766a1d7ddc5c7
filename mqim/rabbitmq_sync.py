"""AccessSync for RabbitMQ: access changes take effect on live MQTT sessions at once.

RabbitMQ's MQTT plugin asks the topic hook only when a client subscribes (and publishes); once a
subscription's binding exists, every message routed to its key reaches the client's queue. So:

- a thread's receivers change (removal, leave, recv_msg_opt 2, dissolution): delete that thread's
  binding from the subscription queues of every user who no longer receives it. Not "close the
  user's connections": a persistent session (clean_session false) keeps its queue and bindings
  across a reconnect, so a kicked client would come back still bound; and closing would also cut
  the user's other threads. A re-subscribe is asked of the hook again and refused.
- a ban or an ended session: close the user's connections (the login itself is withdrawn; the
  user hook refuses the token from now on). RabbitMQ does not show which session's token a
  connection logged in with, so every connection of the user is closed; the other sessions'
  clients reconnect with their still-valid tokens.

Cost: a membership change lists the MQTT exchange's bindings once (one management call, all
nodes); changes made while a listing runs share the next one. A management API failure is
logged, never raised: the change is committed and every new connection or subscription is
refused already; only the live session keeps what it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from api.mqtt_decide import service_credentials
from broker.acl import AccessSync, ExtraRule
from broker.rabbitmq_admin import RabbitAdmin, RabbitAdminError
from config import Settings
from contract.hooks_rabbitmq import subscription_queue_client, topic_to_routing_key
from contract.topics import TopicScheme
from mqim.directory import ModelDirectory

logger = logging.getLogger(__name__)


class RabbitmqAccess:
    """The directory's caches follow every change; live sessions follow through `admin`."""

    def __init__(self, directory: AccessSync, admin: RabbitAdmin, settings: Settings) -> None:
        self._directory = directory
        self._admin = admin
        self._topics = TopicScheme(settings.topic_prefix)
        self._services = frozenset(service_credentials(settings))
        self._pending: dict[str, set[str]] = {}  # routing key -> its receivers, to unbind others
        self._flush = asyncio.Lock()

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None:
        await self._directory.membership_changed(thread_id, member_ids)
        key = topic_to_routing_key(self._topics.thread(thread_id))
        self._pending[key] = set(member_ids) | self._services  # the newest change wins
        await self._unbind_pending()

    async def _unbind_pending(self) -> None:
        """Single flight: one listing of the exchange's bindings at a time, serving every change
        made meanwhile. Without it, each of many concurrent changes (one user joining and
        leaving rooms in a loop) would list every binding of the cluster on its own."""
        async with self._flush:
            pending, self._pending = self._pending, {}
            if not pending:  # a flush that started after our change took it
                return
            try:
                for binding in await self._admin.bindings_of(pending.keys()):
                    client = subscription_queue_client(binding.queue)
                    if client is None or client.partition(":")[0] in pending[binding.routing_key]:
                        continue
                    await self._admin.delete_binding(binding)
                    logger.info("unbound %s from %s: no longer a receiver", binding.queue,
                                binding.routing_key)
            except RabbitAdminError as exc:
                logger.warning("could not unbind former receivers of %s: %s",
                               ", ".join(pending), exc)

    async def _close_all(self, user_id: str, reason: str) -> None:
        try:
            await self._admin.close_user_connections(user_id, reason)
            logger.info("closed %s's connections: %s", user_id, reason)
        except RabbitAdminError as exc:
            logger.warning("could not close %s's connections: %s", user_id, exc)

    async def session_ended(self, user_id: str, session_id: str, until: int) -> None:
        await self._directory.session_ended(user_id, session_id, until)
        await self._close_all(user_id, "session ended")

    async def user_banned(self, user_id: str, banned: bool) -> None:
        await self._directory.user_banned(user_id, banned)
        if banned:
            await self._close_all(user_id, "banned")

    async def rules_changed(self, rules: Sequence[ExtraRule]) -> None:
        # Extra rules grant topics outside the mqim tree; a withdrawn one holds on a live
        # subscription until the client reconnects (as on EMQX and VerneMQ).
        await self._directory.rules_changed(rules)


@asynccontextmanager
async def rabbitmq_access(settings: Settings, directory: ModelDirectory,
                          management_url: str) -> AsyncIterator[AccessSync]:
    async with RabbitAdmin(management_url) as admin:
        yield RabbitmqAccess(directory, admin, settings)
