"""REST routes and the public ranking page of first-N-buyers promotions."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from xinchain.api.checks import described
from xinchain.apps.promo.page import ranking_page_rows_max, render_ranking
from xinchain.apps.promo.view import (
    committed_ranking,
    mask_order_number,
    promotion,
    rank_positions,
    ranking,
)
from xinchain.errors import NotFound
from xinchain.node.node import Node
from xinchain.receipt import build_receipts
from xinchain.web.lang import language

# Ranking entries one page of the ranking API lists, at most.
ranking_listed_max = 1_000


# The contract's syntax for promotion ids and order numbers, stated in the API description.
_ID_PATTERN = "^[0-9A-Za-z_-]{1,64}$"
PROMO_ID = described("the promotion's id", _ID_PATTERN)
ORDER_NO = described("the order number", _ID_PATTERN)


def promo_routes(api: FastAPI, node: Node) -> None:
    def public(entry: dict[str, Any], winners: int) -> dict[str, Any]:
        return {
            "rank": entry["rank"],
            "order_no": mask_order_number(entry["order_no"]),
            "buyer": entry["buyer_mask"],
            "paid_ms": entry["paid_ms"],
            "winner": entry["rank"] <= winners,
        }

    @api.get("/v1/promos/{promo_id}", tags=["promo"])
    def promo(promo_id: str = PROMO_ID) -> dict[str, Any]:
        return promotion(node.chain, promo_id)

    @api.get("/v1/promos/{promo_id}/ranking", tags=["promo"])
    def promo_ranking(
        promo_id: str = PROMO_ID,
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=ranking_listed_max),
    ) -> dict[str, Any]:
        record = promotion(node.chain, promo_id)
        entries = ranking(node.chain, promo_id)
        return {
            "promo": promo_id,
            "final": record["closed"],
            "root": record["root"],
            "orders": len(entries),
            "winners": record["winners"],
            "entries": [public(e, record["winners"]) for e in entries[offset : offset + limit]],
        }

    @api.get("/v1/promos/{promo_id}/rank/{order_no}", tags=["promo"])
    def promo_rank(promo_id: str = PROMO_ID, order_no: str = ORDER_NO) -> dict[str, Any]:
        record = promotion(node.chain, promo_id)
        entries = ranking(node.chain, promo_id)
        position = rank_positions(node.chain, promo_id).get(order_no)
        if position is None:
            raise NotFound(f"no order {order_no!r} in promotion {promo_id!r}", field="order_no")
        return {
            **public(entries[position], record["winners"]),
            "order_no": order_no,
            "final": record["closed"],
            "of": record["orders"],
        }

    @api.get("/v1/promos/{promo_id}/rank/{order_no}/receipt", tags=["promo"])
    def promo_rank_receipt(promo_id: str = PROMO_ID, order_no: str = ORDER_NO) -> dict[str, Any]:
        record = promotion(node.chain, promo_id)
        if not record["closed"]:
            raise NotFound("the ranking is committed when the promotion closes", field="promo")
        committed = committed_ranking(node.chain, promo_id)
        position = committed.positions.get(order_no)
        if position is None:
            raise NotFound(f"no order {order_no!r} in promotion {promo_id!r}", field="order_no")
        proof = node.tx_proof(record["close_tx"])
        return build_receipts(
            proof,
            committed.digests,
            [position],
            list(committed.entries),
            "entry",
            tree=committed.tree,
        )[0]

    @api.get("/promo/{promo_id}", response_class=HTMLResponse, tags=["promo"])
    def promo_page(request: Request, promo_id: str = PROMO_ID, lang: str | None = None) -> str:
        """The public ranking page, with a "check my rank" form."""
        record = promotion(node.chain, promo_id)
        entries = ranking(node.chain, promo_id)[:ranking_page_rows_max]
        rows = [public(entry, record["winners"]) for entry in entries]
        chosen = language(request.headers.get("accept-language", ""), lang)
        return render_ranking(record, rows, chosen)
