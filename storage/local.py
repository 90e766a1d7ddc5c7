"""Uploads on local disk: `<root>/<key>`, written to a temporary name beside it and renamed into
place once complete, so a reader never sees half a file and a failed upload leaves nothing.

File I/O runs in worker threads (asyncio.to_thread) so a slow disk never stalls the event loop;
chunks are as the HTTP server hands them (tens of KiB), which keeps the thread hops few.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from storage.base import Download, Meter, Stored, check_key

READ_CHUNK = 256 * 1024


class LocalStorage:
    """The default backend: a directory (MQIM_STORAGE_URL=file:///...)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int,
                  content_type: str) -> Stored:
        path = self.path_of(key)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        meter = Meter(max_bytes)
        fh: BinaryIO = await asyncio.to_thread(partial.open, "xb")
        try:
            async for chunk in meter.stream(chunks):
                await asyncio.to_thread(fh.write, chunk)
            await asyncio.to_thread(_close_synced, fh)
            await asyncio.to_thread(os.replace, partial, path)
        except BaseException:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        return meter.result()

    async def get(self, key: str, *, filename: str, content_type: str) -> Download:
        path = self.path_of(key)
        size = (await asyncio.to_thread(path.stat)).st_size  # FileNotFoundError if gone
        return Download(chunks=self.read(key), size=size)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        fh = await asyncio.to_thread(self.path_of(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(fh.read, READ_CHUNK):
                yield chunk
        finally:
            fh.close()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path_of(key).unlink)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)


def _close_synced(fh: BinaryIO) -> None:
    """Flush to the disk before the rename makes the file visible (an OS crash must not leave
    a complete-looking name over missing bytes)."""
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
