"""What the database benches share (threadlist_bench.py, search_bench.py, receipts_bench.py):
their `--db` and `--child` options, a header naming the command and the time, and `--db both`
run as one child process per database (tortoise keeps per-dialect SQL on the models, so a process
opens one kind of database)."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path


def db_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser


def print_header() -> None:
    """The command line and the time, so a pasted output says how and when it was made."""
    command = shlex.join([Path(sys.executable).as_posix(), *sys.argv])
    print(f"$ {command}\n# {datetime.now(UTC).isoformat(timespec='seconds')}",  # noqa: T201
          flush=True)


async def each_database(script: str, args: Sequence[str]) -> int:
    """Run `script --db D *args --child` for SQLite, then PostgreSQL; the worse exit code."""
    codes = []
    for db in ("sqlite", "postgres"):
        child = await asyncio.create_subprocess_exec(
            sys.executable, script, "--db", db, *args, "--child")
        codes.append(await child.wait())
    return max(codes)
