"""The keep-alive of one embedded-broker connection (MQTT-3.1.2-24), for wire.py's reader loop.

Silence longer than `idle` while the reader waits for a packet cancels the reader, as an
`asyncio.timeout(idle)` around each read would. That costs a timer and several loop look-ups
per packet (on CPython 3.11 each look-up is a getpid() syscall: 6.6% of the embedded broker's
CPU). Here a read only moves a deadline (a float), and the one timer of the connection is
re-armed when it fires, for the latest deadline: about once per `idle`, whatever the traffic.
"""

from __future__ import annotations

import asyncio

# A timer may fire this much before its time (uvloop counts in milliseconds): a deadline that
# close counts as reached, so the timer never spins re-arming itself for a fraction of a ms.
_SLACK = 0.002


class KeepAlive:
    """`reading()` before awaiting a packet, `read()` once it came; `expired` tells a
    CancelledError of the reader task that this raised from one from elsewhere."""

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None],
                 idle: float) -> None:
        self._loop, self._task, self._idle = loop, task, idle
        self._cancelling = task.cancelling()
        self._deadline: float | None = None  # while a read waits
        self._expired = False
        self._timer = loop.call_at(loop.time() + idle, self._check)

    def reading(self) -> None:
        self._deadline = self._loop.time() + self._idle

    def read(self) -> None:
        self._deadline = None

    def _check(self) -> None:
        # The timer never fires after the current deadline: a read starts with a deadline at
        # least `idle` after the timer was last armed.
        now = self._loop.time()
        if self._deadline is None:
            self._timer = self._loop.call_at(now + self._idle, self._check)
        elif self._deadline <= now + _SLACK:
            self._expired = True
            self._task.cancel()
        else:
            self._timer = self._loop.call_at(self._deadline, self._check)

    def expired(self) -> bool:
        """Whether the reader was cancelled for its silence (and by nothing else, which this
        then leaves to be handled as any cancellation): call once, on CancelledError."""
        return self._expired and self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        self._timer.cancel()
