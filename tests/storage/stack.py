"""An `mqim serve` stack (embedded broker, SQLite) whose uploads go to a moto S3 bucket: for
tests/api/test_uploads.py and bench/upload_bench.py.

tests/stacks.py's `settings_env` passes no storage settings yet, so this sets
MQIM_STORAGE_URL and MQIM_MAX_UPLOAD_BYTES itself."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from config.urls import parse_storage_url
from storage import S3Storage
from tests.helpers import make_settings
from tests.stacks import Stack, settings_env, stop_mqim
from tests.storage.moto import moto_server, storage_url

STARTUP_SECONDS = 60


def _tail(path: Path) -> str:
    return path.read_text()[-3000:]


@contextlib.asynccontextmanager
async def s3_stack(workdir: Path, bucket: str = "mqim-uploads",
                   **overrides: Any) -> AsyncIterator[Stack]:
    async with moto_server(workdir / "moto.log") as endpoint:
        url = storage_url(endpoint, bucket)
        await S3Storage(parse_storage_url(url, workdir)).ensure_bucket()
        settings = make_settings(workdir, storage_url=url, **overrides)
        env = settings_env(settings)
        env["MQIM_STORAGE_URL"] = settings.storage_url
        env["MQIM_MAX_UPLOAD_BYTES"] = str(settings.max_upload_bytes)
        log_path = workdir / "mqim.log"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mqim", "serve", env=env, stdout=log, stderr=log)
        stack = Stack(settings, process, log_path)
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                async with asyncio.timeout(STARTUP_SECONDS):
                    while True:
                        assert process.returncode is None, _tail(log_path)
                        try:
                            health = await client.get(f"http://{settings.http}/health")
                            if health.status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.05)  # polling /health, not synchronising
            yield stack
        finally:
            await stop_mqim(stack)
