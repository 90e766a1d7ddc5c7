"""What RabbitMQ's HTTP auth backend (rabbitmq_auth_backend_http, 3.10) asks mqim, and how its
routing keys map back to mqim topics (docs/deploy-cluster.md).

The backend sends form fields (GET query or POST body) and reads a text/plain reply: `allow`,
`deny`, or on the user path `allow <tags>`. Field names follow RabbitMQ. The MQTT plugin adds
`client_id` to every request (and `variable_map.*` to topic checks).

Routing keys: the MQTT plugin turns every `/` of a topic into `.`, `+` into `*`, and on delivery
every `.` back into `/`. Ids may contain dots, so a key is mapped back knowing the topic tree:
under the prefix, the first level after it is the kind and all the rest is one id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ALLOW, DENY = "allow", "deny"
# The queues the MQTT plugin declares for a client's subscriptions, one per QoS.
SUBSCRIPTION_QUEUE_PREFIX = "mqtt-subscription-"
SUBSCRIPTION_QUEUE_SUFFIXES = ("qos0", "qos1")
# The exchange the MQTT plugin publishes to and binds from (`mqtt.exchange`, left at default).
MQTT_EXCHANGE = "amq.topic"
# The only virtual host mqim's users may open (`mqtt.vhost`, left at default).
MQTT_VHOST = "/"


class _Ask(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    username: str
    # Sent by the MQTT plugin; absent for AMQP and management logins.
    client_id: str | None = None


class RabbitUser(_Ask):
    """`user_path`: may this user log in with this password?"""

    password: str | None = None
    vhost: str | None = None


class RabbitVhost(_Ask):
    """`vhost_path`: may this (already authenticated) user open this virtual host?"""

    vhost: str
    ip: str | None = None


class RabbitResource(_Ask):
    """`resource_path`: may the user configure, write or read this exchange or queue?"""

    vhost: str
    resource: Literal["exchange", "queue", "topic"]
    name: str
    permission: Literal["configure", "write", "read"]


class RabbitTopic(_Ask):
    """`topic_path`: may the user publish (write) to, or bind for reading (read), this routing
    key on the exchange `name`? A read check's key is a subscription filter."""

    vhost: str
    resource: Literal["topic"]
    name: str
    permission: Literal["write", "read"]
    routing_key: str
    mqtt_client_id: str | None = Field(default=None, alias="variable_map.client_id")


def subscription_queue_client(name: str) -> str | None:
    """The MQTT client id whose subscription queue `name` is, or None if it is no such queue."""
    if not name.startswith(SUBSCRIPTION_QUEUE_PREFIX):
        return None
    rest = name[len(SUBSCRIPTION_QUEUE_PREFIX):]
    for suffix in SUBSCRIPTION_QUEUE_SUFFIXES:
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)]
    return None


def topic_to_routing_key(topic: str) -> str:
    """The routing key the MQTT plugin publishes `topic` (a concrete topic) with."""
    return topic.replace("/", ".")


def routing_key_to_topic(key: str, prefix: str) -> str:
    """The MQTT topic or filter behind the routing key `key`, for the topic tree `prefix`.

    Under the prefix, `prefix.kind.rest` is `prefix/kind/rest` with the dots of `rest` kept
    (ids never contain `/`). Elsewhere, and for wildcard keys, every `.` was a `/`: such keys
    are rule topics or filters only service accounts may use, and the rule judges them as
    written (an extra-rule topic with a dot in a level cannot be told apart on RabbitMQ).
    """
    words = key.split(".")
    mqtt_words = ["+" if w == "*" else w for w in words]
    head = prefix.replace("/", ".").split(".")
    n = len(head)
    if words[:n] == head and len(words) >= n + 2 and not {"*", "#"} & set(words[n:]):
        return f"{prefix}/{words[n]}/{'.'.join(words[n + 1:])}"
    return "/".join(mqtt_words)
