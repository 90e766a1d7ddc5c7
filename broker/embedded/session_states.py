"""A light stand-in for the state machine amqtt builds for every session.

amqtt 0.12.1 gives each `Session` its own `transitions.Machine` (three states, five transitions,
two callbacks); building it was about 40% of the embedded broker's CPU per CONNECT in a
connection storm. `SessionStates` has the same states, triggers, callbacks and errors, as far as
amqtt uses them (`state`, `connect()`, `disconnect()`, `is_connected()`, MachineError on a
trigger the state does not allow: the broker's take-over path relies on it), at the cost of a
dict lookup. `install()` makes new sessions use it; amqtt is pinned, and the tests exercise the
connect, take-over and disconnect paths through a real broker.
"""

from __future__ import annotations

from typing import Any

from amqtt.session import Session
from transitions import MachineError

# amqtt's own, kept for the test that checks SessionStates against it.
MACHINE_INIT_STATES = Session._init_states

_CONNECT = {"new": "connected", "disconnected": "connected"}
_DISCONNECT = {"new": "disconnected", "connected": "disconnected", "disconnected": "disconnected"}


class SessionStates:
    def __init__(self, session: Session) -> None:
        self._session = session
        self.state = "new"

    def _trigger(self, name: str, table: dict[str, str]) -> None:
        dest = table.get(self.state)
        if dest is None:
            raise MachineError(f"Can't trigger event {name} from state {self.state}!")
        self.state = dest

    def connect(self) -> bool:
        self._trigger("connect", _CONNECT)
        self._session._on_enter_connected()  # amqtt's own callback
        return True

    def disconnect(self) -> bool:
        self._trigger("disconnect", _DISCONNECT)
        # transitions runs on_enter for a reflexive transition too (disconnected -> disconnected)
        self._session._on_enter_disconnected()  # amqtt's own callback
        return True

    def is_new(self) -> bool:
        return self.state == "new"

    def is_connected(self) -> bool:
        return self.state == "connected"

    def is_disconnected(self) -> bool:
        return self.state == "disconnected"


def _init_states(self: Any) -> None:
    self.transitions = SessionStates(self)


def install() -> None:
    """Make every Session created from now on use SessionStates (idempotent)."""
    setattr(Session, "_init_states", _init_states)  # noqa: B010  # mypy: no method assignment
