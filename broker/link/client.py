"""MQTT clients of our own services (bridge, API publisher): where they connect and as whom."""

from __future__ import annotations

import hashlib
import hmac
import socket
from dataclasses import dataclass

import aiomqtt

from config import Settings


@dataclass(frozen=True)
class ServiceEndpoint:
    host: str
    port: int
    username: str
    password: str


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
    url = settings.external_broker()
    return ServiceEndpoint(url.host, url.port, url.username, url.password)


def service_client(
    settings: Settings, client_id: str, *, clean_session: bool = True
) -> aiomqtt.Client:
    """An aiomqtt client (MQTT 3.1.1, which every broker we support speaks) for a service."""
    endpoint = service_endpoint(settings)
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        identifier=client_id,
        username=endpoint.username,
        password=endpoint.password,
        clean_session=clean_session,
        keepalive=30,
        max_queued_outgoing_messages=100_000,
        # Request/response over MQTT (control commands, acks) otherwise waits ~40 ms on Nagle.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
