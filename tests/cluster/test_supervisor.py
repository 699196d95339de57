"""`xinchain up` looks after its nodes (issue 13).

* A node killed with SIGKILL is logged (signal, how long it ran) and started again after a
  backoff that doubles when it dies again soon; it catches up with identical blocks.
* With --no-restart a killed node stays down; a node then started by hand is stopped with the
  others when the supervisor gets SIGTERM, and the supervisor exits cleanly.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
from cluster_harness import VALIDATORS, Cluster, free_port_base

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

VICTIM = "validator-2"
OTHERS = [name for name in VALIDATORS if name != VICTIM]
wait_s = 60.0


@pytest.fixture
def restarting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(
        tmp_path_factory.mktemp("supervised") / "home", free_port_base(), restart=True
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def not_restarting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("unsupervised") / "home", free_port_base())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def wait_for(condition: str, check: object, cluster: Cluster) -> None:
    deadline = time.monotonic() + wait_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{condition}:\n{cluster.report()}"
        time.sleep(0.1)


def new_pid_serving(cluster: Cluster, old_pid: int) -> int:
    holder: list[int] = []

    def serving() -> bool:
        pid = cluster.pid(VICTIM)
        if pid is None or pid == old_pid or cluster.height(VICTIM) is None:
            return False
        holder.append(pid)
        return True

    wait_for(f"{VICTIM} was not started again", serving, cluster)
    return holder[-1]


def test_a_killed_node_is_restarted_with_backoff(restarting: Cluster) -> None:
    cluster = restarting
    cluster.wait_for_height(VALIDATORS, 2, wait_s)
    first = cluster.pid(VICTIM)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    second = new_pid_serving(cluster, first)
    os.kill(second, signal.SIGKILL)  # again at once: the wait doubles
    new_pid_serving(cluster, second)

    output = "".join(cluster.output_lines())
    delays = re.findall(
        rf"node {VICTIM} exited with signal SIGKILL after [0-9.]+ s; restarting in (\d+) s",
        output,
    )
    assert delays == ["1", "2"], output
    assert len(re.findall(rf"node {VICTIM} restarted \(pid \d+, restart \d\)", output)) == 2

    target = max(h for h in cluster.heights(OTHERS).values() if h is not None) + 2
    cluster.wait_for_height(VALIDATORS, target, wait_s)
    assert cluster.block_hashes(VICTIM, target) == cluster.block_hashes(OTHERS[0], target)


def test_sigterm_stops_every_node_including_one_started_by_hand(
    not_restarting: Cluster,
) -> None:
    cluster = not_restarting
    cluster.wait_for_height(VALIDATORS, 2, wait_s)
    cluster.kill9(VICTIM)
    wait_for(
        "the supervisor did not log the exit",
        lambda: any(f"node {VICTIM} exited with signal" in x for x in cluster.output_lines()),
        cluster,
    )
    time.sleep(2)  # past the first backoff: with --no-restart, nothing starts it
    assert cluster.height(VICTIM) is None
    cluster.restart(VICTIM)  # by hand, as an operator would
    by_hand = cluster.restarted[VICTIM]
    pids = [cluster.pid(name) for name in VALIDATORS]
    assert None not in pids

    assert cluster.supervisor is not None
    cluster.supervisor.send_signal(signal.SIGTERM)
    assert cluster.supervisor.wait(30) == 0, cluster.report()
    assert by_hand.wait(30) == 0, cluster.report()  # stopped cleanly by the supervisor
    for name, pid in zip(VALIDATORS, pids, strict=True):
        assert not os.path.exists(f"/proc/{pid}"), f"{name} (pid {pid}) still runs"
