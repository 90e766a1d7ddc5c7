"""A real RabbitMQ cluster on one machine, from the deployment guide's own files
(deploy/rabbitmq/): N `rabbitmq-server` nodes on free ports with their own names, data and log
dirs and a shared Erlang cookie, joined with `rabbitmqctl join_cluster`, asking mqim's HTTP
hooks who may do what. Each node runs in its own process group, killed whole on teardown (or by
a fault test: `kill_node`).

Needs the rabbitmq-server binaries (Debian `rabbitmq-server`), not its system service: the
nodes are started directly and never touch /etc/rabbitmq or /var/lib/rabbitmq.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import httpx

from tests.helpers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy" / "rabbitmq"
SBIN = Path(os.environ.get("MQIM_TEST_RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))
START_SECONDS = 90
ADMIN_USER = "mqim-admin"


def rabbitmq_available() -> bool:
    return (SBIN / "rabbitmq-server").exists() and (SBIN / "rabbitmqctl").exists()


@dataclass
class Node:
    name: str
    amqp_port: int
    mqtt_port: int
    ws_port: int
    management_port: int
    dist_port: int
    base: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


@dataclass
class Cluster:
    nodes: list[Node]
    env: dict[str, str]
    admin_password: str
    start_seconds: float = 0.0
    logs: list[Path] = field(default_factory=list)

    @property
    def admin(self) -> tuple[str, str]:
        return ADMIN_USER, self.admin_password

    def management_url(self, node: int = 0, *, with_credentials: bool = False) -> str:
        url = self.nodes[node].management_url
        if with_credentials:
            return url.replace("http://", f"http://{ADMIN_USER}:{self.admin_password}@", 1)
        return url

    async def ctl(self, node: Node, *args: str, seconds: float = 60) -> str:
        return await _ctl(self.env, node, *args, seconds=seconds)

    async def add_internal_user(self, name: str, password: str) -> None:
        """An account in RabbitMQ's internal database with every right on "/": mqim's service
        account, so that the API can connect before it answers the hooks (see the guide)."""
        async with httpx.AsyncClient(base_url=self.management_url(), auth=self.admin,
                                     timeout=10) as http:
            user = await http.put(f"/api/users/{name}", json={"password": password, "tags": ""})
            assert user.status_code in (201, 204), user.text  # fixture setup
            rights = await http.put(f"/api/permissions/%2F/{name}",
                                    json={"configure": ".*", "write": ".*", "read": ".*"})
            assert rights.status_code in (201, 204), rights.text

    async def kill_node(self, index: int) -> None:
        """kill -9 the node's whole process group (a crash, not a shutdown)."""
        await _kill(self.nodes[index], signal.SIGKILL)


def _node_env(base_env: dict[str, str], node: Node) -> dict[str, str]:
    return {
        **base_env,
        "RABBITMQ_NODENAME": node.name,
        "RABBITMQ_NODE_PORT": str(node.amqp_port),
        "RABBITMQ_DIST_PORT": str(node.dist_port),
        "RABBITMQ_MNESIA_BASE": str(node.base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(node.base / "log"),
        "RABBITMQ_CONFIG_FILE": str(node.base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.base / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(node.base / "pid"),
    }


async def _ctl(env: dict[str, str], node: Node, *args: str, seconds: float = 60) -> str:
    process = await asyncio.create_subprocess_exec(
        str(SBIN / "rabbitmqctl"), "-n", node.name, *args, env=_node_env(env, node),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name} failed:\n{text}")
    return text


async def _kill(node: Node, sig: signal.Signals) -> None:
    process = node.process
    if process is None or process.returncode is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def render_node_config(node: Node, *, hook_url: str, hook_secret: str,
                       admin_password: str) -> None:
    """The guide's rabbitmq.conf and enabled_plugins, filled in for this node."""
    template = Template((DEPLOY / "rabbitmq.conf.template").read_text(encoding="utf-8"))
    conf = template.substitute(
        bind="127.0.0.1", amqp_port=node.amqp_port, mqtt_port=node.mqtt_port,
        ws_port=node.ws_port, management_port=node.management_port, hook_url=hook_url,
        hook_secret=hook_secret, admin_user=ADMIN_USER, admin_password=admin_password,
    )
    node.base.mkdir(parents=True, exist_ok=True)
    (node.base / "rabbitmq.conf").write_text(conf, encoding="utf-8")
    shutil.copyfile(DEPLOY / "enabled_plugins", node.base / "enabled_plugins")


async def start_node(cluster: Cluster, node: Node) -> None:
    """Start (or restart, on its data) one node and wait until its app runs."""
    log = (node.base / "server.log").open("ab")
    try:
        node.process = await asyncio.create_subprocess_exec(
            str(SBIN / "rabbitmq-server"), env=_node_env(cluster.env, node),
            stdout=log, stderr=log, start_new_session=True,
        )
    finally:
        log.close()
    cluster.logs.append(node.base / "server.log")
    await cluster.ctl(node, "wait", str(node.base / "pid"), "--timeout", str(START_SECONDS),
                      seconds=START_SECONDS + 10)


async def _join(cluster: Cluster, node: Node, seed: Node) -> None:
    await cluster.ctl(node, "stop_app")
    await cluster.ctl(node, "join_cluster", seed.name)
    await cluster.ctl(node, "start_app")


async def wait_cluster(cluster: Cluster, running: int) -> None:
    """Until a live node's management API lists `running` running nodes."""
    deadline = time.monotonic() + START_SECONDS
    async with httpx.AsyncClient(auth=cluster.admin, timeout=5) as http:
        while True:
            for node in cluster.nodes:
                if not node.alive:
                    continue
                try:
                    reply = await http.get(f"{node.management_url}/api/nodes")
                    if reply.status_code == 200 and sum(
                        n.get("running", False) for n in reply.json()
                    ) >= running:
                        return
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster never had {running} running nodes")
            await asyncio.sleep(0.2)  # polling the management API, not synchronising


@asynccontextmanager
async def rabbitmq_cluster(workdir: Path, *, hook_url: str, hook_secret: str,
                           size: int = 3) -> AsyncIterator[Cluster]:
    """`size` joined nodes whose HTTP auth backend asks `hook_url` (…/rabbitmq)."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    cookie = home / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20), encoding="ascii")
    cookie.chmod(0o400)
    env_file = workdir / "rabbitmq-env.conf"  # instead of /etc/rabbitmq/rabbitmq-env.conf
    env_file.write_text("", encoding="ascii")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env |= {"HOME": str(home), "RABBITMQ_CONF_ENV_FILE": str(env_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1"}
    cluster = Cluster([], env, secrets.token_urlsafe(18))
    for _ in range(size):
        amqp = free_port()
        node = Node(f"mqim-a{amqp}@localhost", amqp, free_port(), free_port(), free_port(),
                    free_port(), workdir / f"node-{amqp}")
        render_node_config(node, hook_url=hook_url, hook_secret=hook_secret,
                           admin_password=cluster.admin_password)
        cluster.nodes.append(node)
    started = time.monotonic()
    try:
        await asyncio.gather(*(start_node(cluster, n) for n in cluster.nodes))
        seed, *others = cluster.nodes
        for node in others:  # one at a time: concurrent joins race on the seed's schema
            await _join(cluster, node, seed)
        await wait_cluster(cluster, size)
        cluster.start_seconds = time.monotonic() - started
        yield cluster
    finally:
        await asyncio.gather(*(_kill(n, signal.SIGKILL) for n in cluster.nodes))
