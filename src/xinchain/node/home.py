"""A consortium's home directory: genesis, member keys, and one folder per node.

HOME/genesis.json                  the chain's genesis (docs/receipts.md shows its fields)
HOME/keys/<org>.pem                member org signing keys (the demo keeps them all here;
                                   in a real consortium each org keeps its own)
HOME/nodes/<name>/validator.pem    the node's validator key (validators only)
HOME/nodes/<name>/data/            LMDB: blocks, results, certificates, indexes, state
HOME/nodes/<name>/node.pid         present while the node runs
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from xinchain.crypto import PrivateKey, Suite, suite_named
from xinchain.errors import ConfigError
from xinchain.genesis import DEFAULT_PARAMS, Genesis, OrgSpec, ValidatorSpec

# The demo consortium of `xinchain up`: who does what in a cross-border supply chain.
DEMO_ORGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("platform", "Cross-border marketplace", ("platform", "payment")),
    ("brand", "Infant formula brand", ("brand",)),
    ("forwarder", "International forwarder", ("logistics",)),
    ("customs", "Customs broker", ("customs_broker",)),
    ("warehouse", "Hangzhou bonded warehouse", ("warehouse",)),
    ("bank", "Supply-chain bank", ("bank",)),
    ("regulator", "Market regulator", ("regulator",)),
)
# Validators are run by these orgs in turn; the regulator observes rather than votes.
VALIDATOR_ORGS = ("platform", "brand", "customs", "bank", "warehouse", "forwarder")
validators_max = 64


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

    def org_key_path(self, org: str) -> Path:
        return self.path / "keys" / f"{org}.pem"

    def org_key(self, suite: Suite, org: str) -> PrivateKey:
        return load_key(suite, self.org_key_path(org))

    def validator_key(self, suite: Suite, name: str) -> PrivateKey:
        return load_key(suite, self.node_dir(name) / "validator.pem")


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


def create_demo_home(
    home: Home, *, validators: int, suite_name: str, chain_id: str = "xinchain-local"
) -> Genesis:
    """Keys for every demo org and validator, and a genesis that lists them."""
    if home.exists():
        raise ConfigError(f"{home.genesis_path} already exists; not overwriting a chain")
    if not 1 <= validators <= validators_max:
        raise ConfigError(f"expected 1 to {validators_max} validators, found {validators}")
    suite = suite_named(suite_name)
    orgs = []
    for org_id, name, roles in DEMO_ORGS:
        key = suite.generate_key()
        write_key(home.org_key_path(org_id), key)
        orgs.append(OrgSpec(org_id, name, roles, (key.public_bytes().hex(),)))
    validator_specs = []
    for index in range(validators):
        name = f"validator-{index}"
        key = suite.generate_key()
        write_key(home.node_dir(name) / "validator.pem", key)
        org = VALIDATOR_ORGS[index % len(VALIDATOR_ORGS)]
        validator_specs.append(ValidatorSpec(name, org, key.public_bytes().hex()))
    genesis = Genesis(
        chain_id=chain_id,
        suite_name=suite.name,
        time_ms=int(time.time() * 1000),
        orgs=tuple(orgs),
        validators=tuple(validator_specs),
        params=dict(DEFAULT_PARAMS),
    )
    home.path.mkdir(parents=True, exist_ok=True)
    genesis.save(home.genesis_path)
    return genesis
