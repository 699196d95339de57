"""A real 4-validator consortium for cluster tests: `xinchain up --validators 4`, 5 processes.

Fixtures:

* `cluster` (module scope): runs `xinchain up --home TMP --port BASE --validators 4` (the
  entry point installed next to this interpreter) on a port base whose API ports BASE..BASE+4
  and P2P ports BASE+100..BASE+104 are free, waits for its `ready` line, and yields a `Cluster`:
  `api(name)`, `status(name)`, `height(name)`, `kill9(name)` (SIGKILL via node.pid),
  `restart(name)` (`xinchain node` on the same home and port, stopped at teardown),
  `wait_for_height(names, height, timeout_s)`, `block_hashes(name, upto)`.
  Tests of one module share the cluster, so each restarts what it killed before it ends.

Every wait polls against a deadline; none sleeps a fixed time and then asserts. A failing test
gets the tail of every node.log and the supervisor's output appended to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from cluster_harness import Cluster, free_port_base

_live_clusters: list[Cluster] = []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("cluster") / "home", free_port_base())
    _live_clusters.append(running)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        _live_clusters.remove(running)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for live in _live_clusters:
            report.sections.append((f"xinchain cluster logs ({live.home})", live.report()))
    return report
