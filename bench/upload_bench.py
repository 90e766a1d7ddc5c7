"""Upload and download throughput: one 20 MB file through `POST /api/uploads` and
`GET /api/uploads/{id}`, against a plain disk copy of the same file in the same run.

Starts real stacks as the tests do: `mqim serve` (embedded, SQLite) with the default local-disk
backend, and one whose backend is S3 (moto's standalone server, tests/storage/stack.py). Times,
over real HTTP on loopback, the median of `--runs` uploads and downloads (S3: the 302 and then
the presigned GET from moto), and for comparison `shutil.copyfile` of the file on the same disk
and, for S3, the storage backend called directly (no HTTP, no mqim), which shows what moto
itself costs.

    .venv/bin/python bench/upload_bench.py --mb 20 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import S3Storage  # after the path fix above
from tests.helpers import Account, register
from tests.stacks import Stack, running_stack
from tests.storage.stack import s3_stack

CHUNK = 256 * 1024


async def timed(runs: int, step: Callable[[], Awaitable[object]]) -> float:
    """Median seconds of `runs` calls."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:  # the bench's own reads, not the server's
        while chunk := fh.read(CHUNK):
            yield chunk


async def through_http(stack: Stack, source: Path, runs: int) -> tuple[float, float]:
    """(upload, download) median seconds for `source` through the stack's HTTP API."""
    async with httpx.AsyncClient(base_url=f"http://{stack.settings.http}", timeout=120) as http:
        owner: Account = await register(http)
        expected = await asyncio.to_thread(lambda: source.stat().st_size)
        url = ""

        async def up() -> None:
            nonlocal url
            with source.open("rb") as fh:
                answer = await http.post("/api/uploads", headers=owner.auth,
                                         files={"file": (source.name, fh)})
            if answer.status_code != 201:
                raise RuntimeError(f"upload failed: {answer.text}")
            url = answer.json()["data"]["url"]

        async def down() -> None:
            size = 0
            async with http.stream("GET", url, headers=owner.auth) as answer:
                if answer.status_code == 302:  # S3: fetch from the presigned URL
                    async with http.stream("GET", answer.headers["location"]) as s3:
                        async for chunk in s3.aiter_bytes(CHUNK):
                            size += len(chunk)
                else:
                    async for chunk in answer.aiter_bytes(CHUNK):
                        size += len(chunk)
            if size != expected:
                raise RuntimeError(f"downloaded {size} bytes of {expected}")

        upload_s = await timed(runs, up)
        return upload_s, await timed(runs, down)


async def direct_s3(stack: Stack, source: Path, runs: int) -> tuple[float, float]:
    """(put, read) median seconds of the S3 backend called in-process, no mqim in between."""
    storage = S3Storage(stack.settings.storage())
    size = await asyncio.to_thread(lambda: source.stat().st_size)

    async def put() -> None:
        await storage.put("bench/direct", file_chunks(source), max_bytes=size,
                          content_type="application/octet-stream")

    async def read() -> None:
        got = 0
        async for chunk in storage.read("bench/direct"):
            got += len(chunk)
        if got != size:
            raise RuntimeError(f"read {got} bytes of {size}")

    put_s = await timed(runs, put)
    return put_s, await timed(runs, read)


def row(name: str, seconds: float, mb: float, baseline: float) -> str:
    return (f"| {name} | {seconds * 1000:.0f} ms | {mb / seconds:.0f} MB/s "
            f"| {seconds / baseline:.1f}x |")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=20, help="file size in MB (default 20)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per step (default 5)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 (moto) stack")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mqim-upload-bench-") as tmp:
        work = Path(tmp)
        source = work / "payload.bin"
        source.write_bytes(os.urandom(args.mb * 1_000_000))
        mb = args.mb
        copy_s = await timed(args.runs, lambda: asyncio.to_thread(
            shutil.copyfile, source, work / "copy.bin"))
        lines = ["| step | median | throughput | vs disk copy |", "|---|---|---|---|",
                 row("disk copy (shutil.copyfile)", copy_s, mb, copy_s)]
        (work / "local").mkdir()
        async with running_stack("embedded", work / "local", max_upload_bytes=args.mb * 2_000_000
                                 ) as stack:
            up, down = await through_http(stack, source, args.runs)
        lines += [row("local: POST /api/uploads", up, mb, copy_s),
                  row("local: GET /api/uploads/{id}", down, mb, copy_s)]
        if not args.no_s3:
            (work / "s3").mkdir()
            async with s3_stack(work / "s3", max_upload_bytes=args.mb * 2_000_000) as stack:
                up, down = await through_http(stack, source, args.runs)
                put, read = await direct_s3(stack, source, args.runs)
            lines += [row("S3 (moto): POST /api/uploads", up, mb, copy_s),
                      row("S3 (moto): GET, 302, presigned GET", down, mb, copy_s),
                      row("S3 (moto) backend direct: put", put, mb, copy_s),
                      row("S3 (moto) backend direct: read", read, mb, copy_s)]
    print(f"{mb} MB file, median of {args.runs} runs each\n")  # noqa: T201
    print("\n".join(lines))  # noqa: T201
    print(f"\n    .venv/bin/python bench/upload_bench.py {shlex.join(sys.argv[1:])}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
