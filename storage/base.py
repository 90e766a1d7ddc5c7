"""The storage protocol every backend keeps, and the metering both share.

`put` consumes an async stream of chunks and stops as soon as the running count passes
`max_bytes` (TooLargeError), after removing whatever it had stored: nothing over the cap is ever
read further or kept. Keys are ours (actions/uploads.py makes them), never a client's file name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

# Keys are "<prefix>/<id>" of letters, digits, '_', '-' and '.' (no "..", no leading '/'), so a
# key is a safe relative path on disk and needs no escaping in S3.
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")


class TooLargeError(Exception):
    """The stream passed `max_bytes`; the backend has removed what it stored of it."""


@dataclass(frozen=True)
class Stored:
    size: int
    sha256: str


@dataclass(frozen=True)
class Download:
    """How to hand a stored object out: a URL to redirect to (S3, presigned), or the bytes."""

    url: str | None = None
    chunks: AsyncIterator[bytes] | None = None
    size: int | None = None


def check_key(key: str) -> str:
    if not _KEY_RE.fullmatch(key) or ".." in key:
        raise ValueError(f"bad storage key {key!r}")
    return key


def content_disposition(filename: str) -> str:
    """`attachment` with the name in RFC 5987 form (any script survives, nothing can break out
    of the header); the plain `filename=` fallback keeps ASCII letters, digits and `._-` only."""
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    return f"attachment; filename=\"{plain or 'file'}\"; filename*=UTF-8''{quote(filename)}"


class Meter:
    """Counts and hashes a stream, raising TooLargeError once it passes `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()

    async def stream(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise TooLargeError(f"over {self.max_bytes} bytes")
            self._hash.update(chunk)
            yield chunk

    def result(self) -> Stored:
        return Stored(self.size, self._hash.hexdigest())


class Storage(Protocol):
    """A place for uploaded files. Every method may raise OSError (or the backend's own client
    errors) when the store is unreachable."""

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int,
                  content_type: str) -> Stored:
        """Store the stream under `key`; TooLargeError (nothing kept) past `max_bytes`."""
        ...

    async def get(self, key: str, *, filename: str, content_type: str) -> Download:
        """A presigned URL (backends that have them) or the bytes; FileNotFoundError if absent.
        `filename` and `content_type` are what a presigned URL makes the store answer with."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes as a stream; FileNotFoundError (when iterated) if absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; no error if it is already gone."""
        ...

    async def exists(self, key: str) -> bool:
        ...
