"""Genesis: the document every member signs up to before the chain starts.

It names the chain, its crypto suite, the member orgs (their roles and keys), the validator set
and the initial parameters. Its hash (suite hash of its canonical encoding) identifies the chain:
the first block's parent is the genesis hash, and a court pins a receipt to a chain by it.

Keys are lowercase hex text so that the JSON file and the CBOR value are one-to-one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xinchain import codec
from xinchain.crypto import Suite, suite_named
from xinchain.errors import ConfigError, DecodeError, XinchainError
from xinchain.types import (
    block_framing_bytes_max,
    check_identifier,
    check_map_keys,
    check_uint,
    frame_bytes_max,
    tx_bytes_max,
)

# Defaults for the parameters genesis may set; governance may change them later.
DEFAULT_PARAMS: dict[str, int] = {
    # How far ahead of the current height a transaction may set `valid_until`.
    "tx_validity_blocks_max": 100_000,
    # Transactions in one block: bounds execution time per block and memory per proposal.
    "block_txs_max": 5_000,
    # Encoded transaction bytes in one block (16 MiB).
    "block_bytes_max": 16 * 1024 * 1024,
}


def param_relations_broken(params: Mapping[str, int]) -> str | None:
    """Why a set of parameters cannot work together, or None. A block must fit one P2P frame
    (a proposal carries it whole) and hold at least one transaction of the largest size."""
    block_bytes = params["block_bytes_max"]
    room = frame_bytes_max - block_framing_bytes_max
    if block_bytes > room:
        return (
            f"block_bytes_max {block_bytes} does not fit a P2P frame: at most {room} "
            f"({frame_bytes_max} bytes a frame, less {block_framing_bytes_max} for the header "
            "and framing)"
        )
    if block_bytes < tx_bytes_max:
        return (
            f"block_bytes_max {block_bytes} is below the largest transaction ({tx_bytes_max} "
            "bytes), which could then never be included"
        )
    return None


_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


@dataclass(frozen=True)
class OrgSpec:
    id: str
    name: str
    roles: tuple[str, ...]
    keys: tuple[str, ...]  # hex public keys that may sign transactions for this org
    tls_ca: str = ""  # PEM of the CA that issues this org's node certificates, if it runs nodes

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "roles": list(self.roles),
            "keys": list(self.keys),
        }
        if self.tls_ca:
            value["tls_ca"] = self.tls_ca
        return value


@dataclass(frozen=True)
class ValidatorSpec:
    name: str
    org: str
    public_key: str  # hex

    def to_value(self) -> dict[str, Any]:
        return {"name": self.name, "org": self.org, "public_key": self.public_key}


@dataclass(frozen=True)
class NodeSpec:
    """A node registered to take part in P2P: its name (its certificate's common name), the
    org whose CA certifies it, and the key pin of its TLS certificate (crypto.tls.key_pin)."""

    name: str
    org: str
    tls_key: str  # 64 hex digits

    def to_value(self) -> dict[str, Any]:
        return {"name": self.name, "org": self.org, "tls_key": self.tls_key}


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    suite_name: str
    time_ms: int
    orgs: tuple[OrgSpec, ...]
    validators: tuple[ValidatorSpec, ...]
    params: dict[str, int]
    # The nodes allowed on the P2P network, validators included. Empty (a chain from before
    # registration): any node certified by a member org's CA is accepted, as it was then.
    nodes: tuple[NodeSpec, ...] = ()

    @property
    def suite(self) -> Suite:
        return suite_named(self.suite_name)

    def to_value(self) -> dict[str, Any]:
        value = {
            "chain_id": self.chain_id,
            "suite": self.suite_name,
            "time_ms": self.time_ms,
            "orgs": [org.to_value() for org in self.orgs],
            "validators": [validator.to_value() for validator in self.validators],
            "params": dict(self.params),
        }
        if self.nodes:  # absent, not empty: a genesis from before registration keeps its hash
            value["nodes"] = [node.to_value() for node in self.nodes]
        return value

    def hash_hex(self) -> str:
        return self.suite.hash(codec.encode(self.to_value())).hex()

    def validators_hash_hex(self) -> str:
        return validators_hash(self.suite, [v.to_value() for v in self.validators])

    def tls_ca_bundle(self) -> str:
        return "".join(org.tls_ca for org in self.orgs if org.tls_ca)

    def org(self, org_id: str) -> OrgSpec | None:
        return next((org for org in self.orgs if org.id == org_id), None)

    @classmethod
    def from_value(cls, value: object) -> Genesis:
        try:
            return _parse_genesis(value)
        except XinchainError as exc:
            raise ConfigError(f"genesis is malformed: {exc}", field=exc.field) from exc

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no genesis file at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"genesis file {path} is not JSON: {exc}") from exc
        return cls.from_value(value)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_value(), indent=2, sort_keys=True) + "\n", "utf-8")


def validators_hash(suite: Suite, validators: list[dict[str, Any]]) -> str:
    return suite.hash(codec.encode(validators)).hex()


def _parse_genesis(value: object) -> Genesis:
    names = {"chain_id", "suite", "time_ms", "orgs", "validators", "params"}
    if isinstance(value, dict) and "nodes" in value:
        names.add("nodes")
    top = check_map_keys(value, names, "genesis")
    codec.encode(top)  # inside the canonical data model (no floats, ...)
    suite = suite_named(str(top["suite"]))
    orgs = tuple(_parse_org(item, index, suite) for index, item in enumerate(_list(top, "orgs")))
    org_ids = [org.id for org in orgs]
    if len(set(org_ids)) != len(org_ids):
        raise DecodeError("org ids must be unique", field="orgs")
    org_keys = [key for org in orgs for key in org.keys]
    if len(set(org_keys)) != len(org_keys):
        raise DecodeError("a signing key belongs to one org and is listed once", field="orgs")
    validators = tuple(
        _parse_validator(item, index, suite, set(org_ids))
        for index, item in enumerate(_list(top, "validators"))
    )
    if not validators:
        raise DecodeError("at least one validator is needed", field="validators")
    if len({v.public_key for v in validators}) != len(validators):
        raise DecodeError("validator keys must be unique", field="validators")
    if len({v.name for v in validators}) != len(validators):
        raise DecodeError("validator names must be unique", field="validators")
    params = top["params"]
    if not isinstance(params, dict):
        raise DecodeError("expected a map", field="params")
    for name, setting in params.items():
        if name not in DEFAULT_PARAMS:
            raise DecodeError(f"unknown parameter; known: {sorted(DEFAULT_PARAMS)}", field=name)
        check_uint(setting, f"params.{name}")
    nodes: tuple[NodeSpec, ...] = ()
    if "nodes" in top:
        certifying = {org.id for org in orgs if org.tls_ca}
        nodes = tuple(
            _parse_node(item, index, certifying) for index, item in enumerate(_list(top, "nodes"))
        )
        if not nodes:
            raise DecodeError("expected at least one node (or no nodes field)", field="nodes")
        if len({node.name for node in nodes}) != len(nodes):
            raise DecodeError("node names must be unique", field="nodes")
        registered = {node.name: node.org for node in nodes}
        for index, validator in enumerate(validators):
            if registered.get(validator.name) != validator.org:
                raise DecodeError(
                    f"validator {validator.name!r} of {validator.org!r} has no node registered "
                    "for its org: every validator is a registered node",
                    field=f"validators[{index}]",
                )
    return Genesis(
        chain_id=check_identifier(top["chain_id"], "chain_id"),
        suite_name=suite.name,
        time_ms=check_uint(top["time_ms"], "time_ms"),
        orgs=orgs,
        validators=validators,
        params={**DEFAULT_PARAMS, **params},
        nodes=nodes,
    )


_PIN = re.compile(r"^[0-9a-f]{64}$")


def check_tls_key(value: object, where: str) -> str:
    if not isinstance(value, str) or not _PIN.fullmatch(value):
        raise DecodeError(
            "expected a TLS key pin: the SHA-256 of the certificate's SubjectPublicKeyInfo as "
            f"64 lowercase hex digits (docs/deploy.md shows how to compute it), found {value!r}",
            field=where,
        )
    return value


def _parse_node(value: object, index: int, certifying_orgs: set[str]) -> NodeSpec:
    where = f"nodes[{index}]"
    node = check_map_keys(value, {"name", "org", "tls_key"}, where)
    org = check_identifier(node["org"], f"{where}.org")
    if org not in certifying_orgs:
        raise DecodeError(
            f"names org {org!r}, which genesis does not list with a TLS CA", field=f"{where}.org"
        )
    return NodeSpec(
        name=check_identifier(node["name"], f"{where}.name"),
        org=org,
        tls_key=check_tls_key(node["tls_key"], f"{where}.tls_key"),
    )


def _list(top: dict[str, Any], name: str) -> list[Any]:
    items = top[name]
    if not isinstance(items, list):
        raise DecodeError("expected a list", field=name)
    return items


def check_public_key_hex(value: object, suite: Suite, where: str) -> str:
    if (
        not isinstance(value, str)
        or not _HEX.fullmatch(value)
        or len(value) != 2 * suite.public_key_bytes
    ):
        raise DecodeError(
            f"expected a {suite.name} public key as {2 * suite.public_key_bytes} lowercase hex "
            f"digits, found {value!r}",
            field=where,
        )
    if not suite.valid_public_key(bytes.fromhex(value)):
        raise DecodeError(
            f"not a valid {suite.name} public key: "
            + (
                "expected a canonical point of the prime-order subgroup, not of small order"
                if suite.name == "ed25519-sha256"
                else "expected an uncompressed point 04 || x || y on the SM2 curve"
            ),
            field=where,
        )
    return value


def _parse_org(value: object, index: int, suite: Suite) -> OrgSpec:
    where = f"orgs[{index}]"
    fields = {"id", "name", "roles", "keys"}
    if isinstance(value, dict) and "tls_ca" in value:
        fields.add("tls_ca")
    org = check_map_keys(value, fields, where)
    tls_ca = org.get("tls_ca", "")
    if not isinstance(tls_ca, str) or (
        "tls_ca" in org and not tls_ca.startswith("-----BEGIN CERTIFICATE-----")
    ):
        raise DecodeError("expected a PEM certificate", field=f"{where}.tls_ca")
    if not isinstance(org["name"], str) or not org["name"]:
        raise DecodeError("expected a display name", field=f"{where}.name")
    roles = org["roles"]
    if not isinstance(roles, list):
        raise DecodeError("expected a list of role names", field=f"{where}.roles")
    keys = org["keys"]
    if not isinstance(keys, list):
        raise DecodeError("expected a list of hex public keys", field=f"{where}.keys")
    return OrgSpec(
        id=check_identifier(org["id"], f"{where}.id"),
        name=org["name"],
        roles=tuple(check_identifier(role, f"{where}.roles") for role in roles),
        keys=tuple(check_public_key_hex(key, suite, f"{where}.keys") for key in keys),
        tls_ca=tls_ca,
    )


def _parse_validator(value: object, index: int, suite: Suite, org_ids: set[str]) -> ValidatorSpec:
    where = f"validators[{index}]"
    validator = check_map_keys(value, {"name", "org", "public_key"}, where)
    org = check_identifier(validator["org"], f"{where}.org")
    if org not in org_ids:
        raise DecodeError(f"names org {org!r}, which genesis does not list", field=where)
    return ValidatorSpec(
        name=check_identifier(validator["name"], f"{where}.name"),
        org=org,
        public_key=check_public_key_hex(validator["public_key"], suite, f"{where}.public_key"),
    )
