"""REST routes of the notary: look up a document hash, get the receipt of one of its anchors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query

from xinchain.api.checks import HEX64_PATTERN, described, hex64
from xinchain.apps.notary.contract import NAME, anchor_records
from xinchain.errors import NotFound
from xinchain.node.node import Node
from xinchain.receipt import build_receipts


def anchored_digests(node: Node, tx_id: str) -> list[bytes]:
    """The document digests a committed notary transaction anchored, in batch order."""
    body = node.committed_tx(tx_id).body
    if body.contract != NAME:
        raise NotFound(f"transaction {tx_id} is no notary transaction", field="tx_id")
    return [body.args["hash"]] if body.method == "anchor" else list(body.args["hashes"])


DOCUMENT_HASH = described("the document's hash, as anchored", HEX64_PATTERN)


def notary_routes(api: FastAPI, node: Node) -> None:
    def notary_records(document_hash: str) -> tuple[list[dict[str, Any]], bool]:
        digest = bytes.fromhex(hex64(document_hash, "hash"))
        records, more = anchor_records(node.chain, digest)
        if not records:
            raise NotFound(f"hash {document_hash} was never anchored", field="hash")
        return records, more

    @api.get("/v1/notary/{document_hash}", tags=["notary"])
    def notary_lookup(document_hash: str = DOCUMENT_HASH) -> dict[str, Any]:
        records, more = notary_records(document_hash)
        return {"hash": document_hash, "records": records, "more": more}

    @api.get("/v1/notary/{document_hash}/receipt", tags=["notary"])
    def notary_receipt(
        document_hash: str = DOCUMENT_HASH, record: int = Query(0, ge=0)
    ) -> dict[str, Any]:
        records, _ = notary_records(document_hash)
        if record >= len(records):
            raise NotFound(f"hash has {len(records)} records", field="record")
        entry = records[record]
        proof = node.tx_proof(entry["tx_id"])
        digests = anchored_digests(node, entry["tx_id"])
        return build_receipts(proof, digests, [entry["position"]])[0]
