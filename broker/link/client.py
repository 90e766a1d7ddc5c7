"""MQTT clients of our own services (bridge, API publisher): where they connect and as whom.

MQIM_BROKER_URL may name several hosts of one cluster (`mqtt://u:p@h1:1883,h2:1883`): a
ServiceConnector hands out a client for each in turn, so a publisher whose node died reconnects
to the next one.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from dataclasses import dataclass, field

import aiomqtt

from config import Settings
from config.hosts import Endpoint, parse_mqtt_hosts


@dataclass(frozen=True)
class ServiceEndpoint:
    host: str  # the first of `hosts`: where single-host clients (Mosquitto mode) connect
    port: int
    username: str
    password: str
    hosts: tuple[Endpoint, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.hosts:
            object.__setattr__(self, "hosts", (Endpoint(self.host, self.port),))


def derive_service_password(jwt_secret: str, username: str) -> str:
    """The embedded broker password of a service account, derived from the JWT secret."""
    digest = hmac.new(jwt_secret.encode(), f"mqtt-service:{username}".encode(), hashlib.sha256)
    return digest.hexdigest()


def service_endpoint(settings: Settings) -> ServiceEndpoint:
    """Where and as whom our services connect: the embedded listener, or MQIM_BROKER_URL."""
    if settings.embedded_broker:
        return ServiceEndpoint(
            host=settings.mqtt.host,
            port=settings.mqtt.port,
            username=settings.bridge_username,
            password=derive_service_password(settings.jwt_secret, settings.bridge_username),
        )
    url = parse_mqtt_hosts(settings.broker_url)
    first = url.endpoints[0]
    return ServiceEndpoint(first.host, first.port, url.username, url.password, url.endpoints)


def service_client(
    settings: Settings, client_id: str, *, clean_session: bool = True
) -> aiomqtt.Client:
    """An aiomqtt client (MQTT 3.1.1, which every broker we support speaks) for a service, on
    the first host of MQIM_BROKER_URL. ServiceConnector for one that moves on to the others."""
    endpoint = service_endpoint(settings)
    return _client(endpoint, endpoint.hosts[0], client_id, clean_session)


class ServiceConnector:
    """Makes a service's aiomqtt clients, each call on the next host of MQIM_BROKER_URL (round
    robin, so a reconnect starts after the host that failed). `len()` is the number of hosts.

    With clean sessions every client after the first gets a fresh id (`{client_id}-r{n}`): a
    cluster may hold the old id's state on a dead node (RabbitMQ 3.10 then never completes that
    id's SUBSCRIBE). A persistent session keeps its id.
    """

    def __init__(self, settings: Settings, client_id: str, *, clean_session: bool = True) -> None:
        self._endpoint = service_endpoint(settings)
        self._client_id, self._clean = client_id, clean_session
        self._made = 0

    def __len__(self) -> int:
        return len(self._endpoint.hosts)

    def __call__(self) -> aiomqtt.Client:
        hosts = self._endpoint.hosts
        host = hosts[self._made % len(hosts)]
        client_id = self._client_id
        if self._made and self._clean:
            client_id = f"{client_id}-r{self._made}"
        self._made += 1
        return _client(self._endpoint, host, client_id, self._clean)


def _client(endpoint: ServiceEndpoint, host: Endpoint, client_id: str,
            clean_session: bool) -> aiomqtt.Client:
    return aiomqtt.Client(
        host.host,
        host.port,
        identifier=client_id,
        username=endpoint.username,
        password=endpoint.password,
        clean_session=clean_session,
        keepalive=30,
        max_queued_outgoing_messages=100_000,
        # Request/response over MQTT (control commands, acks) otherwise waits ~40 ms on Nagle.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
