"""Private data: what every node checks and records of a record sealed to a collection's orgs
(docs/private-data.md). The envelope itself never enters a block; a transaction carries its
hash, the record's commitment and the key ids it is sealed to, and every node, member or not,
executes the same checks on them, so the state and its hash agree everywhere.

Methods (chain rules 3):

* ``put``    {collection, key, commitment, cipher_hash, kids, bytes, contract}: the sender is
  one of the collection's writers; `kids` are exactly the current encryption keys of the
  collection's readers, in reader order; `contract` names the app the record is written for
  ("" when written directly), which the regulator's search goes by. Answers {root, size: 1}:
  the one-leaf tree over the commitment, so that a receipt proves the record the commitment is
  made to (the `private_record` receipt kind) as every record receipt does; the rest is in the
  state.
* ``delete`` {collection, key}: a writer ends the key's current record (history is kept).
* ``audit``  {query, read}: a regulator logs an audit read (what it searched, which records it
  was shown) before the node shows them.
* ``dispute`` {cipher_hash, reason}: a reader of a record declares that what was sealed to it
  does not open, or does not open to the record committed (`reason`: ``does_not_open``,
  ``commitment_mismatch``); once per reader and record. The writer's signature on the put and
  the envelope every reader holds are the evidence; the chain records who complained.

State (key space ``private/``): ``rec/<collection>/<key>`` → {cipher_hash, version, deleted};
``hash/<cipher_hash>`` → {collection, key, writer, height, time_ms, tx, orgs, kids,
commitment, purge_at, version, contract}; ``ver/<collection>/<key>/<version>`` →
cipher_hash; ``log/<height>/<index>`` → cipher_hash (write order, for
search); ``purge/<purge_at>/<cipher_hash>`` → 1; ``audit/<height>/<index>`` → {org, query,
read, time_ms, tx}; ``dispute/<cipher_hash>/<org>`` → {reason, height, tx}. Heights and
indexes are zero-padded so keys sort in chain order.
"""

from __future__ import annotations

import re
from typing import Any

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.contracts.governance import (
    PRIVATE_DATA_RULES,
    collection,
    enc_key,
    org_roles,
    reader_orgs,
)
from xinchain.errors import ContractError, XinchainError
from xinchain.merkle import MerkleTree
from xinchain.private.crypto import envelope_bytes_max
from xinchain.types import check_identifier

NAME = "private"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$"
_KEY = re.compile(KEY_PATTERN)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
DISPUTE_REASONS = ("does_not_open", "commitment_mismatch")
# What one audit entry may list: records shown, and the query's size.
audit_reads_max = 10_000
audit_query_bytes_max = 4096


def height_key(height: int, index: int) -> str:
    return f"{height:012d}/{index:06d}"


class Private(Contract):
    name = NAME

    def methods(self) -> dict[str, Handler]:
        return {
            "put": self.put,
            "delete": self.delete,
            "audit": self.audit,
            "dispute": self.dispute,
        }

    def put(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        _require_rules(context)
        require_args(
            args, {"collection", "key", "commitment", "cipher_hash", "kids", "bytes", "contract"}
        )
        name, key = args["collection"], args["key"]
        record = _writable(context, name, key)
        if args["contract"] != "":
            try:
                check_identifier(args["contract"], "args.contract")
            except XinchainError as exc:
                raise ContractError(exc.reason, field=exc.field) from exc
        for field in ("commitment", "cipher_hash"):
            if not isinstance(args[field], str) or not _HEX64.fullmatch(args[field]):
                raise ContractError("expected 64 lowercase hex digits", field=f"args.{field}")
        size = args["bytes"]
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or not 1 <= size <= envelope_bytes_max
        ):
            raise ContractError(
                f"expected the envelope's size, 1 to {envelope_bytes_max} bytes",
                field="args.bytes",
            )
        orgs = reader_orgs(context.state, record)
        expected = []
        for org in orgs:
            registered = enc_key(context.state, org)
            if registered is None:
                raise ContractError(
                    f"org {org!r} reads collection {name!r} but has registered no encryption "
                    "key (governance set_enc_key)"
                )
            expected.append(registered["kid"])
        kids = args["kids"]
        if kids != expected:
            raise ContractError(
                f"the record must be sealed to the current keys of {orgs}: {expected}, in that "
                f"order; found {kids!r}",
                field="args.kids",
            )
        cipher = args["cipher_hash"]
        if context.read(NAME, f"hash/{cipher}") is not None:
            raise ContractError(f"envelope {cipher} was written already", field="args.cipher_hash")
        current = context.read(NAME, f"rec/{name}/{key}")
        version = 1 if current is None else current["version"] + 1
        ttl = record["block_to_live"]
        purge_at = context.height + ttl if ttl else 0
        root = MerkleTree(context.suite.hash, [bytes.fromhex(args["commitment"])]).root().hex()
        context.write(
            NAME, f"rec/{name}/{key}", {"cipher_hash": cipher, "version": version, "deleted": False}
        )
        context.write(
            NAME,
            f"hash/{cipher}",
            {
                "collection": name,
                "key": key,
                "writer": context.sender,
                "height": context.height,
                "time_ms": context.time_ms,
                "tx": context.tx_id,
                "orgs": orgs,
                "kids": kids,
                "commitment": args["commitment"],
                "purge_at": purge_at,
                "version": version,
                "contract": args["contract"],
            },
        )
        context.write(NAME, f"ver/{name}/{key}/{version:09d}", cipher)
        context.write(NAME, f"log/{height_key(context.height, context.tx_index)}", cipher)
        if purge_at:
            context.write(NAME, f"purge/{purge_at:012d}/{cipher}", 1)
        return {"root": root, "size": 1}

    def delete(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        _require_rules(context)
        require_args(args, {"collection", "key"})
        name, key = args["collection"], args["key"]
        _writable(context, name, key)
        current = context.read(NAME, f"rec/{name}/{key}")
        if current is None or current["deleted"]:
            raise ContractError(f"collection {name!r} holds no record {key!r}", field="args.key")
        context.write(NAME, f"rec/{name}/{key}", {**current, "deleted": True})
        return {"collection": name, "key": key, "version": current["version"]}

    def audit(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        _require_rules(context)
        require_args(args, {"query", "read"})
        if "regulator" not in org_roles(context.state, context.sender):
            raise ContractError(
                f"org {context.sender!r} holds no regulator role; only a regulator audits"
            )
        query, read = args["query"], args["read"]
        if not isinstance(query, dict) or not all(isinstance(v, str | int) for v in query.values()):
            raise ContractError(
                "expected the search as a map of text and numbers", field="args.query"
            )
        if len(codec.encode(query)) > audit_query_bytes_max:
            raise ContractError(
                f"the search is over {audit_query_bytes_max} bytes", field="args.query"
            )
        if not isinstance(read, list) or len(read) > audit_reads_max:
            raise ContractError(
                f"expected the records read as a list of at most {audit_reads_max} hashes",
                field="args.read",
            )
        for cipher in read:
            if not isinstance(cipher, str) or context.read(NAME, f"hash/{cipher}") is None:
                raise ContractError(f"no private record {cipher!r}", field="args.read")
        context.write(
            NAME,
            f"audit/{height_key(context.height, context.tx_index)}",
            {
                "org": context.sender,
                "query": query,
                "read": read,
                "time_ms": context.time_ms,
                "tx": context.tx_id,
            },
        )
        return {"audit": height_key(context.height, context.tx_index), "count": len(read)}

    def dispute(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        _require_rules(context)
        require_args(args, {"cipher_hash", "reason"})
        cipher, reason = args["cipher_hash"], args["reason"]
        record = context.read(NAME, f"hash/{cipher}") if isinstance(cipher, str) else None
        if record is None:
            raise ContractError(f"no private record {cipher!r}", field="args.cipher_hash")
        if reason not in DISPUTE_REASONS:
            raise ContractError(f"expected one of {list(DISPUTE_REASONS)}", field="args.reason")
        if context.sender not in record["orgs"]:
            raise ContractError(
                f"org {context.sender!r} is not a reader of this record; its readers are "
                f"{record['orgs']}"
            )
        if context.read(NAME, f"dispute/{cipher}/{context.sender}") is not None:
            raise ContractError(f"org {context.sender!r} disputed this record already")
        context.write(
            NAME,
            f"dispute/{cipher}/{context.sender}",
            {"reason": reason, "height": context.height, "tx": context.tx_id},
        )
        return {"cipher_hash": cipher, "org": context.sender, "writer": record["writer"]}


def _require_rules(context: CallContext) -> None:
    if context.rules < PRIVATE_DATA_RULES:
        raise ContractError(
            f"private data needs chain rules {PRIVATE_DATA_RULES}; this chain holds rules "
            f"{context.rules}"
        )


def _writable(context: CallContext, name: object, key: object) -> dict[str, Any]:
    if not isinstance(name, str):
        raise ContractError("expected a collection name", field="args.collection")
    record = collection(context.state, name)
    if record is None:
        raise ContractError(
            f"no collection {name!r} (collections are defined by governance)",
            field="args.collection",
        )
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ContractError(
            "expected a key of 1-200 characters from A-Z a-z 0-9 _ . : / - starting with a "
            "letter or digit",
            field="args.key",
        )
    writers = record["writers"] or record["members"]
    if context.sender not in writers:
        raise ContractError(
            f"org {context.sender!r} may not write collection {name!r}; its writers are {writers}"
        )
    return record
