"""mqim end-to-end benchmark: the real pipeline beside the raw broker, in one run.

Starts a real stack (embedded, or Mosquitto + PostgreSQL) as the tests do (tests/stacks.py),
drives real aiomqtt clients, and reports for each scenario: persisted msg/s (acked sends),
delivered msg/s (thread events received by members), latency (publish -> received by a member),
the server processes' CPU and RSS. In the same run, on the same broker, with the same client
library, it measures the raw broker pass-through (no bridge, no database) and the ratio.

    .venv/bin/python bench/mqim_bench.py --mode mosquitto --scenario all
    .venv/bin/python bench/mqim_bench.py --quick          # small numbers, both modes (CI test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import aiomqtt
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.stacks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_common, sdk_scenario

from bench_common import (  # after the path fix above
    ChatSender,
    Figures,
    ProcessMeter,
    Progress,
    accounts,
    bracketed,
    frozen_heap,
    group_of,
    percentile,
    raw_passthrough,
    receive,
    run_paced,
    seed_history,
    user_client,
)
from profile_cpu import (
    batch_size,
    bridge_batches,
    cpu_per_message,
    cpu_table,
    issue16_rows,
    repeat_table,
)
from profiling import prepare, print_all, profile_path, recorder
from sdk_scenario import scenario_sdk, sdk_table

from tests.helpers import Account
from tests.stacks import Stack, running_stack

# --- scenarios -------------------------------------------------------------------------------


async def pipeline(stack: Stack, senders: Sequence[Account], threads: Sequence[str],
                   receivers: Sequence[tuple[Account, str]], per_sender: int, rate: float,
                   figures: Figures, *, acks: str, profile: Path | None = None) -> None:
    """senders[i] sends `per_sender` messages to threads[i]; each (account, thread) in
    `receivers` is a member subscribed to that thread. Fills persisted/delivered/latency and
    the CPU per message; with `profile`, py-spy (.txt) or cProfile (.pstats) records the
    server meanwhile."""
    prefix = stack.settings.topic_prefix
    deliveries = sum(per_sender for _ in receivers)
    total = len(senders) * per_sender
    latencies: list[float] = []
    received = Progress("delivered to members", deliveries)
    sent = Progress("sent and acked", total)
    clients = [user_client(stack, a) for a in senders]
    sub_clients = [user_client(stack, a) for a, _ in receivers]
    for c in (*clients, *sub_clients):
        await c.__aenter__()
    try:
        for c, (_, thread_id) in zip(sub_clients, receivers, strict=True):
            await c.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        chats = [ChatSender(c, a, t, prefix, acks)
                 for c, a, t in zip(clients, senders, threads, strict=True)]
        for chat in chats:
            await chat.subscribe()
        spy = recorder(stack.process.pid, profile)
        if spy is not None:
            await spy.start()
        with frozen_heap():  # the load generator's GC out of the figures
            meter = ProcessMeter(stack)
            start = time.monotonic()
            async with asyncio.timeout(600), asyncio.TaskGroup() as group:
                waits = [group.create_task(receive(c, per_sender, received, latencies))
                         for c in sub_clients]
                listeners = [group.create_task(chat.listen()) for chat in chats]
                per_rate = rate / len(senders) if rate else 0
                await asyncio.gather(*(run_paced([partial(chat.send, i) for i in range(per_sender)],
                                                 per_rate, sent) for chat in chats))
                acked = time.monotonic()
                await asyncio.gather(*waits)
                for task in listeners:
                    task.cancel()
        elapsed = time.monotonic() - start
        meter.stop(figures)
        if spy is not None:
            await spy.stop()
        cpu_per_message(figures, total, deliveries)
        figures.messages = total
        figures.seconds = elapsed
        figures.persisted_per_s = total / (acked - start)
        figures.delivered_per_s = deliveries / elapsed
        figures.p50_ms = percentile(latencies, 50)
        figures.p95_ms = percentile(latencies, 95)
        figures.p99_ms = percentile(latencies, 99)
    finally:
        for c in (*clients, *sub_clients):
            await c.__aexit__(None, None, None)


async def scenario_direct(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                          ) -> Figures:
    pairs, per = args.pairs, args.messages // args.pairs
    figures = Figures("1:1 chats, max rate" if not args.rate else f"1:1 chats, {args.rate}/s",
                      args.mode)
    users = await accounts(http, 2 * pairs)
    threads = []
    for i in range(pairs):
        response = await http.post("/api/threads", headers=users[2 * i].auth,
                                   json={"type": "direct", "user_ids": [users[2 * i + 1].user_id]})
        threads.append(response.json()["data"]["thread_id"])
    raw = partial(raw_passthrough, stack, pairs, per)
    before = await bridge_batches(http)
    await bracketed(raw, figures, pipeline(
        stack, users[0::2], threads, list(zip(users[1::2], threads, strict=True)), per,
        args.rate, figures, acks=args.acks, profile=profile_path(args, "direct")))
    batch_size(figures, before, await bridge_batches(http))
    figures.ratio = figures.delivered_per_s / figures.raw_per_s
    return figures


async def scenario_groups(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                          ) -> Figures:
    groups, size = args.groups, 10
    per = max(1, args.messages // (groups * size))
    figures = Figures(f"{groups} groups of {size}", args.mode)
    users = await accounts(http, groups * size)
    threads, receivers = [], []
    for g in range(groups):
        members = users[g * size:(g + 1) * size]
        thread_id = await group_of(http, members[0], members[1:])
        threads.append(thread_id)
        receivers += [(m, thread_id) for m in members[1:]]
    raw = partial(raw_passthrough, stack, groups, per, fanout=size - 1)
    await bracketed(raw, figures, pipeline(stack, users[0::size], threads, receivers, per,
                                           args.rate, figures, acks=args.acks,
                                           profile=profile_path(args, "groups")))
    figures.ratio = figures.delivered_per_s / figures.raw_per_s
    return figures


async def scenario_fanout(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                          ) -> Figures:
    size, per = args.fanout, args.fanout_messages
    figures = Figures(f"one group of {size}", args.mode)
    users = await accounts(http, size)
    thread_id = await group_of(http, users[0], users[1:])
    raw = partial(raw_passthrough, stack, 1, per, fanout=size - 1)
    await bracketed(raw, figures, pipeline(stack, users[:1], [thread_id],
                                           [(u, thread_id) for u in users[1:]], per, 0, figures,
                                           acks=args.acks, profile=profile_path(args, "fanout")))
    figures.ratio = figures.delivered_per_s / figures.raw_per_s
    return figures


async def scenario_history(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                           ) -> list[Figures]:
    out = []
    reader = (await accounts(http, 1))[0]
    for size in (args.history_small, args.history_large):
        thread_id = await group_of(http, reader, [])
        await seed_history(stack, thread_id, reader.user_id, size)
        figures = Figures(f"history page of 50, thread of {size:,}", args.mode)
        timings = []
        progress = Progress("history reads", args.history_reads)
        meter = ProcessMeter(stack)
        for _ in range(args.history_reads):
            after = random.randrange(0, max(1, size - 50))  # noqa: S311  # not security
            t0 = time.perf_counter()
            response = await http.get(f"/api/threads/{thread_id}/messages", headers=reader.auth,
                                      params={"after_seq": after, "limit": 50})
            timings.append((time.perf_counter() - t0) * 1000)
            if len(response.json()["data"]) != 50:
                raise RuntimeError(f"history read failed: {response.text[:200]}")
            progress.add()
        meter.stop(figures)
        figures.messages = size
        figures.p50_ms, figures.p95_ms = percentile(timings, 50), percentile(timings, 95)
        figures.p99_ms = percentile(timings, 99)
        out.append(figures)
    return out


async def scenario_storm(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                         ) -> Figures:
    n = args.storm
    figures = Figures(f"connection storm, {n} clients", args.mode)
    users = await accounts(http, n)
    clients = [user_client(stack, u, timeout=60) for u in users]
    progress = Progress("connecting", n)
    window = asyncio.Semaphore(200)
    meter = ProcessMeter(stack)

    async def connect(c: aiomqtt.Client) -> None:
        async with window:
            await c.__aenter__()
            progress.add()

    start = time.monotonic()
    await asyncio.gather(*(connect(c) for c in clients))
    elapsed = time.monotonic() - start
    meter.stop(figures)
    figures.extra["connects_per_s"] = n / elapsed
    figures.extra["idle_rss_mb_with_all_connected"] = figures.server_rss_mb
    figures.seconds = elapsed
    for c in clients:
        await c.__aexit__(None, None, None)
    return figures


SCENARIOS: dict[str, Callable[..., Awaitable[Figures | list[Figures]]]] = {
    "direct": scenario_direct, "groups": scenario_groups, "fanout": scenario_fanout,
    "history": scenario_history, "storm": scenario_storm, "sdk": scenario_sdk,
}


# --- targets and output ----------------------------------------------------------------------


def verdicts(results: Sequence[Figures]) -> list[tuple[str, str, bool]]:
    """The issue's targets, checked against this run's figures (PASS/FAIL rows)."""
    rows = []
    for f in results:
        if f.scenario.startswith("1:1 chats, max"):
            rows.append((f"{f.mode}: 1:1 throughput >= 50% of raw", f"{f.ratio:.0%}",
                         f.ratio >= 0.5))
        if f.scenario.startswith("1:1 chats, ") and "/s" in f.scenario and f.mode == "mosquitto":
            rows.append((f"{f.mode}: latency p99 <= 50 ms at {f.scenario.split(', ')[1]}",
                         f"{f.p99_ms:.1f} ms", f.p99_ms <= 50))
        rows += issue16_rows(f)
        if f.scenario.startswith("one group of"):
            rows.append((f"{f.mode}: fan-out >= 70% of raw", f"{f.ratio:.0%}", f.ratio >= 0.7))
        if f.scenario.startswith("history page"):
            rows.append((f"{f.mode}: {f.scenario} p99 <= 20 ms", f"{f.p99_ms:.1f} ms",
                         f.p99_ms <= 20))
        if f.scenario.startswith("connection storm"):
            rate = f.extra["connects_per_s"]
            rows.append((f"{f.mode}: >= 500 authenticated connects/s", f"{rate:.0f}/s",
                         rate >= 500))
            if f.mode == "mosquitto" and "10000" in f.scenario:
                rss = f.extra["idle_rss_mb_with_all_connected"]
                rows.append(("mosquitto: 10,000 idle clients, bridge + API RSS <= 300 MB",
                             f"{rss:.0f} MB", rss <= 300))
    history = [f for f in results if f.scenario.startswith("history page")]
    for mode in {f.mode for f in history}:
        small, large = [f for f in history if f.mode == mode][:2] if len(history) > 1 else (
            None, None)
        if small and large:
            growth = large.p99_ms / max(small.p99_ms, 1e-9)
            rows.append((f"{mode}: history cost flat (large/small p99 <= 2x)", f"{growth:.2f}x",
                         growth <= 2))
    return rows


def table(results: Sequence[Figures]) -> str:
    lines = ["| mode | scenario | msgs | persisted/s | delivered/s | raw/s | ratio | p50 ms | "
             "p95 ms | p99 ms | mqim CPU s | broker CPU s | mqim RSS MB | broker RSS MB |",
             "|" + "---|" * 14]
    for f in results:
        lines.append(
            f"| {f.mode} | {f.scenario} | {f.messages:,} | {f.persisted_per_s:,.0f} | "
            f"{f.delivered_per_s:,.0f} | {f.raw_per_s:,.0f} | "
            f"{f.ratio:.0%} | {f.p50_ms:.1f} | {f.p95_ms:.1f} | {f.p99_ms:.1f} | "
            f"{f.server_cpu_s:.1f} | {f.broker_cpu_s:.1f} | {f.server_rss_mb:.0f} | "
            f"{f.broker_rss_mb:.0f} |")
    for f in results:
        if f.extra:
            lines.append(f"\n{f.mode} {f.scenario}: " + ", ".join(
                f"{k} = {v:,.1f}" for k, v in f.extra.items()))
    return "\n".join(lines)


async def run_mode(mode: str, args: argparse.Namespace) -> list[Figures]:
    results: list[Figures] = []
    if args.workdir:
        (args.workdir / mode).mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.workdir / mode)) if args.workdir
          else tempfile.TemporaryDirectory(prefix=f"mqim-bench-{mode}-")) as tmp:
        print(f"\n== {mode}: starting the stack", file=sys.stderr)  # noqa: T201
        linger = {} if args.linger_ms is None else {"bridge_linger_ms": args.linger_ms}
        async with running_stack(mode, Path(tmp), **linger) as stack, httpx.AsyncClient(
            base_url=f"http://{stack.settings.http}", timeout=60) as http:
            args.mode = mode
            for run in range(args.repeat):
                for name in args.scenarios:
                    print(f"-- {mode}: {name} (run {run + 1}/{args.repeat})",  # noqa: T201
                          file=sys.stderr)
                    result = await SCENARIOS[name](stack, http, args)
                    results += result if isinstance(result, list) else [result]
                if args.rate_check and "direct" in args.scenarios:
                    saved, args.rate = args.rate, args.rate_check
                    results.append(await scenario_direct(stack, http, args))
                    args.rate = saved
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("embedded", "mosquitto", "both"), default="both")
    parser.add_argument("--scenario", action="append", choices=(*SCENARIOS, "all"),
                        help="repeatable; default all")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per throughput "
                        "scenario [20000]")
    parser.add_argument("--pairs", type=int, default=4, help="1:1 chats in parallel [4]")
    parser.add_argument("--rate", type=float, default=0, help="total send rate, 0 = max [0]")
    parser.add_argument("--rate-check", type=float, default=1000,
                        help="also run 1:1 chats at this fixed rate for latency [1000]")
    parser.add_argument("--acks", choices=("echo", "req"), default="echo",
                        help="how senders confirm a send: their message's echo on the thread, "
                        "or an ack event for a req [echo]")
    parser.add_argument("--linger-ms", type=int, help="the server's MQIM_BRIDGE_LINGER_MS [5]")
    parser.add_argument("--groups", type=int, default=100, help="groups of 10 [100]")
    parser.add_argument("--fanout", type=int, default=1000, help="members of the big group")
    parser.add_argument("--fanout-messages", type=int, default=50)
    parser.add_argument("--history-small", type=int, default=10_000)
    parser.add_argument("--history-large", type=int, default=1_000_000)
    parser.add_argument("--history-reads", type=int, default=500)
    parser.add_argument("--storm", type=int, default=2000, help="clients in the storm")
    parser.add_argument("--sdk-messages", type=int, default=2000,
                        help="messages in the SDK scenario (and in each raw run beside it) [2000]")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the scenarios this many times on one stack and print the "
                        "median and spread [1]")
    parser.add_argument("--profile", type=Path,
                        help="record the server with py-spy during each max-rate pipeline into "
                        "this directory, and print the top functions (slows the run: not for "
                        "figures)")
    parser.add_argument("--cprofile", type=Path,
                        help="profile the server's CPU time with cProfile during each max-rate "
                        "pipeline into this directory, and print the top functions (slows the "
                        "server: not for figures)")
    parser.add_argument("--quick", action="store_true", help="small numbers (the CI test)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, help="keep the stacks' data and logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.groups, args.fanout, args.fanout_messages = 600, 4, 40, 10
        args.history_small, args.history_large, args.history_reads = 1_000, 5_000, 30
        args.storm, args.rate_check, args.sdk_messages = 100, 200, 200
    scenarios = args.scenario or ["all"]
    args.scenarios = list(SCENARIOS) if "all" in scenarios else scenarios
    return args


async def main(argv: Sequence[str] | None = None) -> list[Figures]:
    args = parse_args(argv)
    prepare(args)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt's "pending publish" warnings
    modes = ["embedded", "mosquitto"] if args.mode == "both" else [args.mode]
    results: list[Figures] = []
    for mode in modes:
        results += await run_mode(mode, args)
    print("\n" + table(results))  # noqa: T201
    cpu = cpu_table(results)
    if cpu.count("\n") > 1:  # a row besides the header
        print("\n" + cpu)  # noqa: T201
    if args.repeat > 1:
        print("\n" + repeat_table(results))  # noqa: T201
    if sdk_rows := sdk_table(results):
        print("\n" + sdk_rows)  # noqa: T201
    print("\n| target | this run | |\n|---|---|---|")  # noqa: T201
    for name, value, ok in verdicts(results):
        print(f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |")  # noqa: T201
    print_all(args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results


if __name__ == "__main__":
    asyncio.run(main())
