"""The cluster test stack: a real 3-node RabbitMQ cluster (tests/cluster/rabbitmq.py), a fresh
PostgreSQL database, `mqim api` and `mqim bridge` workers with MQIM_BROKER_KIND=hooks and the
MQIM_RABBITMQ_* settings, each naming all 3 nodes (`mqtt://u:p@n0,n1,n2`): the API and the
bridges publish events through the first node that answers; bridge worker k consumes the uplink
quorum queue over AMQP from node k-1 first, then the others; clients connect to any node."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from broker.link.client import derive_service_password
from config import HostPort, Settings
from tests.cluster.rabbitmq import Cluster, rabbitmq_cluster
from tests.helpers import free_port, make_settings
from tests.stacks import external_broker_settings, postgres_database, settings_env

SECRET = "hook-" + secrets.token_urlsafe(24)
HOOKS = "/api/internal/mqtt/rabbitmq"


@dataclass
class ClusterStack:
    settings: Settings
    cluster: Cluster
    http: httpx.AsyncClient
    workdir: Path
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    bridge_args: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def mqtt(self, node: int) -> HostPort:
        return HostPort("127.0.0.1", self.cluster.nodes[node].mqtt_port)


def hosts(ports: list[int], first: int = 0) -> str:
    """`127.0.0.1:p,…` for a multi-host URL, starting with node `first`."""
    ordered = ports[first:] + ports[:first]
    return ",".join(f"127.0.0.1:{port}" for port in ordered)


async def _mqim(stack: ClusterStack, name: str, *args: str, amqp_url: str = "") -> None:
    log = (stack.workdir / f"{name}.log").open("ab")
    env = settings_env(replace(stack.settings, rabbitmq_amqp_url=amqp_url))
    try:
        stack.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mqim", *args, env=env, stdout=log, stderr=log)
    finally:
        log.close()


async def start_bridge(stack: ClusterStack, name: str) -> None:
    """Start (or restart, after a kill) the bridge worker `name` with its arguments."""
    args, amqp = stack.bridge_args[name]
    await _mqim(stack, name, *args, amqp_url=amqp)


async def _wait_healthy(stack: ClusterStack) -> None:
    deadline = time.monotonic() + 60
    while True:
        process = stack.processes["api"]
        if process.returncode is not None:
            raise RuntimeError((stack.workdir / "api.log").read_text()[-4000:])
        try:
            if (await stack.http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError((stack.workdir / "api.log").read_text()[-4000:])
        await asyncio.sleep(0.05)  # polling the health endpoint, not synchronising


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def wait_bridge_consuming(stack: ClusterStack) -> None:
    """Until the uplink queue has a consumer (the bridge is ready)."""
    url = f"{stack.cluster.management_url()}/api/queues/%2F/mqim-uplinks"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(auth=stack.cluster.admin, timeout=5) as admin:
        while True:
            reply = await admin.get(url)
            if reply.status_code == 200 and reply.json().get("consumers", 0) > 0:
                return
            bridge = stack.processes["bridge"]
            if bridge.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError((stack.workdir / "bridge.log").read_text()[-4000:])
            await asyncio.sleep(0.1)  # polling the management API, not synchronising


@asynccontextmanager
async def cluster_stack(workdir: Path, bridges: int = 1) -> AsyncIterator[ClusterStack]:
    """The stack, with `bridges` workers consuming over AMQP from nodes 0, 1, 2, 0, …"""
    started = time.monotonic()
    http_port = free_port()
    hook_url = f"http://127.0.0.1:{http_port}{HOOKS}"
    async with AsyncExitStack() as exit_stack:
        db_url = await exit_stack.enter_async_context(postgres_database())
        cluster = await exit_stack.enter_async_context(
            rabbitmq_cluster(workdir, hook_url=hook_url, hook_secret=SECRET))
        base = make_settings(workdir, mqtt_hook_secret=SECRET, http=HostPort("127.0.0.1",
                                                                             http_port))
        node0 = cluster.nodes[0]
        password = derive_service_password(base.jwt_secret, base.bridge_username)
        account = f"{base.bridge_username}:{password}"
        admin = ":".join(cluster.admin)
        settings = replace(
            external_broker_settings(base, node0.mqtt_port, node0.ws_port, database_url=db_url,
                                     broker_kind="hooks"),
            broker_url=f"mqtt://{account}@{hosts([n.mqtt_port for n in cluster.nodes])}",
            rabbitmq_management_url=(
                f"http://{admin}@{hosts([n.management_port for n in cluster.nodes])}"))
        http = await exit_stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=10))
        stack = ClusterStack(settings, cluster, http, workdir)
        stack.timings["cluster_start"] = cluster.start_seconds
        try:
            # The API first, before RabbitMQ knows the service account: its publisher connects
            # lazily, so its own hooks answer its login. Then the internal account, which
            # the bridges' AMQP consumers need (the hooks grant users no queue of ours).
            await _mqim(stack, "api", "api")
            await _wait_healthy(stack)
            await cluster.add_internal_user(settings.bridge_username, password)
            for worker in range(bridges):
                first = worker % len(cluster.nodes)
                amqp = f"amqp://{account}@{hosts([n.amqp_port for n in cluster.nodes], first)}/"
                name = "bridge" if worker == 0 else f"bridge{worker + 1}"
                stack.bridge_args[name] = (["bridge", "--worker", str(worker + 1)], amqp)
                await start_bridge(stack, name)
            await wait_bridge_consuming(stack)
            stack.timings["stack_start"] = time.monotonic() - started
            yield stack
        finally:
            await asyncio.gather(*(_stop(p) for p in stack.processes.values()))
