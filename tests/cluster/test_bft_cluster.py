"""Tendermint BFT on five real processes (4 validators, the regulator's observer) on loopback.

The tests share one `xinchain up --validators 4` and run in this order; each restarts what it
killed before it ends, so the next starts from five running nodes.

Scenarios:

* Agreement: all 5 nodes reach the same height with identical block hashes at every height
  (and each block carries a certificate for its own hash).
* One validator down (validator-1, kill -9): the 3 other validators and the observer commit at
  least 3 more blocks.
* Catch-up (validator-3 killed while the others commit 3 blocks, then restarted with
  `xinchain node`): it reaches the others' tip and every node holds the same block hash at
  every height 1..tip.
* Two validators down (validator-3 and validator-0, kill -9): over several seconds the
  survivors and the observer commit at most the one block that may have been in flight, and
  they agree on every block, the old ones included.
* One of two returns (validator-0 and validator-2 down until commits stall, then validator-2
  restarted): commits resume on 3 validators and the observer.
* The observer follows throughout: after all of the above it is at the validators' tip and
  holds their block hash at every height.
"""

from __future__ import annotations

import time

import pytest
from cluster_harness import NODES, OBSERVER, VALIDATORS, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# Blocks the survivors must commit to show that consensus goes on.
blocks_to_prove_progress = 3
# With one validator down every fourth height waits out a propose timeout (1 s, growing), and
# a redialled connection may wait up to 5 s of backoff: generous on a loaded 2-core box.
progress_timeout_s = 40.0
# How long survivors without a quorum are watched: about five idle block intervals.
stall_window_s = 6.0
# Blocks the survivors may still commit after a quorum is lost: one whose precommits were
# already on the wire when the validators died.
blocks_in_flight_max = 1
# Waiting for a halted chain to be seen halted before a validator returns.
stall_settle_s = 3.0
stall_settle_timeout_s = 20.0


def tip(cluster: Cluster, names: tuple[str, ...] | list[str]) -> int:
    """The highest height any of the (running) named nodes reports."""
    return max(h for h in cluster.heights(names).values() if h is not None)


def assert_same_chain(cluster: Cluster, names: tuple[str, ...] | list[str], upto: int) -> None:
    """Every named node holds the same block hash at every height 1..upto."""
    reference_name, *others = names
    reference = cluster.block_hashes(reference_name, upto)
    for name in others:
        hashes = cluster.block_hashes(name, upto)
        differing = [h for h in range(1, upto + 1) if hashes[h - 1] != reference[h - 1]]
        assert not differing, (
            f"{name} and {reference_name} hold different blocks at heights {differing}; first: "
            f"{hashes[differing[0] - 1]} vs {reference[differing[0] - 1]}"
        )


def restore(cluster: Cluster, killed: list[str]) -> None:
    """Restart the killed nodes that are still down and wait until all five commit again."""
    for name in killed:
        if cluster.height(name) is None:
            cluster.restart(name)
    target = tip(cluster, NODES) + 1
    cluster.wait_for_height(NODES, target, progress_timeout_s)


def wait_until_stalled(cluster: Cluster, names: list[str]) -> int:
    """Poll until the named nodes' heights have not changed for `stall_settle_s`; that height."""
    deadline = time.monotonic() + stall_settle_timeout_s
    last = cluster.heights(names)
    since = time.monotonic()
    while time.monotonic() - since < stall_settle_s:
        assert time.monotonic() < deadline, f"{names} kept committing: {last}"
        time.sleep(0.2)
        seen = cluster.heights(names)
        if seen != last:
            last, since = seen, time.monotonic()
    return max(h for h in last.values() if h is not None)


def test_all_nodes_reach_the_same_height_with_identical_blocks(cluster: Cluster) -> None:
    heights = cluster.wait_for_height(NODES, 5, progress_timeout_s)
    assert_same_chain(cluster, NODES, min(heights.values()))


def test_commits_continue_with_one_validator_killed(cluster: Cluster) -> None:
    cluster.kill9("validator-1")
    try:
        survivors = [name for name in NODES if name != "validator-1"]
        before = tip(cluster, survivors)
        cluster.wait_for_height(survivors, before + blocks_to_prove_progress, progress_timeout_s)
        assert cluster.height("validator-1") is None, "validator-1 answers though killed"
    finally:
        restore(cluster, ["validator-1"])


def test_restarted_validator_catches_up_to_the_identical_chain(cluster: Cluster) -> None:
    cluster.kill9("validator-3")
    try:
        others = [name for name in NODES if name != "validator-3"]
        missed_from = tip(cluster, others)
        cluster.wait_for_height(others, missed_from + blocks_to_prove_progress, progress_timeout_s)
        cluster.restart("validator-3")
        target = tip(cluster, others)
        cluster.wait_for_height(NODES, target, progress_timeout_s)
        assert_same_chain(cluster, ["validator-3", *others], target)
    finally:
        restore(cluster, ["validator-3"])


def test_two_validators_killed_halts_commits_without_fork(cluster: Cluster) -> None:
    killed = ["validator-3", "validator-0"]
    survivors = [name for name in NODES if name not in killed]
    agreed = min(h for h in cluster.wait_for_height(NODES, 1, progress_timeout_s).values())
    agreed_hashes = cluster.block_hashes("validator-0", agreed)
    for name in killed:
        cluster.kill9(name)
    try:
        at_kill = tip(cluster, survivors)
        highest = at_kill
        deadline = time.monotonic() + stall_window_s
        while time.monotonic() < deadline:
            highest = max(highest, tip(cluster, survivors))
            time.sleep(0.2)
        assert highest <= at_kill + blocks_in_flight_max, (
            f"with 2 of 4 validators down the chain went from {at_kill} to {highest} in "
            f"{stall_window_s} s: {cluster.heights(survivors)}"
        )
        common = min(h for h in cluster.heights(survivors).values() if h is not None)
        assert_same_chain(cluster, survivors, common)
        assert cluster.block_hashes(survivors[0], agreed) == agreed_hashes
    finally:
        restore(cluster, killed)


def test_commits_resume_when_one_of_two_killed_validators_returns(cluster: Cluster) -> None:
    killed = ["validator-0", "validator-2"]
    survivors = [name for name in NODES if name not in killed]
    for name in killed:
        cluster.kill9(name)
    try:
        stalled_at = wait_until_stalled(cluster, survivors)
        cluster.restart("validator-2")
        quorum = [*survivors, "validator-2"]
        cluster.wait_for_height(quorum, stalled_at + blocks_to_prove_progress, progress_timeout_s)
    finally:
        restore(cluster, killed)


def test_observer_holds_the_validators_chain(cluster: Cluster) -> None:
    validators_tip = tip(cluster, VALIDATORS)
    cluster.wait_for_height([OBSERVER], validators_tip, progress_timeout_s)
    assert_same_chain(cluster, [OBSERVER, *VALIDATORS], validators_tip)
