"""Governance: the member registry and parameters, changed only with ≥ 2/3 of member orgs.

Any member org proposes an action; member orgs approve it; the approval that brings the count
to at least two thirds of the current member orgs executes it in the same transaction. The
proposer's own approval counts. An approval from an org that has since been removed no longer
counts. Actions:

* ``add_member``    {org, name, roles, keys}
* ``remove_member`` {org}             (not an org that runs a validator)
* ``set_roles``     {org, roles}
* ``set_keys``      {org, keys}
* ``set_param``     {name, value}
* ``set_config``    {contract, key, value}   (a setting a contract declares, `Contract.settings`)
* ``set_rules``     {rules}                  (raise the chain's rules; never lowered)
* ``add_node``      {org, name, tls_key}     (a node allowed on the P2P network)
* ``set_node_key``  {name, tls_key}          (its certificate's key changed)
* ``remove_node``   {name}                   (not a validator)
* ``set_collection`` {name, members, regulator_reads, block_to_live, writers}   (rules 3:
  define or change a private data collection, docs/private-data.md)
* ``remove_collection`` {name}               (rules 3: no new writes; records stay)

An org registers its own encryption key (X25519, for private data) with ``set_enc_key {key}``,
no vote: only the org can read what is sealed to it, so only the org chooses the key.

State (key space ``governance/``): ``org/<id>`` → {name, roles, keys}; ``param/<name>`` → int;
``proposal/<n>`` → {action, proposer, approvals, executed}; ``next_proposal`` → int;
``rules`` → int (once raised); ``node/<name>`` → {org, tls_key, validator}; ``nodes`` → [names]
(absent on a chain whose genesis registers no nodes and that has registered none since: peers
are then accepted on their org's certificate alone); ``collection/<name>`` → {members,
regulator_reads, block_to_live, writers, version, since}; ``collections`` → [names];
``enc_key/<org>`` → {key, kid, since}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xinchain import codec
from xinchain.contracts.base import (
    CallContext,
    Contract,
    Handler,
    Setting,
    require_args,
    state_key,
)
from xinchain.errors import ContractError, XinchainError
from xinchain.execution.state import StateReader
from xinchain.genesis import (
    DEFAULT_PARAMS,
    Genesis,
    check_public_key_hex,
    check_tls_key,
    param_relations_broken,
)
from xinchain.private.crypto import check_public_key, key_id
from xinchain.types import check_identifier

NAME = "governance"
# Roles an org may hold, and keys one org may register: small, to keep the registry readable.
roles_per_org_max = 16
keys_per_org_max = 16


def member_ids(state: StateReader) -> list[str]:
    raw = state.get(state_key(NAME, "members"))
    return [] if raw is None else list(codec.decode(raw))


def param(state: StateReader, name: str) -> int:
    raw = state.get(state_key(NAME, f"param/{name}"))
    return DEFAULT_PARAMS[name] if raw is None else int(codec.decode(raw))


# The chain's rules: which behaviour of the contracts holds. A contract whose behaviour changes
# keeps the old one under older rules, so that a node syncing an old chain executes its old
# blocks as they were committed (as a CometBFT app switches behaviour at an upgrade height).
# A chain whose genesis is dated from RULES_2_GENESIS_MS on starts at rules 2; an older chain
# holds rules 1 until its members raise them with `set_rules`.
#   1  the rules of every chain before 2026-12-04
#   2  the rules from 2026-12-04 (docs/architecture.md, "Chain rules", says what changed)
#   3  private data: collections, encryption keys and the `private` contract
#   4  a copyright seller may be named by its did:xin (merchants are DIDs, docs/did-method.md)
CHAIN_RULES = 4
RULES_2_GENESIS_MS = 1_796_407_200_000  # 2026-12-04T18:00:00Z
RULES_3_GENESIS_MS = 1_796_418_000_000  # 2026-12-04T21:00:00Z
RULES_4_GENESIS_MS = 1_796_421_600_000  # 2026-12-04T22:00:00Z
PRIVATE_DATA_RULES = 3
# Collections: members each, and how long a purge may wait (blocks; 0 keeps records).
collection_members_max = 32
collections_max = 256
block_to_live_max = 1_000_000_000


def genesis_rules(genesis: Genesis) -> int:
    if genesis.time_ms >= RULES_4_GENESIS_MS:
        return 4
    if genesis.time_ms >= RULES_3_GENESIS_MS:
        return 3
    return 2 if genesis.time_ms >= RULES_2_GENESIS_MS else 1


def chain_rules(state: StateReader, genesis: Genesis) -> int:
    """The rules in force: the genesis's, or higher once governance raised them."""
    raw = state.get(state_key(NAME, "rules"))
    raised = 0 if raw is None else int(codec.decode(raw))
    return max(genesis_rules(genesis), raised)


def node_registry_in_use(state: StateReader) -> bool:
    return state.get(state_key(NAME, "nodes")) is not None


def collection(state: StateReader, name: str) -> dict[str, Any] | None:
    """{members, regulator_reads, block_to_live, writers, version, since}, or None."""
    raw = state.get(state_key(NAME, f"collection/{name}"))
    return None if raw is None else dict(codec.decode(raw))


def collection_names(state: StateReader) -> list[str]:
    raw = state.get(state_key(NAME, "collections"))
    return [] if raw is None else list(codec.decode(raw))


def enc_key(state: StateReader, org: str) -> dict[str, Any] | None:
    """{key, kid, since} of the org's registered encryption key, or None."""
    raw = state.get(state_key(NAME, f"enc_key/{org}"))
    return None if raw is None else dict(codec.decode(raw))


def org_roles(state: StateReader, org: str) -> list[str]:
    raw = state.get(state_key(NAME, f"org/{org}"))
    return [] if raw is None else list(codec.decode(raw)["roles"])


def reader_orgs(state: StateReader, record: dict[str, Any]) -> list[str]:
    """Who reads a collection: its members that are still members of the chain, and every
    member holding the regulator role when the collection lets the regulator read."""
    members = member_ids(state)
    readers = {org for org in record["members"] if org in members}
    if record["regulator_reads"]:
        readers |= {org for org in members if "regulator" in org_roles(state, org)}
    return sorted(readers)


def registered_node(state: StateReader, name: str) -> dict[str, Any] | None:
    """{org, tls_key, validator} of a registered node, or None."""
    raw = state.get(state_key(NAME, f"node/{name}"))
    return None if raw is None else dict(codec.decode(raw))


def genesis_writes(genesis: Genesis) -> dict[bytes, bytes]:
    """The state every node starts from, derived from genesis alone."""
    writes = {
        state_key(NAME, f"org/{org.id}"): codec.encode(
            {"name": org.name, "roles": list(org.roles), "keys": list(org.keys)}
        )
        for org in genesis.orgs
    }
    writes[state_key(NAME, "members")] = codec.encode([org.id for org in genesis.orgs])
    writes[state_key(NAME, "validator_orgs")] = codec.encode(
        sorted({validator.org for validator in genesis.validators})
    )
    for name, setting in genesis.params.items():
        writes[state_key(NAME, f"param/{name}")] = codec.encode(setting)
    if genesis.nodes:
        validator_names = {validator.name for validator in genesis.validators}
        for node in genesis.nodes:
            writes[state_key(NAME, f"node/{node.name}")] = codec.encode(
                {
                    "org": node.org,
                    "tls_key": node.tls_key,
                    "validator": node.name in validator_names,
                }
            )
        writes[state_key(NAME, "nodes")] = codec.encode([node.name for node in genesis.nodes])
    return writes


def approvals_needed(member_count: int) -> int:
    """Smallest count that is at least two thirds of the member orgs."""
    return -(-2 * member_count // 3)


class Governance(Contract):
    """`settings`: every other contract's settings by (contract, key), which `set_config` may
    change; the execution gathers them from the contracts it runs."""

    name = NAME

    def __init__(self, settings: Mapping[tuple[str, str], Setting] | None = None) -> None:
        self._settings = dict(settings or {})

    def methods(self) -> dict[str, Handler]:
        return {"propose": self.propose, "approve": self.approve, "set_enc_key": self.set_enc_key}

    def set_enc_key(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        """The sender org's own encryption key for private data (rules 3); records written
        from the next transaction on are sealed to it."""
        _require_private_data(context)
        require_args(args, {"key"})
        try:
            raw = check_public_key(args["key"], "args.key")
        except XinchainError as exc:
            raise ContractError(exc.reason, field=exc.field) from exc
        kid = key_id(raw)
        current = context.read(NAME, f"enc_key/{context.sender}")
        if current is not None and current["kid"] == kid:
            raise ContractError(f"org {context.sender!r} already holds key {kid}", field="args.key")
        context.write(
            NAME,
            f"enc_key/{context.sender}",
            {"key": args["key"], "kid": kid, "since": context.height},
        )
        return {"org": context.sender, "kid": kid}

    def propose(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"action"})
        action = _check_action(args["action"], context, self._settings)
        number = context.read(NAME, "next_proposal") or 1
        context.write(NAME, "next_proposal", number + 1)
        proposal = {
            "action": action,
            "proposer": context.sender,
            "approvals": [],
            "executed": False,
        }
        return self._add_approval(context, number, proposal)

    def approve(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"proposal"})
        number = args["proposal"]
        if isinstance(number, bool) or not isinstance(number, int):
            raise ContractError("expected a proposal number", field="args.proposal")
        proposal = context.read(NAME, f"proposal/{number}")
        if proposal is None:
            raise ContractError(f"no proposal {number}", field="args.proposal")
        if proposal["executed"]:
            raise ContractError(f"proposal {number} was already executed", field="args.proposal")
        if context.sender in proposal["approvals"]:
            raise ContractError(f"org {context.sender!r} already approved proposal {number}")
        return self._add_approval(context, number, proposal)

    def _add_approval(
        self, context: CallContext, number: int, proposal: dict[str, Any]
    ) -> dict[str, Any]:
        proposal["approvals"] = sorted([*proposal["approvals"], context.sender])
        members = member_ids(context.state)
        counted = [org for org in proposal["approvals"] if org in members]
        needed = approvals_needed(len(members))
        if len(counted) >= needed:
            _execute(context, proposal["action"])
            proposal["executed"] = True
        context.write(NAME, f"proposal/{number}", proposal)
        return {
            "proposal": number,
            "approvals": len(counted),
            "needed": needed,
            "executed": proposal["executed"],
        }


def _check_action(
    value: object, context: CallContext, settings: Mapping[tuple[str, str], Setting]
) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise ContractError("expected a map with a 'kind'", field="args.action")
    fields = {
        "add_member": {"kind", "org", "name", "roles", "keys"},
        "remove_member": {"kind", "org"},
        "set_roles": {"kind", "org", "roles"},
        "set_keys": {"kind", "org", "keys"},
        "set_param": {"kind", "name", "value"},
        "set_config": {"kind", "contract", "key", "value"},
        "set_rules": {"kind", "rules"},
        "add_node": {"kind", "org", "name", "tls_key"},
        "set_node_key": {"kind", "name", "tls_key"},
        "remove_node": {"kind", "name"},
        "set_collection": {
            "kind",
            "name",
            "members",
            "regulator_reads",
            "block_to_live",
            "writers",
        },
        "remove_collection": {"kind", "name"},
    }
    kind = value["kind"]
    # Each rules' own list, so that a refusal reads as it did when an older block was
    # executed (its text is in the block's results); set_rules is accepted under every rules,
    # as it is how rules are raised.
    listed = sorted(name for name in fields if _ACTION_RULES.get(name, 1) <= context.rules)
    if kind not in listed and kind != "set_rules":
        raise ContractError(f"unknown action {kind!r}; expected one of {listed}")
    if set(value) != fields[kind]:
        raise ContractError(
            f"{kind} takes {sorted(fields[kind])}, found {sorted(value)}", field="args.action"
        )
    try:
        if "org" in value:
            check_identifier(value["org"], "action.org")
        if "roles" in value:
            _check_list(value["roles"], roles_per_org_max, "action.roles")
            for role in value["roles"]:
                check_identifier(role, "action.roles")
        if "keys" in value:
            _check_list(value["keys"], keys_per_org_max, "action.keys")
            for key in value["keys"]:
                check_public_key_hex(key, context.suite, "action.keys")
        if kind == "add_member" and (not isinstance(value["name"], str) or not value["name"]):
            raise ContractError("expected a display name", field="action.name")
        if kind in ("add_node", "set_node_key", "remove_node"):
            check_identifier(value["name"], "action.name")
        if "tls_key" in value:
            check_tls_key(value["tls_key"], "action.tls_key")
        if kind == "set_config":
            _check_config(settings, value["contract"], value["key"], value["value"])
        if kind == "set_rules":
            _check_rules(context, value["rules"])
        if kind in ("set_collection", "remove_collection"):
            _require_private_data(context)
            check_identifier(value["name"], "action.name")
        if kind == "set_collection":
            _check_collection(context, value)
        if kind == "remove_collection" and collection(context.state, value["name"]) is None:
            raise ContractError(f"no collection {value['name']!r}", field="action.name")
        if kind == "set_param":
            if not isinstance(value["name"], str) or value["name"] not in DEFAULT_PARAMS:
                raise ContractError(
                    f"unknown parameter; known: {sorted(DEFAULT_PARAMS)}", field="action.name"
                )
            setting = value["value"]
            if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
                raise ContractError("expected a positive integer", field="action.value")
            _check_relations(context, value["name"], setting)
    except XinchainError as exc:
        raise ContractError(exc.reason, field=exc.field) from exc
    return value


# The rules from which an action kind is listed (every other kind: from rules 1).
_ACTION_RULES = {"set_rules": 2, "set_collection": 3, "remove_collection": 3}


def _check_config(
    settings: Mapping[tuple[str, str], Setting], contract: object, key: object, value: object
) -> None:
    setting = (
        settings.get((contract, key))
        if isinstance(contract, str) and isinstance(key, str)
        else None
    )
    if setting is None:
        raise ContractError(
            f"no setting {contract!r}/{key!r}; known: {sorted(settings)}", field="action.key"
        )
    if not setting.check(value):
        raise ContractError(f"expected {setting.expected}", field="action.value")


def _check_rules(context: CallContext, rules: object) -> None:
    if isinstance(rules, bool) or not isinstance(rules, int) or not 1 <= rules <= CHAIN_RULES:
        raise ContractError(
            f"expected chain rules from 1 to {CHAIN_RULES} (this build's newest)",
            field="action.rules",
        )
    if rules <= context.rules:
        raise ContractError(
            f"the chain already holds rules {context.rules}; rules are raised, never lowered",
            field="action.rules",
        )


def _require_private_data(context: CallContext) -> None:
    if context.rules < PRIVATE_DATA_RULES:
        raise ContractError(
            f"private data needs chain rules {PRIVATE_DATA_RULES}; this chain holds rules "
            f"{context.rules} (raise them with set_rules)"
        )
    if context.suite.hash_name != "sha256":
        raise ContractError(
            f"private data is not available on the {context.suite.name} suite yet: its "
            "records are sealed with X25519 HPKE and committed with SHA-256, and the national "
            "suite's counterpart (SM2 key exchange, SM4-GCM, SM3) is not built"
        )


def _check_collection(context: CallContext, action: dict[str, Any]) -> None:
    members = member_ids(context.state)
    for name in ("members", "writers"):
        _check_list(action[name], collection_members_max, f"action.{name}")
        for org in action[name]:
            check_identifier(org, f"action.{name}")
            if org not in members:
                raise ContractError(f"org {org!r} is not a member", field=f"action.{name}")
        if len(set(action[name])) != len(action[name]):
            raise ContractError("an org is listed twice", field=f"action.{name}")
    if not action["members"]:
        raise ContractError("a collection needs at least one member org", field="action.members")
    outside = sorted(set(action["writers"]) - set(action["members"]))
    if outside:
        raise ContractError(
            f"writers {outside} are not members of the collection; a writer reads what it writes",
            field="action.writers",
        )
    if not isinstance(action["regulator_reads"], bool):
        raise ContractError("expected true or false", field="action.regulator_reads")
    ttl = action["block_to_live"]
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= block_to_live_max:
        raise ContractError(
            f"expected blocks from 0 (keep) to {block_to_live_max}", field="action.block_to_live"
        )
    names = collection_names(context.state)
    if action["name"] not in names and len(names) >= collections_max:
        raise ContractError(f"the chain holds {collections_max} collections already")


def _check_relations(context: CallContext, name: str, value: int) -> None:
    """The parameters as they would be with `name` set to `value` must work together."""
    params = {known: param(context.state, known) for known in DEFAULT_PARAMS}
    broken = param_relations_broken({**params, name: value})
    if broken is not None:
        raise ContractError(broken, field="action.value")


def _check_list(value: object, most: int, where: str) -> None:
    if not isinstance(value, list) or len(value) > most:
        raise ContractError(f"expected a list of at most {most}", field=where)


def _execute(context: CallContext, action: dict[str, Any]) -> None:
    kind = action["kind"]
    members = member_ids(context.state)
    if kind == "set_param":
        _check_relations(context, action["name"], action["value"])  # others may have changed
        context.write(NAME, f"param/{action['name']}", action["value"])
        return
    if kind == "set_config":
        context.write(action["contract"], f"config/{action['key']}", action["value"])
        return
    if kind == "set_rules":
        _check_rules(context, action["rules"])  # raised by another proposal meanwhile?
        context.write(NAME, "rules", action["rules"])
        return
    if kind in ("add_node", "set_node_key", "remove_node"):
        _execute_node(context, action, members)
        return
    if kind in ("set_collection", "remove_collection"):
        _execute_collection(context, action)
        return
    org = action["org"]
    record = context.read(NAME, f"org/{org}")
    if kind == "add_member":
        if org in members:
            raise ContractError(f"org {org!r} is already a member")
        context.write(
            NAME,
            f"org/{org}",
            {"name": action["name"], "roles": action["roles"], "keys": action["keys"]},
        )
        context.write(NAME, "members", [*members, org])
        return
    if record is None or org not in members:
        raise ContractError(f"org {org!r} is not a member")
    if kind == "remove_member":
        if org in (context.read(NAME, "validator_orgs") or []):
            raise ContractError(f"org {org!r} runs a validator; change the validator set first")
        context.remove(NAME, f"org/{org}")
        context.write(NAME, "members", [member for member in members if member != org])
    elif kind == "set_roles":
        context.write(NAME, f"org/{org}", {**record, "roles": action["roles"]})
    elif kind == "set_keys":
        context.write(NAME, f"org/{org}", {**record, "keys": action["keys"]})


def _execute_collection(context: CallContext, action: dict[str, Any]) -> None:
    name = action["name"]
    names = collection_names(context.state)
    current = collection(context.state, name)
    if action["kind"] == "remove_collection":
        if current is None:
            raise ContractError(f"no collection {name!r}")
        context.remove(NAME, f"collection/{name}")
        context.write(NAME, "collections", [other for other in names if other != name])
        return
    _check_collection(context, action)  # membership may have changed since the proposal
    record = {
        "members": sorted(action["members"]),
        "regulator_reads": action["regulator_reads"],
        "block_to_live": action["block_to_live"],
        "writers": sorted(action["writers"]),
        "version": 1 if current is None else current["version"] + 1,
        "since": context.height,
    }
    context.write(NAME, f"collection/{name}", record)
    if name not in names:
        context.write(NAME, "collections", sorted([*names, name]))


def _execute_node(context: CallContext, action: dict[str, Any], members: list[str]) -> None:
    kind, name = action["kind"], action["name"]
    names: list[str] = context.read(NAME, "nodes") or []
    record = context.read(NAME, f"node/{name}")
    if kind == "add_node":
        if action["org"] not in members:
            raise ContractError(f"org {action['org']!r} is not a member")
        if record is not None:
            raise ContractError(f"node {name!r} is already registered (to {record['org']!r})")
        context.write(
            NAME,
            f"node/{name}",
            {"org": action["org"], "tls_key": action["tls_key"], "validator": False},
        )
        context.write(NAME, "nodes", [*names, name])
        return
    if record is None:
        raise ContractError(f"node {name!r} is not registered")
    if kind == "set_node_key":
        context.write(NAME, f"node/{name}", {**record, "tls_key": action["tls_key"]})
    else:
        if record["validator"]:
            raise ContractError(f"node {name!r} is a validator; change the validator set first")
        context.remove(NAME, f"node/{name}")
        context.write(NAME, "nodes", [other for other in names if other != name])
