"""Registered nodes: genesis.nodes (form and rules) and governance's add_node, set_node_key and
remove_node. Which peer a node accepts is tested against real processes in
tests/cluster/test_membership.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chain_helpers import Chain, make_consortium, org_ids

from xinchain.contracts.governance import node_registry_in_use, registered_node
from xinchain.crypto.tls import key_pin, make_node_certificate, make_org_ca
from xinchain.errors import ConfigError
from xinchain.genesis import Genesis

MEMBERS = org_ids(6)
QUORUM = MEMBERS[1:5]  # four of six: at least two thirds
PIN = "ab" * 32


@pytest.fixture
def chain() -> Chain:
    return Chain(make_consortium("ed25519-sha256", org_count=len(MEMBERS)))


def enact(chain: Chain, action: dict[str, Any]) -> Any:
    result = chain.call(QUORUM[0], "governance", "propose", {"action": action})
    for org in QUORUM[1:]:
        assert result.ok, result.error
        result = chain.call(org, "governance", "approve", {"proposal": result.data["proposal"]})
    return result


def genesis_value(with_nodes: list[dict[str, Any]] | None) -> dict[str, Any]:
    ca = make_org_ca("org0")
    value = copy.deepcopy(make_consortium("ed25519-sha256").genesis.to_value())
    value["orgs"][0]["tls_ca"] = ca.certificate_pem.decode()
    if with_nodes is not None:
        value["nodes"] = with_nodes
    return value


def test_a_pin_is_the_hash_of_the_certificate_key_not_of_the_certificate() -> None:
    ca = make_org_ca("org0")
    first = make_node_certificate(ca, "node-a")
    again = make_node_certificate(ca, "node-a")
    assert len(key_pin(first.certificate_pem)) == 64
    assert key_pin(first.certificate_pem) != key_pin(again.certificate_pem)  # another key


def test_a_genesis_without_nodes_keeps_its_form_and_uses_no_registry(chain: Chain) -> None:
    assert "nodes" not in chain.app.genesis.to_value()
    assert not node_registry_in_use(chain.app.state)


def test_genesis_nodes_are_read_and_written_back_alike() -> None:
    value = genesis_value([{"name": "validator-0", "org": "org0", "tls_key": PIN}])
    genesis = Genesis.from_value(value)
    assert genesis.nodes[0].tls_key == PIN
    assert genesis.to_value() == value


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([], "at least one node"),
        ([{"name": "validator-0", "org": "org0"}], "nodes\\[0\\]"),
        ([{"name": "validator-0", "org": "org0", "tls_key": "AB" * 32}], "TLS key pin"),
        ([{"name": "validator-0", "org": "org1", "tls_key": PIN}], "with a TLS CA"),
        ([{"name": "other", "org": "org0", "tls_key": PIN}], "validator 'validator-0'"),
        (
            [
                {"name": "validator-0", "org": "org0", "tls_key": PIN},
                {"name": "validator-0", "org": "org0", "tls_key": PIN},
            ],
            "unique",
        ),
    ],
)
def test_bad_genesis_nodes_are_refused_naming_the_field(
    nodes: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Genesis.from_value(genesis_value(nodes))


def test_governance_registers_rekeys_and_removes_a_node(chain: Chain) -> None:
    action = {"kind": "add_node", "org": "org2", "name": "branch", "tls_key": PIN}
    assert enact(chain, action).data["executed"]
    assert node_registry_in_use(chain.app.state)
    assert registered_node(chain.app.state, "branch") == {
        "org": "org2",
        "tls_key": PIN,
        "validator": False,
    }
    new_pin = "cd" * 32
    assert enact(chain, {"kind": "set_node_key", "name": "branch", "tls_key": new_pin}).ok
    assert registered_node(chain.app.state, "branch")["tls_key"] == new_pin  # type: ignore[index]
    assert enact(chain, {"kind": "remove_node", "name": "branch"}).ok
    assert registered_node(chain.app.state, "branch") is None
    assert chain.app.read_state("governance", "nodes") == []


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ({"kind": "add_node", "org": "nobody", "name": "x", "tls_key": PIN}, "not a member"),
        ({"kind": "add_node", "org": "org1", "name": "x", "tls_key": "zz"}, "TLS key pin"),
        ({"kind": "add_node", "org": "org1", "name": "x"}, "add_node takes"),
        ({"kind": "set_node_key", "name": "ghost", "tls_key": PIN}, "not registered"),
        ({"kind": "remove_node", "name": "ghost"}, "not registered"),
    ],
)
def test_bad_node_actions_are_refused(chain: Chain, action: dict[str, Any], error: str) -> None:
    result = chain.call(QUORUM[0], "governance", "propose", {"action": action})
    if result.ok:  # decided at execution, when the quorum is reached
        for org in QUORUM[1:]:
            result = chain.call(org, "governance", "approve", {"proposal": result.data["proposal"]})
            if not result.ok:
                break
    assert not result.ok and error in result.error, result.error


def test_a_node_name_is_registered_once(chain: Chain) -> None:
    action = {"kind": "add_node", "org": "org2", "name": "branch", "tls_key": PIN}
    assert enact(chain, action).ok
    result = chain.call(QUORUM[0], "governance", "propose", {"action": action})
    for org in QUORUM[1:]:
        result = chain.call(org, "governance", "approve", {"proposal": result.data["proposal"]})
        if not result.ok:
            break
    assert not result.ok and "already registered" in result.error
