"""A validator whose disk fills stops cleanly, warns first, and catches up once space returns
(issue 13).

A 4-validator consortium commits blocks. Validator-3's ledger is moved onto a small tmpfs
(mounted here: the tests run as root, as the network-namespace tests do) with a few MiB
free, and node.json sets its marks: a warning below 8 MiB free, a stop below 4 MiB. Batches
of notary anchors then fill the disk:

* /v1/status shows disk.low before the node stops;
* the node exits with code 3 and a message naming the ledger's path and the space wanted,
  without a traceback;
* the other validators go on committing;
* with the tmpfs grown, the node starts again, catches up and holds the same blocks as the
  others: nothing it wrote was half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster_harness import VALIDATORS, Cluster, free_port_base

from xinchain.client.member import Member
from xinchain.client.sdk import Client
from xinchain.node.home import Home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

TARGET = "validator-3"
OTHERS = [name for name in VALIDATORS if name != TARGET]
MiB = 1 << 20
warn_below = 8 * MiB
stop_below = 4 * MiB
headroom = 14 * MiB  # free on the tmpfs when the node starts on it
hashes_per_tx = 2000
fill_timeout_s = 180.0


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    assert os.geteuid() == 0, "mounting a small tmpfs needs root (as the netns tests do)"
    running = Cluster(tmp_path_factory.mktemp("disk") / "home", free_port_base())
    data = running.node_dir(TARGET) / "data"
    try:
        running.start()
        yield running
    finally:
        running.stop()
        if os.path.ismount(data):
            run("umount", str(data))


def used_bytes(directory: Path) -> int:
    return sum(path.stat().st_blocks * 512 for path in directory.iterdir() if path.is_file())


def test_a_full_disk_stops_the_node_cleanly_and_it_catches_up_after(cluster: Cluster) -> None:
    cluster.wait_for_height(VALIDATORS, 2, 60)
    cluster.kill9(TARGET)
    node_dir = cluster.node_dir(TARGET)
    data = node_dir / "data"
    kept = node_dir / "data.kept"
    data.rename(kept)
    data.mkdir()
    size = used_bytes(kept) + headroom
    run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(data))
    for path in kept.iterdir():
        shutil.copy2(path, data / path.name)
    config_path = node_dir / "node.json"
    config = json.loads(config_path.read_text())
    config["limits"] = {"disk_warn_below_bytes": warn_below, "disk_stop_below_bytes": stop_below}
    config_path.write_text(json.dumps(config))
    cluster.restart(TARGET)
    process = cluster.restarted[TARGET]
    assert cluster.status(TARGET)["disk"]["low"] is False

    home = Home(cluster.home)
    genesis = home.genesis()
    member = Member(genesis, "platform", home.org_key(genesis.suite, "platform"))
    seen_low = False
    deadline = time.monotonic() + fill_timeout_s
    with Client(cluster.api(OTHERS[0])) as client:
        while process.poll() is None:
            assert time.monotonic() < deadline, f"the disk never filled:\n{cluster.report()}"
            hashes = [secrets.token_bytes(32) for _ in range(hashes_per_tx)]
            client.submit_call(member, "notary", "anchor_batch", {"hashes": hashes})
            with contextlib.suppress(httpx.HTTPError, TypeError, KeyError):  # it may be stopping
                seen_low = seen_low or cluster.status(TARGET)["disk"]["low"]
            time.sleep(0.2)
    log = cluster.log_tail(TARGET)
    assert process.returncode == 3, f"exit code {process.returncode}:\n{log}"
    assert seen_low, "disk.low was never shown before the node stopped"
    assert f"the disk holding {data}" in log and "more needed" in log, log
    assert "Traceback" not in log, log
    del cluster.restarted[TARGET]

    # The others go on without it.
    going_on = max(h for h in cluster.heights(OTHERS).values() if h is not None) + 2
    cluster.wait_for_height(OTHERS, going_on, 60)

    run("mount", "-o", "remount,size=256m", str(data))
    cluster.restart(TARGET)
    target = max(h for h in cluster.heights(OTHERS).values() if h is not None) + 1
    cluster.wait_for_height(VALIDATORS, target, 90)
    assert cluster.block_hashes(TARGET, target) == cluster.block_hashes(OTHERS[0], target)
    assert cluster.status(TARGET)["disk"]["low"] is False
