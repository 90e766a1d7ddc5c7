"""CPU-time profiles of the server under the bench, with cProfile: where mqim's CPU per message
goes, function by function.

`mqim_bench.py --cprofile DIR` starts the stacks with bench/cprofile_hook/ on their PYTHONPATH,
turns a cProfile on in the `mqim serve` process for each measured max-rate pipeline only (by
signals) and writes DIR/<mode>-<scenario>.pstats. Unlike py-spy's samples (--profile), which
count wall time on the thread holding the GIL, cProfile's clock here is the process's CPU time:
a socket write that the kernel parks while PostgreSQL runs counts only what it cost. cProfile
slows every Python call, so the profiled run's own speeds are not figures. Read again with:

    .venv/bin/python bench/profile_cprofile.py DIR/mosquitto-direct.pstats --top 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
from pathlib import Path

HOOK = Path(__file__).parent / "cprofile_hook"
REPO = Path(__file__).parents[1]
ENV = "BENCH_CPROFILE_OUT"  # not MQIM_*: the stacks pass no MQIM_* variable of the bench's on


def enable_for_servers(directory: Path) -> None:
    """Make the processes started from now on profilable (the hook does nothing until told)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(directory / "dump")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HOOK), os.environ.get("PYTHONPATH", "")) if p)


class CpuRecording:
    """A cProfile of the server process from `start()` to `stop()`, saved to `out`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out

    async def start(self) -> None:
        os.kill(self.pid, signal.SIGUSR1)
        await asyncio.sleep(0.1)

    async def stop(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)
        dump = Path(f"{os.environ[ENV]}.{self.pid}")
        for _ in range(100):  # written by the server's signal handler, between two callbacks
            if _moved(dump, self.out):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the server wrote no profile to {dump}")


def _moved(dump: Path, out: Path) -> bool:
    if not dump.exists():  # the hook renames it into place once written
        return False
    dump.replace(out)
    return True


def top_table(path: Path, n: int = 10) -> str:
    """The top `n` functions by own CPU time, as a markdown table."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    lines = [f"top {n} by own CPU time, {path.name}: {total:.2f} CPU-s profiled",
             "| # | function (file) | own % | calls |", "|---|---|---|---|"]
    for rank, ((file, line, name), (_, calls, own, _, _)) in enumerate(rows[:n], 1):
        short = (file.split("site-packages/")[-1] if "site-packages/" in file
                 else file.removeprefix(f"{REPO}/") if file.startswith(f"{REPO}/")
                 else "/".join(file.split("/")[-2:]))  # the stdlib's
        lines.append(f"| {rank} | {name} ({short}:{line}) | {own / total:.1%} | {calls:,} |")
    return "\n".join(lines)


def print_profiles(directory: Path, n: int = 10) -> None:
    for path in sorted(directory.glob("*.pstats")):
        print("\n" + top_table(path, n))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, nargs="+", help="a .pstats file of --cprofile")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    for path in args.profile:
        print(top_table(path, args.top) + "\n")  # noqa: T201


if __name__ == "__main__":
    main()
