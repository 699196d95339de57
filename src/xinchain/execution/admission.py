"""The admission connection of the application (CometBFT's mempool connection): is a
transaction one this chain may accept, before any block holds it?

`check_tx` decodes a transaction and checks its chain, contract and method, expiry window,
sender's membership and key, the sender's roles against the method's (`Contract.roles`), replay
and signature: whatever can be decided before a block holds the transaction, so a member
cannot fill blocks with calls bound to fail. The mempool, the API and gossip call it; the
signature check is the only one a transaction gets on this node (a proposal's transactions the
mempool already admitted are not checked again). Execution reruns `check_static` at the
height it executes at, so a transaction that expired or lost its sender's membership while it
waited fails there deterministically.

Governance records (orgs, members, parameters) are read for every transaction and change
rarely: each is decoded once per version of its encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xinchain import codec
from xinchain.contracts.base import Contract, state_key
from xinchain.contracts.governance import param as governance_param
from xinchain.errors import (
    ExpiredTransaction,
    InvalidTransaction,
    ReplayedTransaction,
    Unauthorized,
    ValidTooFarAhead,
)
from xinchain.execution.chain import ChainStore
from xinchain.genesis import Genesis
from xinchain.types import ChainTip, CheckedTx, Transaction

# Decoded governance records kept (by encoding); a handful in practice.
decoded_cached_max = 1_024


class Admission:
    def __init__(
        self,
        genesis: Genesis,
        contracts: Mapping[str, Contract],
        state: Any,
        tip: Callable[[], ChainTip],
        chain: ChainStore,
    ) -> None:
        self.genesis = genesis
        self.suite = genesis.suite
        self.contracts = contracts
        self.state = state  # the committed state, with governance records cached
        self._tip = tip
        self._chain = chain
        # What admission decides from a contract alone: its method names and which roles may
        # call which method (Contract.roles).
        self._methods = {name: frozenset(c.methods()) for name, c in contracts.items()}
        self._roles = {name: c.roles() for name, c in contracts.items()}
        self._orgs: dict[bytes, tuple[frozenset[str], frozenset[str]]] = {}
        self._members: dict[bytes, frozenset[str]] = {}
        self._params: dict[bytes, int] = {}

    # --- governance records, decoded once per version -------------------------------------------

    def org(self, state: Any, org_id: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """(roles, keys as hex) of a member org, or None."""
        raw = state.get(state_key("governance", f"org/{org_id}"))
        if raw is None:
            return None
        found = self._orgs.get(raw)
        if found is None:
            record = codec.decode(raw)
            found = (frozenset(record.get("roles", ())), frozenset(record.get("keys", ())))
            self._remember(self._orgs, raw, found)
        return found

    def member_ids(self, state: Any) -> frozenset[str]:
        raw = state.get(state_key("governance", "members"))
        if raw is None:
            return frozenset()
        found = self._members.get(raw)
        if found is None:
            found = frozenset(codec.decode(raw))
            self._remember(self._members, raw, found)
        return found

    def param(self, state: Any, name: str) -> int:
        raw = state.get(state_key("governance", f"param/{name}"))
        if raw is None:
            return governance_param(state, name)
        found = self._params.get(raw)
        if found is None:
            found = int(codec.decode(raw))
            self._remember(self._params, raw, found)
        return found

    @staticmethod
    def _remember(cache: dict[bytes, Any], raw: bytes, value: Any) -> None:
        if len(cache) >= decoded_cached_max:
            cache.clear()
        cache[raw] = value

    # --- check_tx ------------------------------------------------------------------------------

    def check_tx(self, raw: bytes) -> CheckedTx:
        tx, tx_id = self.check_tx_unsigned(raw)
        return self._verify_signature(tx, tx_id)

    def check_tx_unsigned(self, raw: bytes, *, replay: bool = True) -> tuple[Transaction, str]:
        """Admission without the signature check: for a caller that verifies signatures in
        bulk (elsewhere), then makes each `CheckedTx` with `signature_checked`. With
        `replay=False` the caller checks the replay guard itself (`committed_ids`)."""
        tx = Transaction.decode(raw)
        tx_id = self.tx_id(tx)
        self.check_static(
            tx, tx_id, self._tip().height + 1, self.state, replayed=None if replay else False
        )
        return tx, tx_id

    def committed_ids(self, tx_ids: list[str]) -> set[str]:
        """Those of `tx_ids` already in a committed block (the replay guard), in one read."""
        return set(self._chain.tx_locations(tx_ids))

    def signature_checked(self, tx: Transaction, tx_id: str, valid: bool) -> CheckedTx:
        if not valid:
            raise InvalidTransaction(
                f"signature does not verify with the given {self.suite.name} public key",
                field="signature",
            )
        return CheckedTx(tx, tx_id)

    def verify_tx(self, raw: bytes) -> CheckedTx:
        """Decode and check the signature only: for transactions inside a proposed block, whose
        state-dependent checks run (deterministically, as failed results) at execution."""
        tx = Transaction.decode(raw)
        return self._verify_signature(tx, self.tx_id(tx))

    def _verify_signature(self, tx: Transaction, tx_id: str) -> CheckedTx:
        if not self.suite.verify(tx.body.public_key, tx.body.signing_message(), tx.signature):
            raise InvalidTransaction(
                f"signature does not verify with the given {self.suite.name} public key",
                field="signature",
            )
        return CheckedTx(tx, tx_id)

    def tx_id_of_raw(self, raw: bytes) -> str:
        return self.tx_id(Transaction.decode(raw))

    def tx_id(self, tx: Transaction) -> str:
        return self.suite.hash(tx.body.encode()).hex()

    def check_static(
        self, tx: Transaction, tx_id: str, height: int, state: Any, replayed: bool | None = None
    ) -> None:
        """Checks that depend on chain state but not on signatures; rerun at execution.
        `replayed`: whether the tx is committed already, when the caller looked it up in bulk
        (None: look it up here)."""
        body = tx.body
        if body.chain_id != self.genesis.chain_id:
            raise InvalidTransaction(
                f"expected chain {self.genesis.chain_id!r}, found {body.chain_id!r}",
                field="chain_id",
            )
        if body.contract not in self.contracts:
            raise InvalidTransaction(
                f"no contract {body.contract!r}; expected one of {sorted(self.contracts)}",
                field="contract",
            )
        if body.valid_until < height:
            raise ExpiredTransaction(
                f"valid until height {body.valid_until}, and the next block is {height}",
                field="valid_until",
            )
        window = self.param(state, "tx_validity_blocks_max")
        if body.valid_until > height + window:
            raise ValidTooFarAhead(
                f"valid until height {body.valid_until}, more than {window} blocks past the next "
                f"block {height}",
                field="valid_until",
            )
        org = self.org(state, body.sender)
        if org is None or body.sender not in self.member_ids(state):
            raise Unauthorized(f"org {body.sender!r} is not a member of this chain", field="sender")
        if body.public_key.hex() not in org[1]:
            raise Unauthorized(
                f"key {body.public_key.hex()[:16]}… is not registered for org {body.sender!r}",
                field="public_key",
            )
        methods = self._methods[body.contract]
        if body.method not in methods:
            raise InvalidTransaction(
                f"contract {body.contract!r} has no method {body.method!r}; it has "
                f"{sorted(methods)}",
                field="method",
            )
        allowed = self._roles[body.contract].get(body.method)
        if allowed is not None and not allowed & org[0]:
            raise Unauthorized(
                f"org {body.sender!r} has roles {sorted(org[0])}; {body.contract}.{body.method} "
                f"needs one of {sorted(allowed)}",
                field="sender",
            )
        if replayed is None:
            replayed = self._chain.tx_location(tx_id) is not None
        if replayed:
            raise ReplayedTransaction(f"transaction {tx_id} was already accepted", field="tx_id")
