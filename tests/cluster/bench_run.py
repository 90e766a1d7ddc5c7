"""bench/mqim_bench.py's 1:1 scenario on the RabbitMQ cluster, beside raw RabbitMQ MQTT and the
single-node Mosquitto mode, in one run (issue 14):

    .venv/bin/python -m tests.cluster.bench_run [--messages 8000] [--rate-check 500]

The cluster rows use the test stack of tests/cluster/stack.py with two bridge workers; clients
and the raw pass-through connect to node 0. The raw pass-through logs in as mqim's service
account, which lives in RabbitMQ's internal backend, so it makes no hook calls: the ratio
includes the HTTP hooks' cost. CPU columns count only the `mqim api` process on the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.cluster.stack import cluster_stack
from tests.stacks import Stack

BENCH = Path(__file__).resolve().parents[2] / "bench"


async def bench_run(messages: int, rate_check: float) -> str:
    sys.path.insert(0, str(BENCH))
    bench: Any = importlib.import_module("mqim_bench")  # a script directory, not a package
    args = bench.parse_args(["--mode", "mosquitto", "--scenario", "direct", "--messages",
                             str(messages), "--rate-check", str(rate_check)])
    results: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with cluster_stack(Path(tmp), bridges=2) as cluster:
            stack = Stack(cluster.settings, cluster.processes["api"], Path(tmp) / "api.log")
            args.mode = "rabbitmq cluster (3 nodes, 2 bridges) + PostgreSQL"
            results.append(await bench.scenario_direct(stack, cluster.http, args))
            args.rate = rate_check
            results.append(await bench.scenario_direct(stack, cluster.http, args))
            args.rate = 0
    results += await bench.run_mode("mosquitto", args)
    table: str = bench.table(results)
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=8000)
    parser.add_argument("--rate-check", type=float, default=500)
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    print(asyncio.run(bench_run(args.messages, args.rate_check)))  # noqa: T201


if __name__ == "__main__":
    main()
