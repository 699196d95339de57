"""The application boundary, shaped like ABCI (STYLE.md §4, DESIGN.md decision 5), in CometBFT's
three connections:

* admission — `check_tx(raw)` and its variants (`execution/admission.py`): decodes, checks
  chain, expiry, signature, membership and replay. The mempool calls it; its signature check
  is the only one a transaction gets on this node.
* `execute_block(request)` — runs admitted transactions against the committed state through an
  overlay and returns results, writes and roots; it changes nothing on disk, so a proposer can
  execute speculatively and a validator can re-execute a proposal before voting.
* `commit(request)` — writes block, results, certificate, indexes and state in one atomic,
  fsynced batch. Execution and commit are the consensus connection.
* the query side — `ChainStore` (`execution/chain.py`, `app.chain`): what the API and the
  apps' read models read.

Consensus drives these three calls and knows nothing of contracts.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract
from xinchain.contracts.governance import Governance, chain_rules, genesis_writes
from xinchain.contracts.private import Private
from xinchain.errors import (
    ConfigError,
    ContractError,
    ReplayedTransaction,
    StorageCorrupted,
    XinchainError,
    ensure,
)
from xinchain.execution.admission import Admission
from xinchain.execution.chain import ChainStore
from xinchain.execution.state import Overlay, next_state_hash
from xinchain.genesis import Genesis
from xinchain.merkle import MerkleTree
from xinchain.storage import Store, Table, height_key
from xinchain.types import (
    Block,
    BlockHeader,
    ChainTip,
    CheckedTx,
    CommitCertificate,
    CommitRequest,
    ExecuteBlockRequest,
    ExecuteBlockResponse,
    Transaction,
    TxResult,
)

# 2: notary anchors moved from the state to the derived index (Table.INDEX).
SCHEMA_VERSION = 2
_log = logging.getLogger(__name__)


def system_contracts(apps: Sequence[Contract]) -> dict[str, Contract]:
    """Governance and private data, which the core owns, and the contracts of the apps the
    node was given."""
    settings = {
        (contract.name, key): setting
        for contract in apps
        for key, setting in contract.settings().items()
    }
    contracts: list[Contract] = [Governance(settings), Private(), *apps]
    named: dict[str, Contract] = {}
    for contract in contracts:
        if contract.name in named:
            raise ConfigError(f"two contracts are named {contract.name!r}")
        named[contract.name] = contract
    return named


class _StoreState:
    """Committed state, read from the store. Governance records (orgs, members, parameters)
    are read for every transaction's admission and execution and change rarely, so they are
    kept in memory until the next commit writes any of them."""

    _CACHED = b"governance/"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[bytes, bytes | None] = {}

    def get_many(self, keys: list[bytes]) -> dict[bytes, bytes]:
        return self._store.get_many(Table.STATE, keys)

    def get(self, key: bytes) -> bytes | None:
        if not key.startswith(self._CACHED):
            return self._store.get(Table.STATE, key)
        if key in self._cache:
            return self._cache[key]
        value = self._store.get(Table.STATE, key)
        self._cache[key] = value
        return value

    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._store.scan_range(Table.STATE, start, end)

    def committed(self, written: Iterable[bytes]) -> None:
        """Forget cached records after a commit that wrote any of them."""
        if self._cache and any(key.startswith(self._CACHED) for key in written):
            self._cache.clear()


class Application:
    def __init__(self, store: Store, genesis: Genesis, contracts: Sequence[Contract]) -> None:
        self.store = store
        self.genesis = genesis
        self.suite = genesis.suite
        self.genesis_hash = genesis.hash_hex()
        self.validators_hash = genesis.validators_hash_hex()
        self.contracts = system_contracts(contracts)
        self.state = _StoreState(store)
        self._tip: ChainTip | None = None
        self._init_chain()
        self.chain = ChainStore(store, genesis, self.tip)
        self.admission = Admission(genesis, self.contracts, self.state, self.tip, self.chain)

    # --- lifecycle -----------------------------------------------------------------------------

    def _init_chain(self) -> None:
        stored_genesis = self.store.get(Table.META, b"genesis_hash")
        if stored_genesis is not None:
            if stored_genesis.decode() != self.genesis_hash:
                raise StorageCorrupted(
                    f"the data directory belongs to genesis {stored_genesis.decode()}, "
                    f"not {self.genesis_hash}"
                )
            stored_schema = (self.store.get(Table.META, b"schema_version") or b"?").decode()
            if stored_schema != str(SCHEMA_VERSION):
                raise StorageCorrupted(
                    f"the data directory has storage schema {stored_schema}, expected "
                    f"{SCHEMA_VERSION}: start this node on an empty data directory and it "
                    "syncs the blocks from its peers"
                )
            return
        writes = genesis_writes(self.genesis)
        state_hash = next_state_hash(self.suite, self.genesis_hash, dict(writes))
        tip = ChainTip(0, self.genesis_hash, state_hash, self.genesis.time_ms)
        with self.store.atomic_batch() as batch:
            for key, value in writes.items():
                batch.put(Table.STATE, key, value)
            batch.put(Table.META, b"schema_version", str(SCHEMA_VERSION).encode())
            batch.put(Table.META, b"genesis_hash", self.genesis_hash.encode())
            batch.put(Table.META, b"tip", _encode_tip(tip))

    def tip(self) -> ChainTip:
        if self._tip is not None:
            return self._tip
        raw = self.store.get(Table.META, b"tip")
        if raw is None:
            raise StorageCorrupted("the data directory has no chain tip")
        value = codec.decode(raw)
        self._tip = ChainTip(
            value["height"], value["block_hash"], value["state_hash"], value["time_ms"]
        )
        return self._tip

    # --- admission: the Admission connection (execution/admission.py) ---------------------------

    def check_tx(self, raw: bytes) -> CheckedTx:
        return self.admission.check_tx(raw)

    def check_tx_unsigned(self, raw: bytes, *, replay: bool = True) -> tuple[Transaction, str]:
        return self.admission.check_tx_unsigned(raw, replay=replay)

    def committed_ids(self, tx_ids: list[str]) -> set[str]:
        return self.admission.committed_ids(tx_ids)

    def signature_checked(self, tx: Transaction, tx_id: str, valid: bool) -> CheckedTx:
        return self.admission.signature_checked(tx, tx_id, valid)

    def verify_tx(self, raw: bytes) -> CheckedTx:
        return self.admission.verify_tx(raw)

    def tx_id_of_raw(self, raw: bytes) -> str:
        return self.admission.tx_id_of_raw(raw)

    def tx_id(self, tx: Transaction) -> str:
        return self.admission.tx_id(tx)

    # --- execute_block -------------------------------------------------------------------------

    def execute_block(self, request: ExecuteBlockRequest) -> ExecuteBlockResponse:
        tip = self.tip()
        ensure(request.height == tip.height + 1, "blocks execute on the committed tip")
        block_state = Overlay(self.state)
        seen: set[str] = set()
        committed = self.committed_ids([checked.tx_id for checked in request.txs])
        results = []
        for index, checked in enumerate(request.txs):
            results.append(self._execute_tx(checked, index, request, block_state, seen, committed))
            seen.add(checked.tx_id)
        hasher = self.suite.hash
        return ExecuteBlockResponse(
            results=tuple(results),
            writes=block_state.writes,
            indexed=block_state.indexed,
            state_hash=next_state_hash(self.suite, tip.state_hash, block_state.writes),
            tx_root=MerkleTree(hasher, [checked.raw for checked in request.txs]).root().hex(),
            result_root=MerkleTree(hasher, [result.encode() for result in results]).root().hex(),
        )

    def _execute_tx(
        self,
        checked: CheckedTx,
        index: int,
        request: ExecuteBlockRequest,
        block_state: Overlay,
        seen: set[str],
        committed: set[str],
    ) -> TxResult:
        """Run one transaction; a refusal records a failed result and discards its writes."""
        body = checked.tx.body

        def failed(reason: str) -> TxResult:
            return TxResult(
                checked.tx_id, False, body.sender, body.contract, body.method, {}, reason
            )

        tx_state = Overlay(block_state)
        try:
            if checked.tx_id in seen:
                raise ReplayedTransaction(f"transaction {checked.tx_id} appears twice in a block")
            self.admission.check_static(
                checked.tx,
                checked.tx_id,
                request.height,
                block_state,
                replayed=checked.tx_id in committed,
            )
            context = self._context(checked, index, request, tx_state)
            data = self.contracts[body.contract].call(context, body.method, dict(body.args))
            if not codec.is_text_model(data):
                raise ContractError("contract answered outside the text data model")
        except XinchainError as exc:
            return failed(str(exc))
        except Exception as exc:  # a contract bug: deterministic on every node, so record it
            _log.exception("contract %s.%s raised", body.contract, body.method)
            return failed(f"internal contract error: {type(exc).__name__}")
        tx_state.merge_into(block_state)
        return TxResult(checked.tx_id, True, body.sender, body.contract, body.method, data, "")

    def _context(
        self, checked: CheckedTx, index: int, request: ExecuteBlockRequest, tx_state: Overlay
    ) -> CallContext:
        sender = checked.tx.body.sender
        org = self.admission.org(tx_state, sender)
        return CallContext(
            suite=self.suite,
            chain_id=self.genesis.chain_id,
            tx_id=checked.tx_id,
            tx_index=index,
            sender=sender,
            sender_roles=org[0] if org is not None else frozenset(),
            height=request.height,
            time_ms=request.time_ms,
            state=tx_state,
            rules=chain_rules(tx_state, self.genesis),
        )

    # --- commit --------------------------------------------------------------------------------

    def commit(self, request: CommitRequest) -> ChainTip:
        header = request.block.header
        tip = self.tip()
        ensure(header.height == tip.height + 1, "commit extends the tip by one block")
        ensure(header.parent_hash == tip.block_hash, "commit extends the tip's block")
        ensure(request.certificate.block_hash == request.block_hash, "certificate names the block")
        height = height_key(header.height)
        new_tip = ChainTip(header.height, request.block_hash, header.state_hash, header.time_ms)
        block_value = {"header": header.to_value(), "txs": list(request.block.txs)}
        with self.store.atomic_batch() as batch:
            batch.put(Table.BLOCKS, height, codec.encode(block_value))
            batch.put(
                Table.RESULTS,
                height,
                codec.array_of_encoded([result.encoded for result in request.execution.results]),
            )
            batch.put(Table.CERTIFICATES, height, codec.encode(request.certificate.to_value()))
            indexed: set[str] = set()
            results = request.execution.results
            for index, tx_id in enumerate(request.tx_ids):
                key = bytes.fromhex(tx_id)
                # A repeat runs as a failed result; the index names the first copy. A
                # successful result is never a repeat, so only failed ones are looked up.
                if tx_id in indexed or (
                    not results[index].ok and self.store.get(Table.TX_INDEX, key) is not None
                ):
                    continue
                indexed.add(tx_id)
                batch.put(Table.TX_INDEX, key, codec.encode([header.height, index]))
            for key, value in request.execution.writes.items():
                if value is None:
                    batch.delete(Table.STATE, key)
                else:
                    batch.put(Table.STATE, key, value)
            if request.execution.indexed:  # in key order: LMDB inserts them fastest so
                batch.put_many(Table.INDEX, sorted(request.execution.indexed, key=_by_key))
            batch.put(Table.META, b"tip", _encode_tip(new_tip))
        self._tip = new_tip
        self.state.committed(request.execution.writes)
        return new_tip

    # --- queries: the query side, ChainStore (execution/chain.py) ------------------------------

    def block(self, height: int) -> Block | None:
        return self.chain.block(height)

    def results(self, height: int) -> list[TxResult]:
        return self.chain.results(height)

    def certificate(self, height: int) -> CommitCertificate | None:
        return self.chain.certificate(height)

    def tx_locations(self, tx_ids: list[str]) -> dict[str, tuple[int, int]]:
        return self.chain.tx_locations(tx_ids)

    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        return self.chain.tx_location(tx_id)

    def read_state(self, contract: str, key: str) -> Any:
        return self.chain.read_state(contract, key)

    def block_hash(self, header: BlockHeader) -> str:
        return self.suite.hash(header.encode()).hex()

    def make_header(
        self,
        request: ExecuteBlockRequest,
        execution: ExecuteBlockResponse,
        *,
        round_number: int,
        proposer: int,
    ) -> BlockHeader:
        tip = self.tip()
        return BlockHeader(
            chain_id=self.genesis.chain_id,
            genesis_hash=self.genesis_hash,
            height=request.height,
            round=round_number,
            parent_hash=tip.block_hash,  # the genesis hash for the first block
            tx_root=execution.tx_root,
            result_root=execution.result_root,
            state_hash=execution.state_hash,
            validators_hash=self.validators_hash,
            proposer=proposer,
            time_ms=request.time_ms,
            tx_count=len(request.txs),
        )


_by_key = operator.itemgetter(0)


def _encode_tip(tip: ChainTip) -> bytes:
    return codec.encode(
        {
            "height": tip.height,
            "block_hash": tip.block_hash,
            "state_hash": tip.state_hash,
            "time_ms": tip.time_ms,
        }
    )
