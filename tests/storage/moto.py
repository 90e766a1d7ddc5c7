"""A real S3-compatible server for the tests: moto's standalone server as a subprocess on a free
loopback port (no AWS network, no stub of our code), and the storage URL that points at it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.helpers import free_port

STARTUP_SECONDS = 30
# moto accepts any credentials; these only have to be well formed.
ACCESS_KEY = "mqimtest"
SECRET_KEY = "mqimtest-secret"  # moto's dummy credential


def storage_url(endpoint: str, bucket: str, prefix: str = "") -> str:
    path = f"/{prefix}" if prefix else ""
    return (f"s3://{bucket}{path}?endpoint={endpoint}&region=us-east-1"
            f"&access_key={ACCESS_KEY}&secret_key={SECRET_KEY}")


def _tail(path: Path) -> str:
    return path.read_text()[-2000:]


@contextlib.asynccontextmanager
async def moto_server(log_path: Path) -> AsyncIterator[str]:
    """`python -m moto.server` until the block exits; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port),
            stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"moto exited:\n{_tail(log_path)}")
                try:
                    if (await client.get(f"{endpoint}/moto-api/")).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"moto never answered:\n{_tail(log_path)}")
                await asyncio.sleep(0.05)  # polling its port, not synchronising
        yield endpoint
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
