"""What the embedded broker tells operators: one log line per MQTT connect, disconnect and
refusal, its Prometheus metrics, and quiet handling of the client errors its libraries log
as tracebacks (docs/operations.md).

    install_log_filters()          once per process, before the listeners start

Lines (logger `broker.connections`), each with the same fields in JSON logs:
    MQTT connect user=alice client=alice:phone from=127.0.0.1:50312
    MQTT refused user=alice client=bob:x from=127.0.0.1:50314 reason=client id is not theirs
    MQTT disconnect user=alice client=alice:phone reason=closed without DISCONNECT
"""

from __future__ import annotations

import logging
from collections.abc import Sized

from prometheus_client import Counter, Gauge

logger = logging.getLogger("broker.connections")

# Registered by the first `watch()`, so it is absent from processes without the embedded
# broker (GET /api/admin/stats then answers `connections: null`).
_CONNECTED: list[Gauge] = []
CONNECTS = Counter(
    "mqim_mqtt_connects_total",
    "CONNECTs the embedded broker answered, by result (accepted or the refusal's reason)",
    ["result"])
DISCONNECTS = Counter(
    "mqim_mqtt_disconnects_total", "Connections of the embedded broker that ended, by reason",
    ["reason"])
DENIED = Counter(
    "mqim_mqtt_acl_denials_total",
    "Publishes and subscribes the embedded broker's ACL refused (each refused publish is "
    "answered with an error event, code 1004)", ["action"])


def _fields(user: str | None, client_id: str | None, **more: object) -> dict[str, object]:
    return {"fields": {"user_id": user or None, "client_id": client_id or None, **more}}


def connected(user: str | None, client_id: str | None, peer: str) -> None:
    CONNECTS.labels(result="accepted").inc()
    logger.info("MQTT connect user=%s client=%s from=%s", user, client_id, peer,
                extra=_fields(user, client_id, peer=peer, event="connect"))


def refused(user: str | None, client_id: str | None, peer: str, reason: str) -> None:
    CONNECTS.labels(result=reason).inc()
    logger.info("MQTT refused user=%s client=%s from=%s reason=%s", user or "-", client_id,
                peer, reason, extra=_fields(user, client_id, peer=peer, event="refused",
                                            reason=reason))


def disconnected(user: str | None, client_id: str | None, reason: str, *,
                 level: int = logging.INFO) -> None:
    DISCONNECTS.labels(reason=reason).inc()
    logger.log(level, "MQTT disconnect user=%s client=%s reason=%s", user, client_id, reason,
               extra=_fields(user, client_id, event="disconnect", reason=reason))


def denied(user: str, action: str, topic: str) -> None:
    DENIED.labels(action=action).inc()
    logger.info("MQTT denied %s user=%s topic=%s", action, user, topic,
                extra=_fields(user, None, event="denied", action=action, topic=topic))


class _QuietHandshakes(logging.Filter):
    """websockets logs a refused WebSocket handshake (a missing or wrong subprotocol, a plain
    HTTP request, a client that hung up) as an ERROR with an 18-line traceback, after an INFO
    "connection rejected": that is a client's mistake, so it becomes one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "connection rejected (%d %s)":
            return False  # the WARNING below says it, with the reason
        if record.msg == "opening handshake failed" and record.exc_info:
            exc = record.exc_info[1]
            websocket = getattr(record, "websocket", None)
            peer = getattr(websocket, "remote_address", None)
            where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
            reason = f"{exc}" or type(exc).__name__
            if exc is not None and exc.__cause__ is not None:
                reason = f"{reason}: {exc.__cause__}"
            record.msg, record.args = "MQTT WebSocket handshake from %s refused: %s", (where,
                                                                                         reason)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.fields = {"peer": where, "event": "refused", "reason": reason}
        return True


class _RefusalsLoggedOnce(logging.Filter):
    """amqtt repeats, at WARNING, a refusal `refused()` has already logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "refused, CONNACK return code" not in record.getMessage()


def install_log_filters() -> None:
    """Idempotent: a filter already present is not added twice."""
    for name, cls in (("websockets.server", _QuietHandshakes),
                      ("amqtt.broker", _RefusalsLoggedOnce)):
        target = logging.getLogger(name)
        if not any(isinstance(f, cls) for f in target.filters):
            target.addFilter(cls())


def watch(connections: Sized) -> None:
    """Before the listeners start: the connected-clients gauge follows `connections` (the
    plugins' registry of users' connections), and the log filters are in place."""
    if not _CONNECTED:
        _CONNECTED.append(Gauge(
            "mqim_mqtt_connected_clients",
            "Users' MQTT connections open on the embedded broker (service clients excluded)"))
    _CONNECTED[0].set_function(lambda: len(connections))
    install_log_filters()
