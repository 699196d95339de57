"""REST routes of the notice app: a notice by its transaction id, and its receipt."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from xinchain.apps.notice.contract import NAME, notice_digest

from xinchain.errors import NotFound
from xinchain.node.node import Node
from xinchain.receipt import build_receipts


def notice_routes(api: FastAPI, node: Node) -> None:
    def stored(tx_id: str) -> dict[str, Any]:
        record = node.app.read_state(NAME, f"tx/{tx_id}")
        if record is None:
            raise NotFound(f"transaction {tx_id} posted no notice", field="tx_id")
        return dict(record)

    @api.get("/v1/notice/{tx_id}", tags=["notice"])
    def notice(tx_id: str) -> dict[str, Any]:
        return stored(tx_id)

    @api.get("/v1/notice/{tx_id}/receipt", tags=["notice"])
    def notice_receipt(tx_id: str) -> dict[str, Any]:
        record = stored(tx_id)
        proof = node.tx_proof(tx_id)
        digest = notice_digest(proof.genesis.suite.hash, record)
        return build_receipts(proof, [digest], None, [record], "notice")[0]
