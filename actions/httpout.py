"""The server's own outgoing HTTP requests (push sends, webhook deliveries): POST a body, get the
status and at most a bounded answer. Addresses are checked first by actions/outbound.py.

    async with session(timeout) as http:
        reply = await post(http, url, body, headers, read_max=ANSWER_MAX)

aiohttp rather than httpx: a wave of pushes is one POST per offline member, and with 20 in
flight httpx's AsyncClient spent about 2,600 µs of CPU per POST against aiohttp's 135 µs (same
receiver, same machine; docs/performance.md). No redirects (one could point inside the
network), no proxies from the environment, and an answer is never buffered beyond `read_max`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

CONNECTIONS = 100  # per session: concurrency is bounded by the callers' semaphores anyway
ANSWER_MAX = 64 * 1024


class OutboundError(Exception):
    """The request did not get an answer: refused, reset, timed out, or an answer too large."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes  # at most the `read_max` asked for; b"" when none was asked

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@asynccontextmanager
async def session(timeout: float) -> AsyncIterator[aiohttp.ClientSession]:  # noqa: ASYNC109
    """A client session for one pass of sends; `timeout` bounds each request as a whole."""
    async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False,
            connector=aiohttp.TCPConnector(limit=CONNECTIONS),
            skip_auto_headers=("User-Agent",), auto_decompress=False) as http:
        yield http


async def post(http: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str],
               *, read_max: int = 0) -> Reply:
    """POST `body`; the status, and up to `read_max` bytes of the answer (OutboundError if it
    is longer: it is refused while reading, not after)."""
    try:
        async with http.post(url, data=body, headers=dict(headers),
                             allow_redirects=False) as answer:
            chunks: list[bytes] = []
            size = 0
            if read_max:
                async for chunk in answer.content.iter_chunked(16 * 1024):
                    size += len(chunk)
                    if size > read_max:
                        raise OutboundError(f"the answer is over {read_max} bytes")
                    chunks.append(chunk)
            return Reply(answer.status, b"".join(chunks))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OutboundError(f"{type(exc).__name__}: {exc}"[:200]) from exc
