"""Each thread's entries delivered once and in seq order, whichever way they arrive.

Entries reach the SDK live on the thread topic (at least once: a retried send publishes its
stored event again) and from `GET /api/threads/{id}/messages?after_seq=N` after a reconnect or a
gap. Per thread this keeps `delivered`, the highest seq handed to the app, and holds entries
that arrive ahead of it until the catch-up has fetched the ones in between. Seqs are gapless on
the server (docs/guarantees.md), so a live seq above `delivered + 1` means something was missed.
The only holes a member sees are before the first entry they may read (history visibility), and
the server's answer to a catch-up is authoritative about those.

No I/O here: the client fetches; this decides what to deliver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mqim_client.events import (
    MessageEditEvent,
    MessageEvent,
    MessageReactionEvent,
    MessageUnsendEvent,
    PollUpdateEvent,
    ThreadLogEvent,
)

# Everything with a seq of its own: messages, thread events and the actions on messages.
Entry = (MessageEvent | ThreadLogEvent | MessageReactionEvent | MessageUnsendEvent
         | MessageEditEvent | PollUpdateEvent)


class Timeline:
    def __init__(self, deliver: Callable[[Entry], None]) -> None:
        self._deliver = deliver
        self._delivered: dict[str, int] = {}
        self._held: dict[str, dict[int, Entry]] = {}
        self.duplicates = 0  # entries dropped because they were delivered (or held) already

    def positions(self) -> dict[str, int]:
        """The highest seq delivered per tracked thread (save it to resume later)."""
        return dict(self._delivered)

    def position(self, thread_id: str) -> int | None:
        return self._delivered.get(thread_id)

    def track(self, thread_id: str, seq: int) -> bool:
        """Start following a thread from `seq` (what the app has already); False if it was
        followed already, whose position stays."""
        if thread_id in self._delivered:
            return False
        self._delivered[thread_id] = seq
        self._held[thread_id] = {}
        return True

    def forget(self, thread_id: str) -> None:
        self._delivered.pop(thread_id, None)
        self._held.pop(thread_id, None)

    def tracked(self) -> set[str]:
        return set(self._delivered)

    def holding(self, thread_id: str) -> bool:
        return bool(self._held.get(thread_id))

    def offer(self, entry: Entry) -> bool:
        """A live entry. Delivers it (and what it unblocks) if it is next; drops a repeat;
        holds it otherwise. True when a catch-up is needed (something before it is missing)."""
        delivered = self._delivered.get(entry.thread_id)
        if delivered is None:  # not followed (left the thread): nothing to deliver
            return False
        held = self._held[entry.thread_id]
        if entry.seq <= delivered or entry.seq in held:
            self.duplicates += 1
            return False
        if entry.seq > delivered + 1:
            held[entry.seq] = entry
            return True
        self._advance(entry)
        self._drain(entry.thread_id)
        return False

    def fill(self, thread_id: str, entries: list[Entry]) -> None:
        """A page of the server's history after our position, oldest first: delivered as is
        (a jump there is a hole the member may not read, not a loss)."""
        if thread_id not in self._delivered:
            return  # forgotten meanwhile (we left the thread)
        for entry in entries:
            if entry.thread_id != thread_id:
                continue
            if entry.seq <= self._delivered[thread_id]:
                self.duplicates += 1
                continue
            if self._held[thread_id].pop(entry.seq, None) is not None:
                self.duplicates += 1  # it came live too: the server's copy is delivered instead
            self._advance(entry)
        self._drain(thread_id)

    def flush(self, thread_id: str) -> None:
        """Give up waiting for what is before the held entries: deliver them in order."""
        held = self._held.get(thread_id, {})
        for seq in sorted(held):
            self._advance(held.pop(seq))

    def _advance(self, entry: Entry) -> None:
        self._delivered[entry.thread_id] = entry.seq
        self._deliver(entry)

    def _drain(self, thread_id: str) -> None:
        held = self._held[thread_id]
        while (nxt := self._delivered[thread_id] + 1) in held:
            self._advance(held.pop(nxt))
        for seq in [seq for seq in held if seq <= self._delivered[thread_id]]:
            del held[seq]  # overtaken by a catch-up page
            self.duplicates += 1


def initial_positions(listed: Mapping[str, int], given: Mapping[str, int] | None, *,
                      first: bool) -> dict[str, int]:
    """Where to start each listed thread: the app's saved position; else, at the first connect,
    its current max_seq (a fresh client starts at now; its history is one GET away), and on a
    reconnect its beginning (we were added while away and missed `thread_added`)."""
    return {thread_id: (given or {}).get(thread_id, max_seq if first else 0)
            for thread_id, max_seq in listed.items()}
