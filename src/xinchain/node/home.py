"""A consortium's home directory: genesis, member keys, and one folder per node.

HOME/genesis.json                  the chain's genesis (docs/receipts.md shows its fields)
HOME/keys/<org>.pem                member org signing keys (the demo keeps them all here;
                                   in a real consortium each org keeps its own)
HOME/orgs/<org>/ca.pem, ca.key     the org's TLS CA (its certificate is also in genesis)
HOME/nodes/<name>/validator.pem    the node's validator key (validators only)
HOME/nodes/<name>/tls.pem, tls.key the node's TLS certificate (issued by its org's CA) and key
HOME/nodes/<name>/node.json        ports and peers: {api_port, p2p_host, p2p_port, peers:
                                   [{name, host, port}], limits (optional: connection caps
                                   and read deadlines, xinchain.node.limits)}
HOME/nodes/<name>/safety.json      SafetyRules state (validators only)
HOME/nodes/<name>/gateway.token    the token the console presents to the node's gateway
HOME/nodes/<name>/data/            LMDB: blocks, results, certificates, indexes, state
HOME/nodes/<name>/node.pid         present while the node runs
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xinchain.crypto import PrivateKey, Suite, suite_named
from xinchain.crypto.tls import CertifiedKey, key_pin, make_node_certificate, make_org_ca
from xinchain.errors import ConfigError
from xinchain.genesis import DEFAULT_PARAMS, Genesis, NodeSpec, OrgSpec, ValidatorSpec
from xinchain.node.limits import NodeLimits

# The demo consortium of `xinchain up`: who does what in a cross-border supply chain.
DEMO_ORGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("platform", "Cross-border marketplace", ("platform", "payment", "merchant")),
    ("brand", "Infant formula brand", ("brand", "merchant")),
    ("forwarder", "International forwarder", ("logistics",)),
    ("customs", "Customs broker", ("customs_broker",)),
    ("warehouse", "Hangzhou bonded warehouse", ("warehouse",)),
    ("bank", "Supply-chain bank", ("bank",)),
    ("regulator", "Market regulator", ("regulator",)),
    # A second marketplace, where merchants verified by the first onboard with their
    # credentials (docs/did-method.md).
    ("marketplace_b", "Second cross-border marketplace", ("platform", "merchant")),
)
# Validators are run by these orgs in turn; the regulator observes rather than votes.
VALIDATOR_ORGS = ("platform", "brand", "customs", "bank", "warehouse", "forwarder")
validators_max = 64
OBSERVER_ORG = "regulator"
OBSERVER_NAME = "observer"
# P2P ports sit this far above the API ports of the same nodes.
p2p_port_offset = 100


@dataclass(frozen=True)
class NodeConfig:
    api_port: int
    p2p_port: int
    peers: tuple[tuple[str, str, int], ...]  # (name, host, port)
    p2p_host: str = "127.0.0.1"  # address the P2P listener binds
    limits: NodeLimits = field(default_factory=NodeLimits)

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "api_port": self.api_port,
            "p2p_host": self.p2p_host,
            "p2p_port": self.p2p_port,
            "peers": [{"name": n, "host": h, "port": p} for n, h, p in self.peers],
        }
        if self.limits != NodeLimits():
            value["limits"] = self.limits.to_value()
        return value


@dataclass(frozen=True)
class Home:
    path: Path

    @property
    def genesis_path(self) -> Path:
        return self.path / "genesis.json"

    def exists(self) -> bool:
        return self.genesis_path.exists()

    def genesis(self) -> Genesis:
        return Genesis.load(self.genesis_path)

    def node_dir(self, name: str) -> Path:
        return self.path / "nodes" / name

    def running_node_pid(self, name: str) -> int | None:
        """The live process named in the node's node.pid, if it is the one that wrote it.

        node.pid outlives a SIGKILL and its number may since belong to another process: the
        process must be an xinchain command that started before the file was written.
        """
        pid_path = self.node_dir(name) / "node.pid"
        try:
            pid = int(pid_path.read_text().strip())
            written = pid_path.stat().st_mtime
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes()
            started = _process_start_time(pid)
        except (OSError, ValueError):
            return None
        if pid == os.getpid() or b"xinchain" not in arguments:
            return None
        # The boot time is in whole seconds: a second's slack.
        return pid if started <= written + 1.0 else None

    def org_key_path(self, org: str) -> Path:
        return self.path / "keys" / f"{org}.pem"

    def org_key(self, suite: Suite, org: str) -> PrivateKey:
        return load_key(suite, self.org_key_path(org))

    def validator_key(self, suite: Suite, name: str) -> PrivateKey:
        return load_key(suite, self.node_dir(name) / "validator.pem")

    def gateway_token(self, name: str) -> str:
        """Node `name`'s gateway token (created, owner-only, the first time it is asked for):
        the console presents it to have the node sign for its org."""
        path = self.node_dir(name) / "gateway.token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        return path.read_text(encoding="utf-8").strip()

    def node_names(self) -> list[str]:
        root = self.path / "nodes"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []

    def node_config(self, name: str) -> NodeConfig | None:
        path = self.node_dir(name) / "node.json"
        if not path.exists():
            return None
        try:
            value = json.loads(path.read_text())
            peers = tuple((p["name"], p["host"], int(p["port"])) for p in value["peers"])
            return NodeConfig(
                int(value["api_port"]),
                int(value["p2p_port"]),
                peers,
                str(value.get("p2p_host", "127.0.0.1")),
                NodeLimits.from_value(value.get("limits")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is malformed: {exc}") from exc

    def save_node_config(self, name: str, config: NodeConfig) -> None:
        path = self.node_dir(name) / "node.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config.to_value(), indent=2) + "\n")

    def configure_local_ports(self, base_port: int) -> list[tuple[str, int]]:
        """Give every node of this home loopback ports from `base_port` up (validators in
        genesis order, then observers) and make each the peer of all others."""
        validators = [v.name for v in self.genesis().validators]
        names = validators + [n for n in self.node_names() if n not in validators]
        ports = {name: base_port + index for index, name in enumerate(names)}
        for name in names:
            peers = tuple(
                (other, "127.0.0.1", ports[other] + p2p_port_offset)
                for other in names
                if other != name
            )
            config = self.node_config(name)
            fresh = NodeConfig(ports[name], ports[name] + p2p_port_offset, peers)
            if config is not None:
                fresh = replace(fresh, limits=config.limits)
            self.save_node_config(name, fresh)
        return [(name, ports[name]) for name in names]


def load_key(suite: Suite, path: Path) -> PrivateKey:
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no key file at {path}") from None
    return suite.load_private_pem(pem)


def write_key(path: Path, key: PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.to_pem())


def write_tls(path: Path, certified: CertifiedKey, stem: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{stem}.pem").write_bytes(certified.certificate_pem)
    descriptor = os.open(path / f"{stem}.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(certified.key_pem)


def create_demo_home(
    home: Home,
    *,
    validators: int,
    suite_name: str,
    chain_id: str | None = None,
    observer: bool = True,
) -> Genesis:
    """Keys, TLS CAs and certificates for every demo org and node, and a genesis listing them.

    Without `chain_id` the chain is named `xinchain-local-` and 8 random hex digits, so that no
    two local consortia share a name (a receipt is still pinned by its genesis hash, not its
    name).

    With more than one validator an observer node for the regulator org is created too,
    unless `observer` is False.
    """
    if home.exists():
        raise ConfigError(f"{home.genesis_path} already exists; not overwriting a chain")
    chain_id = chain_id or f"xinchain-local-{secrets.token_hex(4)}"
    if not 1 <= validators <= validators_max:
        raise ConfigError(f"expected 1 to {validators_max} validators, found {validators}")
    suite = suite_named(suite_name)
    validator_orgs = [VALIDATOR_ORGS[i % len(VALIDATOR_ORGS)] for i in range(validators)]
    node_orgs = dict(
        zip([f"validator-{i}" for i in range(validators)], validator_orgs, strict=True)
    )
    if validators > 1 and observer:
        node_orgs[OBSERVER_NAME] = OBSERVER_ORG
    orgs = []
    nodes: list[NodeSpec] = []
    for org_id, name, roles in DEMO_ORGS:
        key = suite.generate_key()
        write_key(home.org_key_path(org_id), key)
        ca = make_org_ca(org_id)
        write_tls(home.path / "orgs" / org_id, ca, "ca")
        orgs.append(
            OrgSpec(org_id, name, roles, (key.public_bytes().hex(),), ca.certificate_pem.decode())
        )
        for node_name, node_org in node_orgs.items():
            if node_org == org_id:
                certified = make_node_certificate(ca, node_name)
                write_tls(home.node_dir(node_name), certified, "tls")
                nodes.append(NodeSpec(node_name, org_id, key_pin(certified.certificate_pem)))
    validator_specs = []
    for index, org in enumerate(validator_orgs):
        name = f"validator-{index}"
        key = suite.generate_key()
        write_key(home.node_dir(name) / "validator.pem", key)
        validator_specs.append(ValidatorSpec(name, org, key.public_bytes().hex()))
    genesis = Genesis(
        chain_id=chain_id,
        suite_name=suite.name,
        time_ms=int(time.time() * 1000),
        orgs=tuple(orgs),
        validators=tuple(validator_specs),
        params=dict(DEFAULT_PARAMS),
        nodes=tuple(sorted(nodes, key=lambda node: list(node_orgs).index(node.name))),
    )
    home.path.mkdir(parents=True, exist_ok=True)
    genesis.save(home.genesis_path)
    return genesis


# --- a consortium spread over machines (docs/deploy.md) ----------------------------------------


def init_member(
    home: Home,
    *,
    org: str,
    org_name: str,
    roles: tuple[str, ...],
    node: str,
    validator: bool,
    suite_name: str,
    p2p_host: str,
    p2p_port: int,
    api_port: int,
) -> dict[str, Any]:
    """One org's keys, CA and node, and the public member file it sends the coordinator."""
    suite = suite_named(suite_name)
    if home.org_key_path(org).exists():
        raise ConfigError(f"{home.org_key_path(org)} already exists; not overwriting keys")
    key = suite.generate_key()
    write_key(home.org_key_path(org), key)
    ca = make_org_ca(org)
    write_tls(home.path / "orgs" / org, ca, "ca")
    certified = make_node_certificate(ca, node)
    write_tls(home.node_dir(node), certified, "tls")
    validators = []
    if validator:
        validator_key = suite.generate_key()
        write_key(home.node_dir(node) / "validator.pem", validator_key)
        validators.append(
            {"name": node, "org": org, "public_key": validator_key.public_bytes().hex()}
        )
    home.save_node_config(node, NodeConfig(api_port, p2p_port, (), p2p_host))
    member = {
        "suite": suite.name,
        "org": OrgSpec(
            org, org_name, roles, (key.public_bytes().hex(),), ca.certificate_pem.decode()
        ).to_value(),
        "validators": validators,
        "node": {
            "name": node,
            "host": p2p_host,
            "port": p2p_port,
            "tls_key": key_pin(certified.certificate_pem),
        },
    }
    member_path = home.path / f"member-{org}.json"
    member_path.write_text(json.dumps(member, indent=2) + "\n")
    return member


def _load_member(path: Path) -> dict[str, Any]:
    try:
        member = json.loads(path.read_text())
        if not isinstance(member, dict) or not {"suite", "org", "validators", "node"} <= set(
            member
        ):
            raise ValueError("expected suite, org, validators and node")
        return member
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a member file: {exc}") from exc


def assemble_genesis(chain_id: str, member_paths: list[Path]) -> Genesis:
    """The genesis of a consortium from its members' files, checked like any genesis."""
    members = [_load_member(path) for path in member_paths]
    suites = {member["suite"] for member in members}
    if len(suites) != 1:
        raise ConfigError(f"members chose different suites: {sorted(suites)}")
    value = {
        "chain_id": chain_id,
        "suite": suites.pop(),
        "time_ms": int(time.time() * 1000),
        "orgs": [member["org"] for member in members],
        "validators": [v for member in members for v in member["validators"]],
        "params": dict(DEFAULT_PARAMS),
        "nodes": [
            {
                "name": member["node"].get("name"),
                "org": member["org"].get("id"),
                "tls_key": member["node"].get("tls_key"),
            }
            for member in members
        ],
    }
    return Genesis.from_value(value)


def set_peers(home: Home, node: str, member_paths: list[Path]) -> NodeConfig:
    """Point `node` at every other member's node, as their member files give them."""
    config = home.node_config(node)
    if config is None:
        raise ConfigError(f"{home.node_dir(node)} has no node.json; run `xinchain init` first")
    peers = tuple(
        (member["node"]["name"], member["node"]["host"], int(member["node"]["port"]))
        for member in (_load_member(path) for path in member_paths)
        if member["node"]["name"] != node
    )
    updated = replace(config, peers=peers)
    home.save_node_config(node, updated)
    return updated


def _process_start_time(pid: int) -> float:
    """When process `pid` started, in seconds since the epoch (Linux /proc)."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(after_name[19])  # field 22, starttime, in clock ticks since boot
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    raise ValueError("/proc/stat has no btime line")
