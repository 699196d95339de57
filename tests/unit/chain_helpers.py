"""An in-process chain for application-layer unit tests.

A `Consortium` is a genesis and the private keys behind it: member orgs ``org0``, ``org1``, ...
(one signing key each) and one validator run by ``org0``. A `Chain` is an `Application` over a
store, driven the way `Node._produce_block` drives it with one validator: sign a transaction,
admit it with `check_tx`, execute a block, make the header, sign the commit certificate over
`commit_statement` and commit. Block times are fixed (genesis time plus one second a block) so
that two chains fed the same transactions produce the same blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app_contracts import APP_CONTRACTS

from xinchain.client.sdk import sign_transaction
from xinchain.crypto import SUITES, PrivateKey, Suite
from xinchain.execution.app import Application
from xinchain.genesis import Genesis
from xinchain.storage import MemoryStore, Store
from xinchain.types import (
    Block,
    BlockHeader,
    CheckedTx,
    CommitCertificate,
    CommitRequest,
    ExecuteBlockRequest,
    ExecuteBlockResponse,
    Transaction,
    TxResult,
    ValidatorSignature,
    commit_statement,
)

SUITE_NAMES = tuple(sorted(SUITES))
CHAIN_ID = "test-chain"
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_INTERVAL_MS = 1_000
# Blocks a transaction signed by `Chain.sign` stays valid: inside the default window, and
# inside the narrower windows that governance tests set.
VALIDITY_BLOCKS_DEFAULT = 20
VALIDATOR_INDEX = 0


def org_ids(count: int) -> list[str]:
    return [f"org{index}" for index in range(count)]


@dataclass(frozen=True)
class Consortium:
    genesis: Genesis
    org_keys: dict[str, PrivateKey]
    validator_key: PrivateKey

    @property
    def suite(self) -> Suite:
        return self.genesis.suite

    def key(self, org: str) -> PrivateKey:
        return self.org_keys[org]


def make_consortium(
    suite_name: str,
    *,
    org_count: int = 3,
    params: dict[str, int] | None = None,
    chain_id: str = CHAIN_ID,
    roles: dict[str, list[str]] | None = None,
    time_ms: int = GENESIS_TIME_MS,
) -> Consortium:
    """A genesis parsed through `Genesis.from_value`, so it is one a real node would accept.
    Every org has the role "member", or the roles `roles` gives it."""
    suite = SUITES[suite_name]
    org_keys = {org: suite.generate_key() for org in org_ids(org_count)}
    validator_key = suite.generate_key()
    value = {
        "chain_id": chain_id,
        "suite": suite_name,
        "time_ms": time_ms,
        "orgs": [
            {
                "id": org,
                "name": f"Organisation {org}",
                "roles": (roles or {}).get(org, ["member"]),
                "keys": [key.public_bytes().hex()],
            }
            for org, key in org_keys.items()
        ],
        "validators": [
            {"name": "validator-0", "org": "org0", "public_key": validator_key.public_bytes().hex()}
        ],
        "params": dict(params or {}),
    }
    return Consortium(Genesis.from_value(value), org_keys, validator_key)


@dataclass(frozen=True)
class CommittedBlock:
    header: BlockHeader
    block_hash: str
    execution: ExecuteBlockResponse
    txs: tuple[CheckedTx, ...]
    certificate: CommitCertificate

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def results(self) -> tuple[TxResult, ...]:
        return self.execution.results


class Chain:
    def __init__(self, consortium: Consortium, store: Store | None = None) -> None:
        self.consortium = consortium
        self.app = Application(
            store if store is not None else MemoryStore(), consortium.genesis, APP_CONTRACTS
        )
        # Added to every later block's time: a test moves the chain's clock on with it (never
        # back: block times only grow).
        self.clock_offset_ms = 0

    @property
    def suite(self) -> Suite:
        return self.consortium.suite

    def next_height(self) -> int:
        return self.app.tip().height + 1

    # --- transactions --------------------------------------------------------------------------

    def sign(
        self,
        sender: str,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        key: PrivateKey | None = None,
        valid_until: int | None = None,
        chain_id: str | None = None,
        nonce: int | None = None,
    ) -> Transaction:
        """Sign with `key`, by default the sender org's own key."""
        return sign_transaction(
            self.suite,
            key if key is not None else self.consortium.key(sender),
            chain_id=self.consortium.genesis.chain_id if chain_id is None else chain_id,
            sender=sender,
            contract=contract,
            method=method,
            args=args,
            valid_until=(
                self.next_height() + VALIDITY_BLOCKS_DEFAULT if valid_until is None else valid_until
            ),
            nonce=nonce,
        )

    def admit(self, tx: Transaction) -> CheckedTx:
        return self.app.check_tx(tx.encode())

    # --- blocks --------------------------------------------------------------------------------

    def block_request(self, checked: Sequence[CheckedTx]) -> ExecuteBlockRequest:
        height = self.next_height()
        return ExecuteBlockRequest(
            height=height,
            time_ms=self.consortium.genesis.time_ms
            + height * BLOCK_INTERVAL_MS
            + self.clock_offset_ms,
            txs=tuple(checked),
        )

    def execute(self, checked: Sequence[CheckedTx]) -> ExecuteBlockResponse:
        return self.app.execute_block(self.block_request(checked))

    def prepare(self, checked: Sequence[CheckedTx]) -> tuple[CommitRequest, CommittedBlock]:
        """Execute, head and certify a block of admitted transactions, without committing it."""
        request = self.block_request(checked)
        execution = self.app.execute_block(request)
        header = self.app.make_header(request, execution, round_number=0, proposer=VALIDATOR_INDEX)
        block_hash = self.app.block_hash(header)
        signature = self.consortium.validator_key.sign(
            commit_statement(header.chain_id, header.height, 0, block_hash)
        )
        certificate = CommitCertificate(
            header.height, 0, block_hash, (ValidatorSignature(VALIDATOR_INDEX, signature.hex()),)
        )
        commit_request = CommitRequest(
            block=Block(header, tuple(item.raw for item in request.txs)),
            block_hash=block_hash,
            execution=execution,
            tx_ids=tuple(item.tx_id for item in request.txs),
            certificate=certificate,
        )
        committed = CommittedBlock(header, block_hash, execution, request.txs, certificate)
        return commit_request, committed

    def commit_checked(self, checked: Sequence[CheckedTx]) -> CommittedBlock:
        commit_request, committed = self.prepare(checked)
        self.app.commit(commit_request)
        return committed

    def commit_txs(self, txs: Sequence[Transaction]) -> CommittedBlock:
        """Admit every transaction (admission must pass), then commit them as one block."""
        return self.commit_checked([self.admit(tx) for tx in txs])

    def call(self, sender: str, contract: str, method: str, args: dict[str, Any]) -> TxResult:
        """One transaction in a block of its own; returns its result."""
        block = self.commit_txs([self.sign(sender, contract, method, args)])
        return block.results[0]


def with_signature(tx: Transaction, signature: bytes) -> Transaction:
    """The same body under another signature (`raw` left empty so that it re-encodes)."""
    return Transaction(body=tx.body, signature=signature)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def object_event(**fields: Any) -> dict[str, Any]:
    """An EPCIS 2.0 ObjectEvent (OBSERVE, 2026-11-01 08:00 UTC) with `fields` added or replaced."""
    return {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "eventTime": "2026-11-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        **fields,
    }
