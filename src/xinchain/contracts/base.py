"""What a system contract sees while it executes one transaction.

Contracts are deterministic: they read the block height and time from the context, never a
clock; they keep state in their own key space (`<contract>/<key>`); they refuse a call by
raising `ContractError`, which discards every write of that transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from xinchain import codec
from xinchain.crypto import Suite
from xinchain.errors import ContractError
from xinchain.execution.state import Overlay


@dataclass
class CallContext:
    suite: Suite
    chain_id: str
    tx_id: str
    tx_index: int
    sender: str
    sender_roles: frozenset[str]
    height: int
    time_ms: int
    state: Overlay
    # The chain's rules in force (genesis `rules`, raised by governance `set_rules`): a
    # contract whose behaviour changed keeps the old behaviour where the rules are older, so
    # that old blocks execute as they did when they were committed.
    rules: int = 1

    def read(self, contract: str, key: str) -> Any:
        """Read any contract's state (reads across key spaces are allowed, writes are not)."""
        raw = self.state.get(state_key(contract, key))
        return None if raw is None else codec.decode(raw)

    def scan(self, contract: str, start: str, end: str, limit: int) -> list[tuple[str, Any]]:
        """A contract's records with start <= key < end in key order (as bytes of UTF-8), at
        most `limit`, with this transaction's and this block's earlier writes applied: what
        Fabric's GetStateByRange answers. (key, record), the key without the contract's
        prefix."""
        skip = len(contract) + 1
        found: list[tuple[str, Any]] = []
        entries = self.state.scan(state_key(contract, start), state_key(contract, end))
        for key, raw in entries:
            if len(found) == limit:
                break
            found.append((key[skip:].decode(), codec.decode(raw)))
        return found

    def write(self, contract: str, key: str, value: Any) -> None:
        self.state.put(state_key(contract, key), codec.encode(value))

    def remove(self, contract: str, key: str) -> None:
        self.state.delete(state_key(contract, key))

    def index(self, entries: list[tuple[bytes, bytes]]) -> None:
        """Add (key, value) entries to the derived index (Table.INDEX), kept if the transaction
        succeeds; each key starts with `index_prefix(contract)`, the contract's own key space.
        Queries read the index; contracts never do, so it stays outside the state hash: every
        node derives the same entries from the same transactions, as every node derives the
        transaction index."""
        self.state.indexed.extend(entries)

    def require_role(self, *roles: str) -> None:
        if not self.sender_roles.intersection(roles):
            raise ContractError(
                f"org {self.sender!r} has roles {sorted(self.sender_roles)}; this call needs one "
                f"of {sorted(roles)}"
            )


Handler = Callable[[CallContext, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Setting:
    """A setting of a contract that governance may change (`set_config`): what its value must
    look like (in words and as a check), and its value until governance sets one. The contract
    reads it at `config/<key>` in its own key space."""

    expected: str
    check: Callable[[Any], bool]
    default: Any


class Contract:
    """A system contract: a name, the methods it answers and the settings governance may
    change."""

    name: ClassVar[str]

    def methods(self) -> dict[str, Handler]:
        raise NotImplementedError

    def settings(self) -> dict[str, Setting]:
        return {}

    def roles(self) -> dict[str, frozenset[str]]:
        """Methods only orgs holding one of the given roles may call. Admission refuses anyone
        else before a block holds the call; `call` checks again when it executes."""
        return {}

    def call(self, context: CallContext, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = self.methods().get(method)
        if handler is None:
            raise ContractError(
                f"contract {self.name!r} has no method {method!r}; it has {sorted(self.methods())}"
            )
        allowed = self.roles().get(method)
        if allowed is not None:
            context.require_role(*sorted(allowed))
        return handler(context, args)


def state_key(contract: str, key: str) -> bytes:
    return f"{contract}/{key}".encode()


def index_prefix(contract: str) -> bytes:
    return f"{contract}/".encode()


def require_args(args: dict[str, Any], expected: set[str]) -> None:
    keys = set(args)
    if keys != expected:
        raise ContractError(
            f"expected arguments {sorted(expected)}, found {sorted(keys)}", field="args"
        )
