"""mqim_client: a Python client for an mqim server (docs/sdk.md).

    client = Client("http://127.0.0.1:8000")
    await client.login("alice", "pass-word-1")
    await client.connect()
    await client.send(thread_id, "hello")
    async for event in client.events(): ...

It speaks HTTP and MQTT only, and imports nothing of the server.
"""

import logging

from mqim_client.api import MqttCredentials, Session
from mqim_client.client import Client
from mqim_client.errors import (
    ApiError,
    CommandError,
    MqimClientError,
    NotLoggedInError,
    SendTimeoutError,
    ServerError,
    SessionEndedError,
)
from mqim_client.events import (
    AckEvent,
    ActionResult,
    DownlinkEvent,
    ErrorEvent,
    MessageEditEvent,
    MessageEvent,
    MessageReactionEvent,
    MessageUnsendEvent,
    PollUpdateEvent,
    PresenceEvent,
    ReadReceiptEvent,
    SendResult,
    ThreadAddedEvent,
    ThreadLogEvent,
    ThreadRemovedEvent,
    TimelineEntry,
    TypingEvent,
)
from mqim_client.link import Stats

logging.getLogger("mqim_client").addHandler(logging.NullHandler())  # a library: the app decides

__all__ = [
    "AckEvent", "ActionResult", "ApiError", "Client", "CommandError", "DownlinkEvent",
    "ErrorEvent", "MessageEditEvent", "MessageEvent", "MessageReactionEvent", "MessageUnsendEvent",
    "MqimClientError", "MqttCredentials", "NotLoggedInError", "PollUpdateEvent", "PresenceEvent",
    "ReadReceiptEvent", "SendResult", "SendTimeoutError", "ServerError", "Session",
    "SessionEndedError", "Stats", "ThreadAddedEvent", "ThreadLogEvent", "ThreadRemovedEvent",
    "TimelineEntry", "TypingEvent",
]
