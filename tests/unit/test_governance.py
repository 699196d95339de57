"""Governance: member registry and parameters, changed only with >= 2/3 of member orgs.

The chain has six member orgs (org0 ... org5); org0 runs the only validator. Two thirds of six
is four, so a proposal executes at its fourth approval (the proposer's own counts).

Scenarios, each under both crypto suites (ed25519-sha256, sm2-sm3):

quorum
- approvals_needed(n) is the smallest count that is at least 2n/3
- for add_member, remove_member, set_roles, set_keys and set_param: three approvals leave the
  proposal pending and the state as it was; the fourth executes it
- approvals within one block count in order: a block of a proposal and three approvals executes
- the quorum follows the membership: with seven members a proposal needs five
- an approval from an org removed since no longer counts
- proposals are numbered from 1 upwards

approvals refused (recorded as failed, writing nothing)
- a second approval by the same org, including the proposer's own
- approving an executed proposal, or one that does not exist
- a proposal number that is not an integer

proposals refused (recorded as failed, writing nothing)
- an unknown action kind, naming the kinds there are
- malformed actions: not a map, no kind, missing or extra fields, bad org ids, role names or
  keys, too many roles, an empty display name, an unknown parameter, a value that is not a
  positive integer, a parameter name that is not text
- missing or extra arguments to propose

actions that fail when they would execute (the approval is recorded as failed)
- removing an org that runs a validator
- adding an org that is already a member
- changing the roles of an org that is not a member

effects on admission and execution
- an added org's key is refused before the proposal executes and admitted after
- a removed org's transactions are refused at admission (Unauthorized, sender)
- a removed org's transaction already admitted into the removing block fails at execution
- set_keys: the old key is refused (Unauthorized, public_key), the new one admitted
- set_param of tx_validity_blocks_max moves the far end of the admission window
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from chain_helpers import SUITE_NAMES, Chain, make_consortium, org_ids

from xinchain.contracts.governance import approvals_needed, roles_per_org_max
from xinchain.crypto import PrivateKey
from xinchain.errors import Unauthorized, ValidTooFarAhead
from xinchain.types import Transaction, TxResult

MEMBERS = org_ids(6)
QUORUM = 4  # ceil(2 * 6 / 3)


@pytest.fixture(params=SUITE_NAMES)
def chain(request: pytest.FixtureRequest) -> Chain:
    return Chain(make_consortium(request.param, org_count=len(MEMBERS)))


# --- helpers -----------------------------------------------------------------------------------


def propose(chain: Chain, org: str, action: object) -> TxResult:
    return chain.call(org, "governance", "propose", {"action": action})


def approve(chain: Chain, org: str, number: object) -> TxResult:
    return chain.call(org, "governance", "approve", {"proposal": number})


def approved_by(chain: Chain, action: object, orgs: list[str]) -> TxResult:
    """orgs[0] proposes, the rest approve in turn; returns the last result (all must pass)."""
    result = propose(chain, orgs[0], action)
    assert result.ok, result.error
    for org in orgs[1:]:
        result = approve(chain, org, result.data["proposal"])
        assert result.ok, result.error
    return result


def enacted(chain: Chain, action: object) -> TxResult:
    return approved_by(chain, action, MEMBERS[1 : 1 + QUORUM])


def members(chain: Chain) -> list[str]:
    return list(chain.app.read_state("governance", "members"))


def org_record(chain: Chain, org: str) -> Any:
    return chain.app.read_state("governance", f"org/{org}")


def proposal(chain: Chain, number: int) -> Any:
    return chain.app.read_state("governance", f"proposal/{number}")


def anchor_from(chain: Chain, org: str, key: PrivateKey | None = None) -> Transaction:
    return chain.sign(org, "notary", "anchor", {"hash": b"\x5a" * 32}, key=key)


def new_key_hex(chain: Chain) -> str:
    return chain.suite.generate_key().public_bytes().hex()


def set_window(blocks: int) -> dict[str, Any]:
    return {"kind": "set_param", "name": "tx_validity_blocks_max", "value": blocks}


def refused_call(chain: Chain, org: str, method: str, args: dict[str, Any]) -> TxResult:
    """Commit one governance call that the contract must refuse: failed, and wrote nothing."""
    block = chain.commit_txs([chain.sign(org, "governance", method, args)])
    result = block.results[0]
    assert not result.ok, "the contract accepted the call"
    assert block.execution.writes == {}
    return result


# --- quorum ------------------------------------------------------------------------------------


@pytest.mark.parametrize("member_count", range(1, 13))
def test_approvals_needed_is_the_smallest_count_of_at_least_two_thirds(member_count: int) -> None:
    needed = approvals_needed(member_count)

    assert 3 * needed >= 2 * member_count
    assert 3 * (needed - 1) < 2 * member_count


@dataclass(frozen=True)
class ActionCase:
    make: Callable[[Chain], dict[str, Any]]
    took_effect: Callable[[Chain], bool]


ACTIONS = {
    "add_member": ActionCase(
        lambda chain: {
            "kind": "add_member",
            "org": "org6",
            "name": "Newcomer",
            "roles": ["member"],
            "keys": [new_key_hex(chain)],
        },
        lambda chain: "org6" in members(chain) and org_record(chain, "org6") is not None,
    ),
    "remove_member": ActionCase(
        lambda chain: {"kind": "remove_member", "org": "org5"},
        lambda chain: "org5" not in members(chain) and org_record(chain, "org5") is None,
    ),
    "set_roles": ActionCase(
        lambda chain: {"kind": "set_roles", "org": "org2", "roles": ["auditor", "bank"]},
        lambda chain: org_record(chain, "org2")["roles"] == ["auditor", "bank"],
    ),
    "set_keys": ActionCase(
        lambda chain: {"kind": "set_keys", "org": "org2", "keys": [new_key_hex(chain)]},
        lambda chain: (
            org_record(chain, "org2")["keys"] != [chain.consortium.key("org2").public_bytes().hex()]
        ),
    ),
    "set_param": ActionCase(
        lambda chain: set_window(50),
        lambda chain: chain.app.read_state("governance", "param/tx_validity_blocks_max") == 50,
    ),
}


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_proposal_with_three_of_six_approvals_is_not_executed(chain: Chain, kind: str) -> None:
    case = ACTIONS[kind]

    result = approved_by(chain, case.make(chain), MEMBERS[1:4])

    assert result.data == {"proposal": 1, "approvals": 3, "needed": QUORUM, "executed": False}
    assert proposal(chain, 1)["executed"] is False
    assert not case.took_effect(chain)


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_proposal_is_executed_at_the_fourth_of_six_approvals(chain: Chain, kind: str) -> None:
    case = ACTIONS[kind]
    pending = approved_by(chain, case.make(chain), MEMBERS[1:4])

    result = approve(chain, "org4", pending.data["proposal"])

    assert result.ok, result.error
    assert result.data == {"proposal": 1, "approvals": 4, "needed": QUORUM, "executed": True}
    assert proposal(chain, 1)["executed"] is True
    assert proposal(chain, 1)["approvals"] == ["org1", "org2", "org3", "org4"]
    assert case.took_effect(chain)


def test_proposal_and_three_approvals_in_one_block_execute_at_the_last(chain: Chain) -> None:
    txs = [chain.sign("org1", "governance", "propose", {"action": set_window(50)})]
    txs += [chain.sign(org, "governance", "approve", {"proposal": 1}) for org in MEMBERS[2:5]]

    block = chain.commit_txs(txs)

    assert [result.data["executed"] for result in block.results] == [False, False, False, True]
    assert ACTIONS["set_param"].took_effect(chain)


def test_quorum_follows_the_membership(chain: Chain) -> None:
    enacted(chain, ACTIONS["add_member"].make(chain))

    result = propose(chain, "org1", set_window(50))

    assert result.data["needed"] == approvals_needed(7) == 5


def test_approval_of_an_org_removed_since_no_longer_counts(chain: Chain) -> None:
    # org5, org4 and org3 back proposal 1; then org5 leaves (proposal 2).
    pending = approved_by(chain, set_window(50), ["org5", "org4", "org3"])
    assert pending.data["approvals"] == 3
    enacted(chain, {"kind": "remove_member", "org": "org5"})

    # Five members remain, four are needed; org3 and org4 still count, org5 does not.
    result = approve(chain, "org2", 1)

    assert result.data == {"proposal": 1, "approvals": 3, "needed": 4, "executed": False}
    assert approve(chain, "org1", 1).data["executed"] is True


def test_proposals_are_numbered_from_one_upwards(chain: Chain) -> None:
    numbers = [propose(chain, "org1", set_window(value)).data["proposal"] for value in (7, 8, 9)]

    assert numbers == [1, 2, 3]


# --- approvals refused -------------------------------------------------------------------------


def test_second_approval_by_the_same_org_is_refused(chain: Chain) -> None:
    propose(chain, "org1", set_window(50))
    approve(chain, "org2", 1)

    result = refused_call(chain, "org2", "approve", {"proposal": 1})

    assert "'org2' already approved proposal 1" in result.error
    assert proposal(chain, 1)["approvals"] == ["org1", "org2"]


def test_proposer_approving_its_own_proposal_again_is_refused(chain: Chain) -> None:
    propose(chain, "org1", set_window(50))

    result = refused_call(chain, "org1", "approve", {"proposal": 1})

    assert "already approved" in result.error


def test_approving_an_executed_proposal_is_refused(chain: Chain) -> None:
    enacted(chain, set_window(50))

    result = refused_call(chain, "org5", "approve", {"proposal": 1})

    assert "proposal 1 was already executed" in result.error
    assert "org5" not in proposal(chain, 1)["approvals"]


def test_approving_an_unknown_proposal_is_refused(chain: Chain) -> None:
    propose(chain, "org1", set_window(50))

    result = refused_call(chain, "org2", "approve", {"proposal": 99})

    assert "no proposal 99" in result.error


@pytest.mark.parametrize("number", ["1", True, None, [1]], ids=repr)
def test_approval_naming_no_integer_proposal_is_refused(chain: Chain, number: object) -> None:
    propose(chain, "org1", set_window(50))

    result = refused_call(chain, "org2", "approve", {"proposal": number})

    assert "expected a proposal number" in result.error


# --- proposals refused -------------------------------------------------------------------------


def test_unknown_action_kind_is_refused_naming_the_kinds_there_are(chain: Chain) -> None:
    result = refused_call(
        chain, "org1", "propose", {"action": {"kind": "dissolve_chain", "org": "org1"}}
    )

    assert "'dissolve_chain'" in result.error
    for kind in ACTIONS:
        assert kind in result.error


def _add_member(**changes: object) -> dict[str, object]:
    action: dict[str, object] = {
        "kind": "add_member",
        "org": "org6",
        "name": "Newcomer",
        "roles": ["member"],
        "keys": [],
    }
    action.update(changes)
    return {key: value for key, value in action.items() if value is not None}


# Each malformed action, and a fragment its error must contain.
MALFORMED_ACTIONS: dict[str, tuple[object, str]] = {
    "not_a_map": ("add_member", "expected a map with a 'kind'"),
    "no_kind": ({"org": "org6"}, "expected a map with a 'kind'"),
    "kind_not_text": ({"kind": 7}, "expected a map with a 'kind'"),
    "missing_field": (_add_member(keys=None), "add_member takes"),
    "extra_field": ({**set_window(50), "org": "org1"}, "set_param takes"),
    "bad_org_id": ({"kind": "remove_member", "org": "Org Five"}, "action.org"),
    "org_id_not_text": ({"kind": "remove_member", "org": 5}, "action.org"),
    "roles_not_a_list": (
        {"kind": "set_roles", "org": "org2", "roles": "auditor"},
        "action.roles",
    ),
    "too_many_roles": (
        {"kind": "set_roles", "org": "org2", "roles": [f"r{i}" for i in range(17)]},
        f"at most {roles_per_org_max}",
    ),
    "bad_role_name": ({"kind": "set_roles", "org": "org2", "roles": ["Auditor"]}, "action.roles"),
    "key_too_short": (_add_member(keys=["ab" * 16 + "ab"]), "action.keys"),
    "key_not_hex": (_add_member(keys=["zz" * 65]), "action.keys"),
    "key_not_text": (_add_member(keys=[b"\x01" * 32]), "action.keys"),
    "empty_name": (_add_member(name=""), "action.name"),
    "unknown_param": ({**set_window(50), "name": "block_time_ms"}, "unknown parameter"),
    "zero_value": (set_window(0), "expected a positive integer"),
    "negative_value": (set_window(-3), "expected a positive integer"),
    "bool_value": (set_window(True), "expected a positive integer"),
    "text_value": ({**set_window(1), "value": "50"}, "expected a positive integer"),
    # How limits relate: a block travels whole in one P2P frame, and holds the largest tx.
    "block_beyond_a_frame": (
        {"kind": "set_param", "name": "block_bytes_max", "value": 20 * 1024 * 1024},
        "does not fit a P2P frame",
    ),
    "block_below_a_transaction": (
        {"kind": "set_param", "name": "block_bytes_max", "value": 1_000},
        "below the largest transaction",
    ),
    "unknown_setting": (
        {"kind": "set_config", "contract": "notary", "key": "colour", "value": 1},
        "no setting 'notary'/'colour'",
    ),
    "setting_of_the_wrong_shape": (
        {"kind": "set_config", "contract": "provenance", "key": "step_roles", "value": ["brand"]},
        "expected a map of bizStep to a list of role names",
    ),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED_ACTIONS))
def test_malformed_action_is_refused(chain: Chain, shape: str) -> None:
    action, fragment = MALFORMED_ACTIONS[shape]

    result = refused_call(chain, "org1", "propose", {"action": action})

    assert fragment in result.error


def test_set_param_naming_the_parameter_by_a_list_is_refused_naming_the_field(chain: Chain) -> None:
    action = {"kind": "set_param", "name": ["tx_validity_blocks_max"], "value": 5}
    checked = chain.admit(chain.sign("org1", "governance", "propose", {"action": action}))

    # A member's bad input is refused like any other, not treated as a contract bug.
    execution = chain.execute([checked])

    assert not execution.results[0].ok
    assert "action.name" in execution.results[0].error
    assert execution.writes == {}


@pytest.mark.parametrize(
    "args",
    [{}, {"action": set_window(50), "reason": "because"}, {"proposal": 1}],
    ids=["none", "extra", "wrong"],
)
def test_propose_with_missing_or_extra_arguments_is_refused(
    chain: Chain, args: dict[str, Any]
) -> None:
    result = refused_call(chain, "org1", "propose", args)

    assert "expected arguments ['action']" in result.error


# --- actions that fail when they would execute -------------------------------------------------


def test_removing_an_org_that_runs_a_validator_is_refused(chain: Chain) -> None:
    pending = approved_by(chain, {"kind": "remove_member", "org": "org0"}, MEMBERS[1:4])

    result = refused_call(chain, "org4", "approve", {"proposal": pending.data["proposal"]})

    assert "'org0' runs a validator" in result.error
    assert "org0" in members(chain)
    assert proposal(chain, 1)["executed"] is False


def test_adding_an_org_that_is_already_a_member_fails_at_the_quorum(chain: Chain) -> None:
    action = _add_member(org="org3", keys=[new_key_hex(chain)])
    pending = approved_by(chain, action, MEMBERS[1:4])
    keys_before = org_record(chain, "org3")["keys"]

    result = refused_call(chain, "org4", "approve", {"proposal": pending.data["proposal"]})

    assert "'org3' is already a member" in result.error
    assert org_record(chain, "org3")["keys"] == keys_before


def test_setting_roles_of_an_org_that_is_not_a_member_fails_at_the_quorum(chain: Chain) -> None:
    pending = approved_by(
        chain, {"kind": "set_roles", "org": "org9", "roles": ["bank"]}, MEMBERS[1:4]
    )

    result = refused_call(chain, "org4", "approve", {"proposal": pending.data["proposal"]})

    assert "'org9' is not a member" in result.error
    assert org_record(chain, "org9") is None


# --- effects on admission and execution --------------------------------------------------------


def _newcomer(chain: Chain) -> tuple[PrivateKey, dict[str, Any]]:
    key = chain.suite.generate_key()
    return key, _add_member(keys=[key.public_bytes().hex()])


def test_added_orgs_key_is_refused_before_the_proposal_executes(chain: Chain) -> None:
    key, action = _newcomer(chain)
    approved_by(chain, action, MEMBERS[1:4])

    with pytest.raises(Unauthorized) as refused:
        chain.admit(anchor_from(chain, "org6", key))

    assert refused.value.field == "sender"


def test_added_orgs_key_is_admitted_and_executes_after_the_proposal(chain: Chain) -> None:
    key, action = _newcomer(chain)
    enacted(chain, action)

    block = chain.commit_txs([anchor_from(chain, "org6", key)])

    assert block.results[0].ok, block.results[0].error
    assert block.results[0].sender == "org6"


def test_removed_orgs_transactions_are_refused_at_admission(chain: Chain) -> None:
    chain.admit(anchor_from(chain, "org5"))  # a member until now
    enacted(chain, {"kind": "remove_member", "org": "org5"})

    with pytest.raises(Unauthorized) as refused:
        chain.admit(anchor_from(chain, "org5"))

    assert refused.value.field == "sender"
    assert "'org5'" in refused.value.reason


def test_removed_orgs_transaction_in_the_removing_block_fails_at_execution(chain: Chain) -> None:
    pending = approved_by(chain, {"kind": "remove_member", "org": "org5"}, MEMBERS[1:4])
    quorum = chain.sign("org4", "governance", "approve", {"proposal": pending.data["proposal"]})
    late = anchor_from(chain, "org5")

    block = chain.commit_txs([quorum, late])  # both pass admission before the block

    assert block.results[0].ok
    assert not block.results[1].ok
    assert "'org5' is not a member" in block.results[1].error


def test_set_keys_retires_the_old_key_and_admits_the_new(chain: Chain) -> None:
    new_key = chain.suite.generate_key()
    enacted(chain, {"kind": "set_keys", "org": "org2", "keys": [new_key.public_bytes().hex()]})

    with pytest.raises(Unauthorized) as refused:
        chain.admit(anchor_from(chain, "org2"))
    checked = chain.admit(anchor_from(chain, "org2", new_key))

    assert refused.value.field == "public_key"
    assert checked.tx.body.public_key == new_key.public_bytes()


def test_set_param_of_the_validity_window_moves_the_admission_limit(chain: Chain) -> None:
    enacted(chain, set_window(50))
    height = chain.next_height()

    at_limit = chain.admit(
        chain.sign("org1", "notary", "anchor", {"hash": b"\x01" * 32}, valid_until=height + 50)
    )
    with pytest.raises(ValidTooFarAhead) as refused:
        chain.admit(
            chain.sign("org1", "notary", "anchor", {"hash": b"\x01" * 32}, valid_until=height + 51)
        )

    assert at_limit.tx.body.valid_until == height + 50
    assert "more than 50 blocks" in refused.value.reason


def test_validity_window_admits_far_transactions_before_set_param(chain: Chain) -> None:
    height = chain.next_height()

    checked = chain.admit(
        chain.sign("org1", "notary", "anchor", {"hash": b"\x01" * 32}, valid_until=height + 51)
    )

    assert checked.tx.body.valid_until == height + 51
