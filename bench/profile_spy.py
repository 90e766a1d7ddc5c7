"""Sampling profiles of the server under the bench, with py-spy, and their top functions.

`mqim_bench.py --profile DIR` records the `mqim serve` process (and any children) during each
measured max-rate pipeline into DIR/<mode>-<scenario>.txt (py-spy's collapsed stacks, native
frames included) and prints the top functions by own time. py-spy stops the process briefly
at each sample, so a profiled run's speeds are not figures to compare: profile in a run of its
own. Read a saved profile again with:

    .venv/bin/python bench/profile_spy.py DIR/embedded-direct.txt --top 20

py-spy is a development tool, not a dependency: `pip install py-spy` (it needs ptrace
permission on the server process, as a debugger does).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

RATE = 200  # samples per second: enough for a 10 s run, light on a shared machine
# A collapsed-stack frame: "function (file:line)"; the line varies within one function.
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str:
    """The py-spy next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Recording:
    """py-spy recording a process until `stop()`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            # --gil: only the thread holding the GIL, so threads waiting for it (paho's, the
            # thread pool's) count nothing; --native: C frames too (the GC, sockets, pydantic).
            py_spy(), "record", "--pid", str(self.pid), "--native", "--gil", "--subprocesses",
            "--rate", str(RATE), "--format", "raw", "--output", str(self.out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        await asyncio.sleep(0.5)  # attached before the measured work starts

    async def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        _, err = await self._process.communicate()
        if self._process.returncode not in (0, -signal.SIGINT) and not self.out.exists():
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")


def frame_name(frame: str) -> str:
    """`function (file)` without the line number, the file shortened to its last parts."""
    found = _FRAME.match(frame)
    if found is None:
        return frame
    parts = found["file"].split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif len(parts) > 3:
        parts = parts[-3:]
    return f"{found['name']} ({'/'.join(parts)})"


def own_time(collapsed: str, *, inclusive: bool = False) -> tuple[Counter[str], int]:
    """Samples per function as the innermost frame (own time), or anywhere on the stack
    (`inclusive`: the time in it and what it called), and the total samples."""
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        for name in {frame_name(f) for f in frames} if inclusive else [frame_name(frames[-1])]:
            own[name] += int(count)
        total += int(count)
    return own, total


def top_table(path: Path, n: int = 10, *, inclusive: bool = False) -> str:
    own, total = own_time(path.read_text(encoding="utf-8", errors="replace"), inclusive=inclusive)
    kind = "inclusive" if inclusive else "own"
    lines = [f"top {n} by {kind} time, {path.name}: {total:,} samples (thread holding the GIL)",
             f"| # | function (file) | {kind} % |", "|---|---|---|"]
    for i, (name, count) in enumerate(own.most_common(n), 1):
        shown = name.replace("|", "\\|")
        lines.append(f"| {i} | {shown} | {count / max(total, 1):.1%} |")
    return "\n".join(lines)


def print_profiles(directory: Path, n: int = 10) -> None:
    for path in sorted(directory.glob("*.txt")):
        print("\n" + top_table(path, n))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, nargs="+", help="py-spy raw (collapsed) output")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--inclusive", action="store_true",
                        help="rank by the samples a function is anywhere on the stack")
    args = parser.parse_args()
    for path in args.profile:
        print(top_table(path, args.top, inclusive=args.inclusive) + "\n")  # noqa: T201


if __name__ == "__main__":
    main()
