"""The few calls of RabbitMQ's management HTTP API that make an access change take effect on
live MQTT sessions (mqim/rabbitmq_sync.py): close a user's connections, list and delete the
bindings of some routing keys on the MQTT exchange. The URL may name several nodes
(`http://u:p@h1:15672,h2:15672`); a call that cannot reach one node goes to the next."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from config.hosts import parse_management_hosts
from contract.hooks_rabbitmq import MQTT_EXCHANGE, MQTT_VHOST

logger = logging.getLogger(__name__)

TIMEOUT = 10.0


def _seg(value: str) -> str:
    """One path segment (vhost `/` is `%2F`)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class Binding:
    queue: str
    routing_key: str
    properties_key: str


class RabbitAdminError(Exception):
    """The management API refused or could not be reached."""


class RabbitAdmin:
    """A management API client for the MQTT vhost and exchange. `url` is
    `http://user:password@host:15672[,host2:15672…]` (an administrator of the internal backend);
    a ConfigError if malformed."""

    def __init__(self, url: str, *, vhost: str = MQTT_VHOST,
                 exchange: str = MQTT_EXCHANGE) -> None:
        servers = parse_management_hosts(url)
        path = servers.path.rstrip("/")
        self._bases = [f"{servers.scheme}://{host}{path}" for host in servers.endpoints]
        self._current = 0  # the node that answered last: calls start there
        self._http = httpx.AsyncClient(timeout=TIMEOUT,
                                       auth=(servers.username, servers.password))
        self._vhost, self._exchange = vhost, exchange

    async def __aenter__(self) -> RabbitAdmin:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        failures: list[str] = []
        for _ in self._bases:
            base = self._bases[self._current]
            try:
                reply = await self._http.request(method, f"{base}/api/{path}", **kwargs)
                break
            except httpx.TransportError as exc:  # node down or unreachable: try the next one
                failures.append(f"{base}: {exc!r}")
                self._current = (self._current + 1) % len(self._bases)
        else:
            raise RabbitAdminError(f"{method} /api/{path}: {'; '.join(failures)}")
        if reply.status_code == 404 and method == "DELETE":
            return None  # already gone (closed, unbound) meanwhile: the goal is reached
        if reply.status_code >= 300:
            raise RabbitAdminError(f"{method} /api/{path}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else None

    async def close_user_connections(self, username: str, reason: str) -> None:
        """Close every connection of the user on every node. Connection tracking answers at
        once; the plain connection list lags by the statistics interval (5 s)."""
        await self._call("DELETE", f"connections/username/{_seg(username)}",
                         headers={"X-Reason": reason})

    async def bindings_of(self, routing_keys: Collection[str]) -> list[Binding]:
        """The queues bound to the exchange with exactly one of these routing keys (the API has
        no filter by key: one listing of the exchange's bindings serves them all)."""
        rows = await self._call(
            "GET", f"exchanges/{_seg(self._vhost)}/{_seg(self._exchange)}/bindings/source")
        return [Binding(row["destination"], row["routing_key"], row["properties_key"])
                for row in rows
                if row.get("destination_type") == "queue"
                and row.get("routing_key") in routing_keys]

    async def delete_binding(self, binding: Binding) -> None:
        await self._call("DELETE", f"bindings/{_seg(self._vhost)}/e/{_seg(self._exchange)}/q/"
                                   f"{_seg(binding.queue)}/{_seg(binding.properties_key)}")
