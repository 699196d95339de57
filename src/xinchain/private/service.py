"""A node's side of private data (docs/private-data.md): sealing records its org writes,
fetching the envelopes sealed to its org from the peers of the other readers, opening them for
its org, purging them when their collection says, and the regulator's audit.

What a node holds: the envelopes sealed to its org (`EnvelopeStore`, never in LMDB), and its
org's decryption keys (`Keyring`, HOME/keys/<org>.enc/). Plaintext is never written to disk
and never logged; it exists only in the answer to the org's own gateway.

Envelopes move between nodes in two frames: `private_want` {hashes} asks a peer for envelopes,
`private_data` {envelopes} answers. A node answers only a peer whose org reads the record (by
the peer's TLS identity and the committed record's `orgs`), and stores only an envelope whose
hash a committed record names, sealed to its own org and not purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from xinchain import codec
from xinchain.client.member import CallRefused
from xinchain.contracts.governance import (
    PRIVATE_DATA_RULES,
    chain_rules,
    collection,
    collection_names,
    enc_key,
    org_roles,
    reader_orgs,
)
from xinchain.contracts.private import KEY_PATTERN, NAME, height_key
from xinchain.errors import Forbidden, Gone, NotFound, XinchainError
from xinchain.genesis import Genesis
from xinchain.merkle import MerkleTree
from xinchain.private.crypto import (
    EncryptionKey,
    Keyring,
    PrivateDataError,
    Recipient,
    check_value,
    cipher_hash,
    commitment,
    envelope_bytes_max,
    open_envelope,
    private_record,
    seal,
)
from xinchain.private.store import EnvelopeStore
from xinchain.receipt import build_receipts
from xinchain.types import TxResult

if TYPE_CHECKING:
    from xinchain.node.node import Node

_log = logging.getLogger(__name__)
_KEY = re.compile(KEY_PATTERN)
RECORD_KIND = "private_record"
# How often a node asks its peers again for envelopes it lacks, and how many per frame.
want_interval_s = 0.5
# Envelopes held in memory while their record is not yet committed here.
early_bytes_max = 64 * 1024 * 1024
hashes_per_want_max = 256
data_frame_bytes_max = 4 * 1024 * 1024
# How long a node waits for its own write to commit.
write_wait_s = 60.0
# Records an audit search shows at most (each is listed in the audit's transaction).
audit_results_max = 1000
# How often a node checks that its org's newest encryption key is the one registered, and how
# long it waits for a registration to commit before it submits another.
key_check_interval_s = 5.0
key_resubmit_s = 15.0


def node_org(genesis: Genesis, name: str) -> str | None:
    """The org that runs node `name`: its validator's, or its registration's."""
    for validator in genesis.validators:
        if validator.name == name:
            return validator.org
    for node in genesis.nodes:
        if node.name == name:
            return node.org
    return None


def peer_org(genesis: Genesis, peer: str) -> str | None:
    """The org of a connected peer: a validator by its genesis name, any other node as
    `name@org` (node/run.py names them so)."""
    if "@" in peer:
        return peer.rsplit("@", 1)[1]
    for validator in genesis.validators:
        if validator.name == peer:
            return validator.org
    return None


class PrivateData:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.genesis = node.genesis
        self.org = node_org(node.genesis, node.name)
        self.keyring = Keyring(node.home.path / "keys" / f"{self.org}.enc")
        self.store = EnvelopeStore(node.home.node_dir(node.name) / "private")
        self.missing: dict[str, float] = {}  # envelopes sealed to this org, not yet here
        self._purged_through = 0
        self._scanned = False
        # Envelopes pushed by their writer's node before this node committed their record.
        self._early: OrderedDict[str, bytes] = OrderedDict()
        self._early_bytes = 0
        self._disputed: set[str] = set()  # records this node disputed (or saw disputed)
        self._storing: set[str] = set()  # envelopes being written to disk
        # (kid, when) of the last registration submitted: a node submits again while the chain
        # does not show it (a transaction gossiped before any peer was connected goes nowhere).
        self._key_submitted: tuple[str, float] | None = None
        node.block_listeners.append(self._on_block)
        node.driver.handlers["private_want"] = self._on_want
        node.driver.handlers["private_data"] = self._on_data

    # --- what holds ----------------------------------------------------------------------------

    def enabled(self) -> bool:
        state = self.node.app.state
        return (
            chain_rules(state, self.genesis) >= PRIVATE_DATA_RULES
            and self.genesis.suite.hash_name == "sha256"
        )

    def _require_enabled(self) -> str:
        if not self.enabled():
            raise XinchainError(
                f"private data needs chain rules {PRIVATE_DATA_RULES} and the ed25519-sha256 "
                f"suite; this chain holds rules {chain_rules(self.node.app.state, self.genesis)} "
                f"on {self.genesis.suite_name}"
            )
        if self.org is None:
            raise XinchainError(f"node {self.node.name!r} is registered to no org")
        return self.org

    def collections(self) -> list[dict[str, Any]]:
        state = self.node.app.state
        found = []
        for name in collection_names(state):
            record = collection(state, name)
            if record is None:
                continue
            readers = reader_orgs(state, record)
            found.append(
                {
                    "name": name,
                    **record,
                    "readers": readers,
                    "keys": {org: (enc_key(state, org) or {}).get("kid") for org in readers},
                }
            )
        return found

    def recipients(self, name: str) -> list[Recipient]:
        state = self.node.app.state
        record = collection(state, name)
        if record is None:
            raise NotFound(f"no collection {name!r}", field="collection")
        found = []
        for org in reader_orgs(state, record):
            registered = enc_key(state, org)
            if registered is None:
                raise XinchainError(
                    f"org {org!r} reads collection {name!r} but has registered no encryption "
                    "key yet; its nodes register one when they start",
                    field="collection",
                )
            found.append(Recipient(org, registered["kid"], bytes.fromhex(registered["key"])))
        return found

    # --- writing -------------------------------------------------------------------------------

    async def write(self, name: str, key: str, value: object, contract: str = "") -> dict[str, Any]:
        """Seal `value` to collection `name`'s readers as this node's org, keep the envelope
        (synced) and commit its hash; the committed record, without the value. `contract`
        names the app the record is written for ("" when written directly)."""
        org = self._require_enabled()
        if not _KEY.fullmatch(key):
            raise XinchainError(
                "expected a key of 1-200 characters from A-Z a-z 0-9 _ . : / - starting with a "
                "letter or digit",
                field="key",
            )
        record_spec = collection(self.node.app.state, name)
        if record_spec is None:
            raise NotFound(f"no collection {name!r}", field="collection")
        writers = record_spec["writers"] or record_spec["members"]
        if org not in writers:
            raise Forbidden(
                f"org {org!r} may not write collection {name!r}; its writers are {writers}",
                field="collection",
            )
        record = private_record(name, key, check_value(value), org)
        recipients = self.recipients(name)
        envelope = seal(self.genesis.chain_id, record, recipients)
        hashed = cipher_hash(envelope)
        # Synced before the transaction exists (an acknowledged write survives a kill -9), in
        # a worker thread: the event loop goes on with consensus meanwhile.
        await asyncio.to_thread(self.store.put, hashed, envelope)
        args = {
            "collection": name,
            "key": key,
            "commitment": commitment(record),
            "cipher_hash": hashed,
            "kids": [recipient.kid for recipient in recipients],
            "bytes": len(envelope),
            "contract": contract,
        }
        try:
            done = await self.node.call(
                self.node.member(org), NAME, "put", args, wait_s=write_wait_s
            )
        except CallRefused as exc:
            self.store.purge(hashed)
            raise XinchainError(f"refused by the chain: {exc.reason}", field="args") from None
        meta = self.node.chain.read_state(NAME, f"hash/{hashed}")
        return {
            "tx_id": done["tx_id"],
            "height": done["height"],
            **_public({**meta, "cipher_hash": hashed}),
        }

    # --- reading -------------------------------------------------------------------------------

    def meta(self, name: str, key: str, version: int | None = None) -> dict[str, Any]:
        """The committed record of `key` (its current version, or `version`), without the
        value: what every node knows."""
        chain = self.node.chain
        current = chain.read_state(NAME, f"rec/{name}/{key}")
        if current is None:
            raise NotFound(f"collection {name!r} holds no record {key!r}", field="key")
        hashed = current["cipher_hash"]
        if version is not None and version != current["version"]:
            hashed = self._version_hash(name, key, version)
        elif current["deleted"]:
            raise NotFound(
                f"record {key!r} of {name!r} was deleted at version {current['version']}",
                field="key",
            )
        found = chain.read_state(NAME, f"hash/{hashed}")
        if found is None:
            raise NotFound(f"no private record {hashed}", field="key")
        return {**found, "cipher_hash": hashed}

    def _version_hash(self, name: str, key: str, version: int) -> str:
        found = self.node.chain.read_state(NAME, f"ver/{name}/{key}/{version:09d}")
        if found is None:
            raise NotFound(f"record {key!r} of {name!r} has no version {version}", field="version")
        return str(found)

    def open(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The record `meta` names, opened with this org's keys and checked against its
        commitment. Refuses an org that does not read it (403), a purged record (410), an
        envelope not yet received (404)."""
        org = self._require_enabled()
        if org not in meta["orgs"]:
            raise Forbidden(
                f"org {org!r} does not read this record of collection {meta['collection']!r}: "
                f"it was sealed to {meta['orgs']}",
                field="collection",
            )
        tip = self.node.app.tip().height
        if meta["purge_at"] and tip >= meta["purge_at"]:
            raise Gone(
                f"record {meta['key']!r} of {meta['collection']!r} (version {meta['version']}) "
                f"was purged at height {meta['purge_at']}; its hash {meta['commitment']} stays "
                "on chain",
                field="key",
            )
        envelope = self.store.get(meta["cipher_hash"])
        if envelope is None:
            self.missing.setdefault(meta["cipher_hash"], time.monotonic())
            raise NotFound(
                f"this node has not yet received envelope {meta['cipher_hash']} from the "
                "collection's other readers; it is asking them",
                field="key",
            )
        return self._opened(meta, envelope)

    def _opened(self, meta: dict[str, Any], envelope: bytes) -> dict[str, Any]:
        """The record in `envelope`, checked against its commitment; a failure is disputed on
        chain (once) and refused naming the writer."""
        try:
            record = open_envelope(envelope, self.keyring)
        except PrivateDataError as exc:
            if "holds none of the keys" in exc.reason:
                raise  # this node lacks the key: the org's problem, not the writer's
            self._dispute(meta, "does_not_open")
            raise PrivateDataError(
                f"{exc.reason}; org {meta['writer']!r} wrote it, and this org disputed it on chain"
            ) from None
        if commitment(record) != meta["commitment"]:
            self._dispute(meta, "commitment_mismatch")
            raise PrivateDataError(
                f"the envelope sealed to {self.org!r} does not open to the record "
                f"{meta['writer']!r} committed ({meta['commitment']}): the writer sealed "
                "another record to this org, and this org disputed it on chain"
            )
        return record

    def _dispute(self, meta: dict[str, Any], reason: str) -> None:
        hashed = meta["cipher_hash"]
        if self.org is None or hashed in self._disputed:
            return
        if self.node.chain.read_state(NAME, f"dispute/{hashed}/{self.org}") is not None:
            self._disputed.add(hashed)
            return
        if not self.node.home.org_key_path(self.org).exists():
            return
        self._disputed.add(hashed)
        _log.warning(
            "private record %s of %r from %r does not open for %r (%s): disputing it",
            hashed,
            meta["collection"],
            meta["writer"],
            self.org,
            reason,
        )
        self.node.submit_call(
            self.node.member(self.org),
            NAME,
            "dispute",
            {"cipher_hash": hashed, "reason": reason},
        )

    def disputes(self, cipher: str) -> list[dict[str, Any]]:
        return [
            {"org": key.rsplit("/", 1)[1], **entry}
            for key, entry in self.node.chain.scan_state(NAME, f"dispute/{cipher}/")
        ]

    def read(self, name: str, key: str, version: int | None = None) -> dict[str, Any]:
        meta = self.meta(name, key, version)
        record = self.open(meta)
        return {**_public(meta), "value": record["value"]}

    def receipt(self, name: str, key: str, version: int | None = None) -> dict[str, Any]:
        """The receipt of the record: reveals it (with its salt) to whoever holds the receipt,
        and nothing else of the block."""
        meta = self.meta(name, key, version)
        record = self.open(meta)
        proof = self.node.tx_proof(meta["tx"])
        digest = bytes.fromhex(meta["commitment"])
        tree = MerkleTree(self.genesis.suite.hash, [digest])
        return build_receipts(proof, [digest], None, [record], RECORD_KIND, tree)[0]

    # --- the regulator's audit -----------------------------------------------------------------

    async def audit(self, query: dict[str, Any]) -> dict[str, Any]:
        """Every record sealed to this (regulator) org that matches `query` {org, contract,
        collection, from_ms, to_ms, counterparty}; the read is logged on chain first (an `audit`
        transaction listing the records shown) and the answer names it."""
        org = self._require_enabled()
        if "regulator" not in org_roles(self.node.app.state, org):
            raise Forbidden(
                f"org {org!r} holds no regulator role: the audit API is the regulator's",
                field="authorization",
            )
        matched: list[dict[str, Any]] = []
        for meta in self._sealed_to(org):
            if not _meta_matches(meta, query):
                continue
            try:
                record = self.open(meta)
            except (Gone, NotFound, PrivateDataError):
                continue  # purged, not yet here, or disputed: it does not stop the search
            counterparty = query.get("counterparty")
            if counterparty and not _names(record["value"], str(counterparty)):
                continue
            matched.append({**_public(meta), "value": record["value"]})
            if len(matched) == audit_results_max:
                break
        logged = {name: query[name] for name in sorted(query) if query[name] not in (None, "")}
        done = await self.node.call(
            self.node.member(org),
            NAME,
            "audit",
            {"query": logged, "read": [found["cipher_hash"] for found in matched]},
            wait_s=write_wait_s,
        )
        return {
            "audit_tx": done["tx_id"],
            "audit_height": done["height"],
            "query": logged,
            "count": len(matched),
            "records": matched,
        }

    def audit_log(self) -> list[dict[str, Any]]:
        return [{"id": key, **entry} for key, entry in self.node.chain.scan_state(NAME, "audit/")]

    def _sealed_to(self, org: str) -> Iterator[dict[str, Any]]:
        chain = self.node.chain
        for _, hashed in chain.scan_state(NAME, "log/"):
            meta = chain.read_state(NAME, f"hash/{hashed}")
            if meta is not None and org in meta["orgs"]:
                yield {**meta, "cipher_hash": hashed}

    # --- keys ----------------------------------------------------------------------------------

    def ensure_key(self) -> EncryptionKey | None:
        """This org's newest decryption key, made the first time (None: the node holds no key
        of its org and cannot make one: it is not the org's node)."""
        if self.org is None or not self.node.home.org_key_path(self.org).exists():
            return None
        newest = self.keyring.newest()
        if newest is None:
            newest = EncryptionKey.generate()
            self.keyring.add(newest)
        return newest

    def register_key(self) -> str | None:
        """Submit `set_enc_key` when the org's newest key is not the registered one; the
        transaction's id, or None when nothing needed doing."""
        if not self.enabled():
            return None
        newest = self.ensure_key()
        if newest is None or self.org is None:
            return None
        registered = enc_key(self.node.app.state, self.org)
        if registered is not None and registered["kid"] == newest.kid:
            return None
        submitted = self._key_submitted
        recent = submitted is not None and time.monotonic() - submitted[1] < key_resubmit_s
        if recent and submitted is not None and submitted[0] == newest.kid:
            return None  # the registration is on its way
        tx_id = self.node.submit_call(
            self.node.member(self.org), "governance", "set_enc_key", {"key": newest.public.hex()}
        )
        self._key_submitted = (newest.kid, time.monotonic())
        return tx_id

    # --- the node's background work ------------------------------------------------------------

    async def run(self) -> None:
        """Register the org's key, then keep asking peers for missing envelopes."""
        last_key_check = 0.0
        while True:
            now = time.monotonic()
            peers_ready = self.node.driver.transport is None or self.node.driver.connected_peers()
            if peers_ready and now - last_key_check >= key_check_interval_s:
                last_key_check = now
                try:
                    self.register_key()
                except XinchainError as exc:
                    _log.warning("encryption key not registered: %s", exc)
            if not self._scanned and self.enabled() and self.org is not None:
                self._scan_missing(self.org)
                self._purge_due(self.node.app.tip().height)
            self._want()
            await asyncio.sleep(want_interval_s)

    def _scan_missing(self, org: str) -> None:
        """After a start: every envelope sealed to this org, committed and not here."""
        self._scanned = True
        tip = self.node.app.tip().height
        for meta in self._sealed_to(org):
            if meta["purge_at"] and tip >= meta["purge_at"]:
                continue
            if not self.store.has(meta["cipher_hash"]):
                self.missing.setdefault(meta["cipher_hash"], time.monotonic())

    def _on_block(
        self, height: int, tx_ids: tuple[str, ...], results: tuple[TxResult, ...]
    ) -> None:
        chain = self.node.chain
        pushes: dict[str, list[bytes]] = {}
        arrived: list[tuple[dict[str, Any], bytes]] = []
        for index, result in enumerate(results):
            if not (result.ok and result.contract == NAME and result.method == "put"):
                continue
            hashed = chain.read_state(NAME, f"log/{height_key(height, index)}")
            meta = chain.read_state(NAME, f"hash/{hashed}")
            early = self._take_early(hashed)
            if meta is None or self.org not in meta["orgs"]:
                continue
            meta["cipher_hash"] = hashed
            if self.store.has(hashed):
                if meta["writer"] == self.org:
                    # The writer's node hands the envelope on to the other readers at once.
                    envelope = self.store.get(hashed)
                    for peer in self._peers_of(meta["orgs"]):
                        if envelope is not None:
                            pushes.setdefault(peer, []).append(envelope)
            elif early is not None:
                arrived.append((meta, early))
            else:
                self.missing.setdefault(hashed, time.monotonic())
        for peer, envelopes in pushes.items():
            self._send_data(peer, envelopes)
        if arrived:
            self._keep(arrived)
        self._purge_due(height)
        if self.missing:
            self._want()

    def _keep(self, arrived: list[tuple[dict[str, Any], bytes]]) -> None:
        """Store envelopes that arrived for committed records (synced, in a worker thread,
        all of them with one sync of each directory), then open each to dispute a bad one."""
        fresh = [(m, e) for m, e in arrived if m["cipher_hash"] not in self._storing]
        if not fresh:
            return
        for meta, _ in fresh:
            self._storing.add(meta["cipher_hash"])
            self.missing.pop(meta["cipher_hash"], None)
        items = [(meta["cipher_hash"], envelope) for meta, envelope in fresh]

        def kept(done: asyncio.Future[None]) -> None:
            cancelled = RuntimeError("the store was cancelled")
            self._kept(fresh, cancelled if done.cancelled() else done.exception())

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a node driven by a test's own thread)
            self.store.put_many(items)
            self._kept(fresh, None)
            return
        loop.run_in_executor(None, self.store.put_many, items).add_done_callback(kept)

    def _kept(
        self, fresh: list[tuple[dict[str, Any], bytes]], failed: BaseException | None
    ) -> None:
        for meta, _ in fresh:
            self._storing.discard(meta["cipher_hash"])
        if failed is not None:
            for meta, _ in fresh:
                self.missing.setdefault(meta["cipher_hash"], time.monotonic())
            _log.warning("private envelopes not stored: %s", failed)
            return
        tip = self.node.app.tip().height
        for meta, envelope in fresh:
            if meta["purge_at"] and tip >= meta["purge_at"]:
                self.store.purge(meta["cipher_hash"])  # its purge height passed meanwhile
                continue
            with contextlib.suppress(PrivateDataError):
                self._opened(meta, envelope)

    def _peers_of(self, orgs: list[str]) -> list[str]:
        found = []
        for peer in self.node.driver.connected_peers():
            org = peer_org(self.genesis, peer)
            if org is not None and org in orgs and org != self.org:
                found.append(peer)
        return found

    def _purge_due(self, height: int) -> None:
        if height <= self._purged_through:
            return
        due = self.node.chain.scan_state_keys(
            NAME, f"purge/{self._purged_through + 1:012d}", f"purge/{height + 1:012d}"
        )
        for key in list(due):
            hashed = key.rsplit("/", 1)[1]
            self.missing.pop(hashed, None)
            if self.store.purge(hashed):
                _log.info("purged private envelope %s at height %d", hashed, height)
        self._purged_through = height

    def _want(self) -> None:
        if not self.missing:
            return
        chain = self.node.chain
        wanted: dict[str, list[str]] = {}
        for hashed in list(self.missing)[:hashes_per_want_max]:
            if hashed in self._storing:
                continue
            meta = chain.read_state(NAME, f"hash/{hashed}")
            if meta is None:  # not committed here yet
                continue
            for peer in self.node.driver.connected_peers():
                org = peer_org(self.genesis, peer)
                if org is not None and org in meta["orgs"] and org != "":
                    wanted.setdefault(peer, []).append(hashed)
        for peer, hashes in wanted.items():
            self.node.driver.send(peer, codec.encode({"type": "private_want", "hashes": hashes}))

    def _on_want(self, peer: str, frame: dict[str, Any]) -> None:
        hashes = frame.get("hashes")
        org = peer_org(self.genesis, peer)
        if not isinstance(hashes, list) or org is None:
            return
        tip = self.node.app.tip().height
        batch: list[bytes] = []
        size = 0
        for hashed in hashes[:hashes_per_want_max]:
            if not isinstance(hashed, str):
                continue
            meta = self.node.chain.read_state(NAME, f"hash/{hashed}")
            if meta is None or org not in meta["orgs"]:
                continue  # never to an org the record is not sealed to
            if meta["purge_at"] and tip >= meta["purge_at"]:
                continue
            envelope = self.store.get(hashed)
            if envelope is None:
                continue
            if size + len(envelope) > data_frame_bytes_max and batch:
                self._send_data(peer, batch)
                batch, size = [], 0
            batch.append(envelope)
            size += len(envelope)
        if batch:
            self._send_data(peer, batch)

    def _send_data(self, peer: str, envelopes: list[bytes]) -> None:
        self.node.driver.send(peer, codec.encode({"type": "private_data", "envelopes": envelopes}))

    def _on_data(self, peer: str, frame: dict[str, Any]) -> None:
        envelopes = frame.get("envelopes")
        org = peer_org(self.genesis, peer)
        if not isinstance(envelopes, list) or org is None:
            return
        tip = self.node.app.tip().height
        arrived: list[tuple[dict[str, Any], bytes]] = []
        for envelope in envelopes:
            if not isinstance(envelope, bytes) or len(envelope) > envelope_bytes_max:
                continue
            hashed = cipher_hash(envelope)
            meta = self.node.chain.read_state(NAME, f"hash/{hashed}")
            if meta is None:
                # Pushed by its writer before this node committed it: held in memory (never on
                # disk) until the commit shows it is sealed to this org, or forgotten.
                self._hold_early(hashed, envelope)
                continue
            if self.org not in meta["orgs"] or self.store.has(hashed):
                continue  # not sealed to this org, or here already
            if meta["purge_at"] and tip >= meta["purge_at"]:
                continue
            arrived.append(({**meta, "cipher_hash": hashed}, envelope))
        if arrived:
            self._keep(arrived)

    def _take_early(self, hashed: str) -> bytes | None:
        envelope = self._early.pop(hashed, None)
        if envelope is not None:
            self._early_bytes -= len(envelope)
        return envelope

    def _hold_early(self, hashed: str, envelope: bytes) -> None:
        if hashed in self._early:
            return
        self._early[hashed] = envelope
        self._early_bytes += len(envelope)
        while self._early_bytes > early_bytes_max and self._early:
            _, dropped = self._early.popitem(last=False)
            self._early_bytes -= len(dropped)


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        name: meta[name]
        for name in (
            "collection",
            "key",
            "version",
            "writer",
            "height",
            "time_ms",
            "tx",
            "orgs",
            "commitment",
            "cipher_hash",
            "purge_at",
            "contract",
        )
    }


def _meta_matches(meta: dict[str, Any], query: dict[str, Any]) -> bool:
    if query.get("org") and meta["writer"] != query["org"]:
        return False
    if query.get("contract") and meta["contract"] != query["contract"]:
        return False
    if query.get("collection") and meta["collection"] != query["collection"]:
        return False
    if query.get("from_ms") is not None and meta["time_ms"] < int(query["from_ms"]):
        return False
    return not (query.get("to_ms") is not None and meta["time_ms"] > int(query["to_ms"]))


def _names(value: Any, party: str) -> bool:
    """Whether a private value names `party` in any of its text (a counterparty field, a list
    of parties, a nested object)."""
    if isinstance(value, str):
        return value == party
    if isinstance(value, list):
        return any(_names(item, party) for item in value)
    if isinstance(value, dict):
        return any(_names(item, party) for item in value.values())
    return False
