"""A validator whose clock is 120 s slow, or 120 s fast, keeps up with the chain (issue 13).

A 4-validator `xinchain up` consortium commits blocks. Validator-3 is killed and started again
under libfaketime (Debian's faketime, installed by scripts/setup-browser) with its clock moved
120 s back, then 120 s forward. Each time:

* it follows the chain: within the timeout it reaches the others' height and holds the same
  blocks, although a slow clock sees every new block dated two minutes ahead (it does not vote
  for those; it follows what 2f+1 validators certified);
* the chain keeps committing;
* `/v1/status` shows the offset (clock_offset_ms beyond ±100 s) and its log says to check the
  clock.
"""

from __future__ import annotations

import shutil

import pytest
from cluster_harness import VALIDATORS, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SKEWED = "validator-3"
OTHERS = [name for name in VALIDATORS if name != SKEWED]
catch_up_timeout_s = 60.0
blocks_after_catching_up = 3


def tip(cluster: Cluster, names: list[str]) -> int:
    return max(h for h in cluster.heights(names).values() if h is not None)


@pytest.mark.parametrize("offset_s", [-120, 120], ids=["slow", "fast"])
def test_a_validator_with_a_skewed_clock_keeps_up(cluster: Cluster, offset_s: int) -> None:
    faketime = shutil.which("faketime")
    assert faketime is not None, "faketime is missing: scripts/setup-browser installs it"
    cluster.wait_for_height(OTHERS, 2, catch_up_timeout_s)
    cluster.kill9(SKEWED)
    log = cluster.node_dir(SKEWED) / "node.log"
    logged_before = log.stat().st_size if log.exists() else 0
    cluster.restart(SKEWED, prefix=(faketime, "-f", f"{offset_s:+d}s"))

    target = tip(cluster, OTHERS) + blocks_after_catching_up
    cluster.wait_for_height([*OTHERS, SKEWED], target, catch_up_timeout_s)
    reference = cluster.block_hashes(OTHERS[0], target)
    assert cluster.block_hashes(SKEWED, target) == reference

    offset_ms = cluster.status(SKEWED)["clock_offset_ms"]
    assert (offset_ms < -100_000) if offset_s < 0 else (offset_ms > 100_000), offset_ms
    with log.open("rb") as handle:
        handle.seek(logged_before)
        logged = handle.read().decode(errors="replace")
    assert "clock (NTP)" in logged, logged[-2000:]
