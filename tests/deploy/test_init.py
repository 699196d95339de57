"""docs/deploy.md rehearsed on loopback: four orgs and a regulator, each with its own home.

Scenarios:
- `xinchain init` per org, `xinchain genesis` from the member files, `xinchain peers` per org,
  then `xinchain node` per org: all five nodes commit the same blocks;
- each home holds only its own org's private keys;
- init refuses to overwrite an org's keys; genesis refuses members of different suites;
  peers refuses a node that was never initialised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ports import free_ports

pytestmark = pytest.mark.slow  # runs real processes (a node, a browser) or a large set

XINCHAIN = str(Path(sys.executable).parent / "xinchain")
ORGS = ("platform", "brand", "customs", "bank")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XINCHAIN, *args], capture_output=True, text=True, timeout=60)


def _init(home: Path, org: str, *, validator: bool, p2p: int, api: int, suite: str = "") -> None:
    args = ["init", "--home", str(home), "--org", org, "--node", f"{org}-node"]
    args += ["--roles", org, "--p2p-port", str(p2p), "--api-port", str(api)]
    if validator:
        args.append("--validator")
    if suite:
        args += ["--suite", suite]
    result = _run(*args)
    assert result.returncode == 0, result.stderr


def _height_and_hash(port: int) -> tuple[int, str]:
    status = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=2).json()
    return int(status["height"]), str(status["block_hash"])


@pytest.mark.timeout(120)
def test_four_orgs_on_their_own_homes_commit_the_same_chain(tmp_path: Path) -> None:
    orgs = (*ORGS, "regulator")
    ports = free_ports(2 * len(orgs))
    api_ports, p2p_ports = ports[: len(orgs)], ports[len(orgs) :]
    homes = {org: tmp_path / org for org in orgs}
    for index, org in enumerate(orgs):
        _init(
            homes[org],
            org,
            validator=org != "regulator",
            p2p=p2p_ports[index],
            api=api_ports[index],
        )
    members = [str(homes[org] / f"member-{org}.json") for org in orgs]
    result = _run("genesis", *members, "--chain-id", "trade-net", "--out", str(tmp_path / "g.json"))
    assert result.returncode == 0, result.stderr
    for org in orgs:
        (homes[org] / "genesis.json").write_bytes((tmp_path / "g.json").read_bytes())
        result = _run("peers", *members, "--home", str(homes[org]), "--node", f"{org}-node")
        assert result.returncode == 0, result.stderr

    processes = [
        subprocess.Popen(
            [
                XINCHAIN,
                "node",
                "--home",
                str(homes[org]),
                "--name",
                f"{org}-node",
                "--port",
                str(api_ports[index]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for index, org in enumerate(orgs)
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                views = [_height_and_hash(port) for port in api_ports]
            except httpx.HTTPError:
                views = []
            heights = [height for height, _ in views]
            if views and min(heights) >= 3:
                break
            assert time.monotonic() < deadline, f"nodes did not reach height 3: {views}"
            time.sleep(0.2)
        target = min(heights)
        hashes = {
            httpx.get(f"http://127.0.0.1:{port}/v1/blocks/{target}", timeout=2).json()["hash"]
            for port in api_ports
        }
        assert len(hashes) == 1
        genesis = json.loads((tmp_path / "g.json").read_text())
        assert [v["name"] for v in genesis["validators"]] == [f"{org}-node" for org in ORGS]
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(10)


def test_each_home_holds_only_its_own_private_keys(tmp_path: Path) -> None:
    ports = free_ports(4)
    _init(tmp_path / "a", "brand", validator=True, p2p=ports[0], api=ports[1])
    _init(tmp_path / "b", "bank", validator=False, p2p=ports[2], api=ports[3])
    assert sorted(p.name for p in (tmp_path / "a" / "keys").iterdir()) == ["brand.pem"]
    assert not (tmp_path / "b" / "nodes" / "bank-node" / "validator.pem").exists()
    member = json.loads((tmp_path / "a" / "member-brand.json").read_text())
    assert "PRIVATE" not in json.dumps(member)


def test_init_refuses_to_overwrite_an_orgs_keys(tmp_path: Path) -> None:
    ports = free_ports(2)
    _init(tmp_path, "brand", validator=True, p2p=ports[0], api=ports[1])
    result = _run("init", "--home", str(tmp_path), "--org", "brand", "--node", "brand-node")
    assert result.returncode == 2
    assert "already exists" in result.stderr


def test_genesis_refuses_members_of_different_suites(tmp_path: Path) -> None:
    ports = free_ports(4)
    _init(tmp_path / "a", "brand", validator=True, p2p=ports[0], api=ports[1])
    _init(tmp_path / "b", "bank", validator=True, p2p=ports[2], api=ports[3], suite="sm2-sm3")
    result = _run(
        "genesis",
        str(tmp_path / "a" / "member-brand.json"),
        str(tmp_path / "b" / "member-bank.json"),
        "--chain-id",
        "mixed",
        "--out",
        str(tmp_path / "g.json"),
    )
    assert result.returncode == 2
    assert "different suites" in result.stderr


def test_peers_refuses_a_node_never_initialised(tmp_path: Path) -> None:
    ports = free_ports(2)
    _init(tmp_path / "a", "brand", validator=True, p2p=ports[0], api=ports[1])
    member = str(tmp_path / "a" / "member-brand.json")
    result = _run("peers", member, "--home", str(tmp_path / "b"), "--node", "ghost")
    assert result.returncode == 2
    assert "xinchain init" in result.stderr
