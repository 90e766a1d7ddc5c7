"""The cluster stack, shared by the modules of this package: test_cluster.py's core cases run
first, then test_faults.py, which kills a node and a worker and restarts them after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.stack import ClusterStack, cluster_stack


@pytest.fixture(scope="package")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ClusterStack]:
    workdir: Path = tmp_path_factory.mktemp("rabbitmq-cluster")
    async with cluster_stack(workdir, bridges=2) as running:
        print(f"cluster timings: {running.timings}")  # noqa: T201  # the figure for the docs
        yield running
