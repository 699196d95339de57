"""REST routes and the public ranking page of first-N-buyers promotions."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from xinchain.api.checks import described
from xinchain.apps.promo.page import ranking_page_rows, render_ranking
from xinchain.apps.promo.view import mask_order_number, promotion, ranking
from xinchain.errors import NotFound
from xinchain.node.node import Node
from xinchain.receipt import build_receipt
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
        ranked = ranking(node.chain, promo_id)
        record = ranked.record
        return {
            "promo": promo_id,
            "final": record["closed"],
            "root": record["root"],
            "orders": ranked.size,
            "late": record.get("late", 0),
            "winners": record["winners"],
            "entries": [public(e, record["winners"]) for e in ranked.page(offset, limit)],
        }

    @api.get("/v1/promos/{promo_id}/rank/{order_no}", tags=["promo"])
    def promo_rank(promo_id: str = PROMO_ID, order_no: str = ORDER_NO) -> dict[str, Any]:
        ranked = ranking(node.chain, promo_id)
        record = ranked.record
        position = ranked.position(order_no)
        if position is None:
            late = ranked.late(order_no)
            if late is not None:
                raise NotFound(f"order {order_no!r} {late['reason']}", field="order_no")
            raise NotFound(f"no order {order_no!r} in promotion {promo_id!r}", field="order_no")
        return {
            **public(ranked.page(position, 1)[0], record["winners"]),
            "order_no": order_no,
            "final": record["closed"],
            "of": ranked.size,
        }

    @api.get("/v1/promos/{promo_id}/rank/{order_no}/receipt", tags=["promo"])
    def promo_rank_receipt(promo_id: str = PROMO_ID, order_no: str = ORDER_NO) -> dict[str, Any]:
        ranked = ranking(node.chain, promo_id)
        if not ranked.record["closed"]:
            raise NotFound("the ranking is committed when the promotion closes", field="promo")
        found = ranked.proof(order_no)
        if found is None:
            raise NotFound(f"no order {order_no!r} in promotion {promo_id!r}", field="order_no")
        proof = node.tx_proof(ranked.record["close_tx"])
        return build_receipt(proof, found.digest, found.proof, found.entry, "entry")

    @api.get("/promo/{promo_id}", response_class=HTMLResponse, tags=["promo"])
    def promo_page(
        request: Request,
        promo_id: str = PROMO_ID,
        lang: str | None = None,
        page: int = Query(1, ge=1, description="the page of the ranking, from 1"),
    ) -> str:
        """The public ranking page, a page of rows at a time, with a "check my rank" form."""
        ranked = ranking(node.chain, promo_id)
        record = ranked.record
        pages = max(1, -(-ranked.size // ranking_page_rows))
        shown = min(page, pages)
        entries = ranked.page((shown - 1) * ranking_page_rows, ranking_page_rows)
        rows = [public(entry, record["winners"]) for entry in entries]
        chosen = language(request.headers.get("accept-language", ""), lang)
        return render_ranking(record, rows, chosen, shown, pages, ranked.size)
