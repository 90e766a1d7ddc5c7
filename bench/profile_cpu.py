"""CPU per message, the figure of issue 16, and its tables: mqim's CPU time per persisted
message and per delivered event, with the broker's beside it. CPU time, unlike a throughput
ratio, does not depend on what else the shared cores run; it is read with psutil from the
server processes (bench_common.ProcessMeter) around each measured pipeline.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import httpx
from bench_common import Figures


async def bridge_batches(http: httpx.AsyncClient) -> tuple[float, float]:
    """(batches, uplinks) the bridge has handled so far, from its /metrics: their difference
    around a pipeline gives its batch size, which sets how far a batch's fixed cost (two
    statements, one flush) is shared."""
    text = (await http.get("/metrics")).text
    values = dict(line.split(" ", 1) for line in text.splitlines()
                  if line.startswith("mqim_bridge_batch_size_"))
    return (float(values.get("mqim_bridge_batch_size_count", 0)),
            float(values.get("mqim_bridge_batch_size_sum", 0)))


def batch_size(figures: Figures, before: tuple[float, float], after: tuple[float, float]) -> None:
    batches, uplinks = after[0] - before[0], after[1] - before[1]
    if batches:
        figures.extra["uplinks_per_batch"] = uplinks / batches


def cpu_per_message(figures: Figures, persisted: int, delivered: int) -> None:
    """CPU-µs per persisted message and per delivered event (mqim; the broker beside it):
    CPU time, so unlike a throughput ratio it does not depend on what else the shared cores
    run. A 1:1 message is one persisted message and one delivered event."""
    if persisted:
        figures.mqim_us_per_msg = figures.server_cpu_s / persisted * 1e6
        figures.broker_us_per_msg = figures.broker_cpu_s / persisted * 1e6
    if delivered:
        figures.mqim_us_per_event = figures.server_cpu_s / delivered * 1e6


# Issue 16: mqim's own CPU per 1:1 message at max rate (the embedded broker included), the
# 1:1 ratio, and p99 at 1,000 msg/s on Mosquitto.
CPU_US_TARGET = {"mosquitto": 100.0, "embedded": 180.0}


def issue16_rows(f: Figures) -> list[tuple[str, str, bool]]:
    rows = []
    if f.scenario.startswith("1:1 chats, max"):
        limit = CPU_US_TARGET[f.mode]
        rows.append((f"{f.mode}: mqim CPU per 1:1 message at max rate <= {limit:.0f} us",
                     f"{f.mqim_us_per_msg:.0f} us", f.mqim_us_per_msg <= limit))
        rows.append((f"{f.mode}: 1:1 throughput >= 60% of raw (issue 16; one run)",
                     f"{f.ratio:.0%}", f.ratio >= 0.6))
    if f.mode == "mosquitto" and f.scenario.removeprefix("1:1 chats, ") in ("1000/s", "1000.0/s"):
        rows.append(("mosquitto: latency p99 <= 25 ms at 1000/s (issue 16)",
                     f"{f.p99_ms:.1f} ms", f.p99_ms <= 25))
    return rows


def cpu_table(results: Sequence[Figures]) -> str:
    """CPU per message, the issue-16 figure: robust to a shared machine, unlike the ratios."""
    lines = ["| mode | scenario | msgs | mqim CPU-us/msg | mqim CPU-us/event | "
             "broker CPU-us/msg | mqim CPU s | broker CPU s | uplinks per batch |",
             "|" + "---|" * 9]
    for f in results:
        if not f.mqim_us_per_msg:
            continue
        broker = f"{f.broker_us_per_msg:.0f}" if f.mode == "mosquitto" else "(in mqim)"
        lines.append(f"| {f.mode} | {f.scenario} | {f.messages:,} | {f.mqim_us_per_msg:.0f} | "
                     f"{f.mqim_us_per_event:.0f} | {broker} | {f.server_cpu_s:.2f} | "
                     f"{f.broker_cpu_s:.2f} | {f.extra.get('uplinks_per_batch', 0):.1f} |")
    return "\n".join(lines)


def repeat_table(results: Sequence[Figures]) -> str:
    """Median and spread per (mode, scenario) over the runs of --repeat."""
    groups: dict[tuple[str, str], list[Figures]] = {}
    for f in results:
        groups.setdefault((f.mode, f.scenario), []).append(f)
    lines = ["| mode | scenario | runs | ratio median (min-max) | mqim CPU-us/msg median "
             "(min-max) | p99 ms median (min-max) |", "|" + "---|" * 6]

    def spread(values: list[float], fmt: str) -> str:
        return (f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-"
                f"{format(max(values), fmt)})")
    for (mode, scenario), runs in groups.items():
        if len(runs) < 2 or not runs[0].mqim_us_per_msg:
            continue
        lines.append(f"| {mode} | {scenario} | {len(runs)} | "
                     f"{spread([r.ratio for r in runs], '.0%')} | "
                     f"{spread([r.mqim_us_per_msg for r in runs], '.0f')} | "
                     f"{spread([r.p99_ms for r in runs], '.1f')} |")
    return "\n".join(lines)
