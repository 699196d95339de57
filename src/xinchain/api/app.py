"""REST API of one node (OpenAPI at /openapi.json, interactive docs at /docs).

Errors are JSON: ``{"error": {"code": ..., "field": ..., "reason": ...}}`` with a 4xx status
that says whose fault it was. Input is checked at this boundary: a path parameter that is not
the expected shape is refused here, before it reaches the node.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xinchain import codec
from xinchain.api.checks import hex64
from xinchain.api.copyright_routes import IMAGE_ROUTES, copyright_routes
from xinchain.api.stream import stream_routes
from xinchain.contracts.notary import anchor_records
from xinchain.copyright.perceptual import image_bytes_max
from xinchain.epcis import export_document, from_chain_event
from xinchain.errors import InvalidTransaction, MempoolFull, NotFound, XinchainError
from xinchain.gs1 import check_gtin14, check_serial, digital_link_path
from xinchain.node.node import Node
from xinchain.node.promo_view import (
    committed_ranking,
    mask_order_number,
    promotion,
    rank_positions,
    ranking,
)
from xinchain.node.provenance_view import commissioned_serials, count_scan, item_view
from xinchain.qr import item_qr_png, item_qr_svg, sheet_pdf, sheet_png, sheet_svg
from xinchain.receipt import build_receipts
from xinchain.types import tx_bytes_max
from xinchain.web.promo import ranking_page_rows_max, render_ranking
from xinchain.web.scan import language, render

# A request body larger than this is refused before it is read: a transaction is at most
# `tx_bytes_max` bytes, twice that as hex, plus JSON framing.
request_bytes_max = 2 * tx_bytes_max + 4096
# Longest a client may hold a request open waiting for a commit.
wait_ms_max = 60_000
# Seconds a client should back off when the mempool is full.
retry_after_s = 1
# Blocks one listing request may return.
blocks_listed_max = 100
CONSOLE_HTML = (files("xinchain.web") / "console.html").read_text(encoding="utf-8")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_HEIGHT_MAX = 2**63 - 1


class SubmitRequest(BaseModel):
    tx: str = Field(description="the signed transaction, canonical CBOR, as lowercase hex")


def error_body(code: str, reason: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "reason": reason}
    if field is not None:
        error["field"] = field
    return {"error": error}


def _field_name(location: tuple[Any, ...]) -> str:
    """Pydantic's error location as a field name: `query.wait_ms`, `tx`, or `body`."""
    if location[:1] == ("body",):
        named = [str(part) for part in location[1:] if not isinstance(part, int)]
        return ".".join(named) or "body"
    return ".".join(str(part) for part in location)


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, bytes_max: int) -> None:
        super().__init__(413, f"request body is larger than {bytes_max} bytes, the most accepted")


class BodyLimit:
    """Refuses a request body over `bytes_max` whether or not it declares a Content-Length:
    the declared length is checked first, then the bytes actually received are counted.
    Requests under `image_prefix` carry images and may be up to `image_bytes_max`."""

    def __init__(
        self, app: ASGIApp, bytes_max: int, image_prefix: str = "", image_bytes_max: int = 0
    ) -> None:
        self.app = app
        self.bytes_max = bytes_max
        self.image_prefix = image_prefix
        self.image_bytes_max = image_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.image_prefix and str(scope.get("path", "")).startswith(self.image_prefix):
            await BodyLimit(self.app, self.image_bytes_max)(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.bytes_max):
            status = 413 if declared.isdigit() else 400
            reason = (
                f"request body of {declared.decode(errors='replace')} bytes; at most "
                f"{self.bytes_max} are accepted"
                if status == 413
                else "Content-Length is not a number"
            )
            response = JSONResponse(error_body("request_too_large", reason), status)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.bytes_max:
                    raise _BodyTooLarge(self.bytes_max)
            return message

        await self.app(scope, counting_receive, send)


def create_api(node: Node) -> FastAPI:
    api = FastAPI(
        title="xinchain node",
        version="1",
        description="Submit transactions, read blocks, anchor and prove documents.",
    )

    @api.exception_handler(XinchainError)
    async def on_xinchain_error(request: Request, exc: XinchainError) -> JSONResponse:
        headers = {"Retry-After": str(retry_after_s)} if isinstance(exc, MempoolFull) else None
        return JSONResponse(
            error_body(exc.code, exc.reason, exc.field), exc.http_status, headers=headers
        )

    @api.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        location = _field_name(tuple(first.get("loc", ())))
        return JSONResponse(
            error_body("invalid_request", str(first.get("msg", "invalid request")), location),
            422,
        )

    @api.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "request_too_large" if exc.status_code == 413 else "http_error"
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)

    api.add_middleware(
        BodyLimit,
        bytes_max=request_bytes_max,
        image_prefix=IMAGE_ROUTES,
        image_bytes_max=image_bytes_max,
    )

    @api.get("/v1/status")
    def status() -> dict[str, Any]:
        tip = node.app.tip()
        return {
            "chain_id": node.genesis.chain_id,
            "suite": node.suite.name,
            "genesis_hash": node.app.genesis_hash,
            "node": node.name,
            "validator_index": node.validator_index,
            "height": tip.height,
            "block_hash": tip.block_hash,
            "state_hash": tip.state_hash,
            "time_ms": tip.time_ms,
            "mempool_txs": len(node.mempool),
        }

    @api.get("/v1/genesis")
    def genesis() -> dict[str, Any]:
        return node.genesis.to_value()

    # Async: admission touches the mempool and the consensus driver's queue, which belong to
    # the event loop's thread (a plain `def` route would run in a worker thread).
    @api.post("/v1/transactions", status_code=202)
    async def submit(body: SubmitRequest) -> dict[str, Any]:
        if not _HEX.fullmatch(body.tx):
            raise InvalidTransaction("expected an even number of lowercase hex digits", field="tx")
        raw = bytes.fromhex(body.tx)
        tx_id, added = node.submit(raw)
        return {"tx_id": tx_id, "status": "pending", "new": added}

    @api.get("/v1/transactions/{tx_id}")
    async def transaction(
        tx_id: str, wait_ms: int = Query(0, ge=0, le=wait_ms_max)
    ) -> dict[str, Any]:
        hex64(tx_id, "tx_id")
        status = await node.wait_committed(tx_id, wait_ms / 1000)
        answer: dict[str, Any] = {"tx_id": tx_id, "status": status.status}
        if status.height is not None and status.index is not None:
            answer["height"] = status.height
            answer["index"] = status.index
            answer["result"] = node.app.results(status.height)[status.index].to_value()
        return answer

    @api.get("/v1/transactions/{tx_id}/proof")
    def transaction_proof(tx_id: str) -> dict[str, Any]:
        return node.tx_proof(hex64(tx_id, "tx_id")).to_value()

    @api.get("/", include_in_schema=False)
    def console() -> HTMLResponse:
        return HTMLResponse(CONSOLE_HTML)

    @api.get("/v1/blocks")
    def latest_blocks(limit: int = Query(20, ge=1, le=blocks_listed_max)) -> dict[str, Any]:
        tip = node.app.tip().height
        listed: list[dict[str, Any]] = []
        for height in range(tip, max(0, tip - limit), -1):
            found, block_hash, _ = node.block_with_hash(height)
            listed.append({"hash": block_hash, "header": found.header.to_value()})
        return {"height": tip, "blocks": listed}

    @api.get("/v1/blocks/{height}")
    def block(height: int) -> dict[str, Any]:
        if not 1 <= height <= _HEIGHT_MAX:
            raise XinchainError(f"expected a height from 1 to {_HEIGHT_MAX}", field="height")
        found, block_hash, certificate = node.block_with_hash(height)
        return {
            "hash": block_hash,
            "header": found.header.to_value(),
            "tx_ids": [node.app.tx_id_of_raw(raw) for raw in found.txs],
            "certificate": None if certificate is None else certificate.to_value(),
        }

    def notary_records(document_hash: str) -> tuple[list[dict[str, Any]], bool]:
        digest = bytes.fromhex(hex64(document_hash, "hash"))
        records, more = anchor_records(node.app, digest)
        if not records:
            raise NotFound(f"hash {document_hash} was never anchored", field="hash")
        return records, more

    @api.get("/v1/notary/{document_hash}")
    def notary_lookup(document_hash: str) -> dict[str, Any]:
        records, more = notary_records(document_hash)
        return {"hash": document_hash, "records": records, "more": more}

    @api.get("/v1/notary/{document_hash}/receipt")
    def notary_receipt(document_hash: str, record: int = Query(0, ge=0)) -> dict[str, Any]:
        records, _ = notary_records(document_hash)
        if record >= len(records):
            raise NotFound(f"hash has {len(records)} records", field="record")
        entry = records[record]
        proof = node.tx_proof(entry["tx_id"])
        digests = node.anchored_digests(entry["tx_id"])
        return build_receipts(proof, digests, [entry["position"]])[0]

    _provenance_routes(api, node)
    _promo_routes(api, node)
    copyright_routes(api, node)
    stream_routes(api, node)
    return api


def _promo_routes(api: FastAPI, node: Node) -> None:
    def public(entry: dict[str, Any], winners: int) -> dict[str, Any]:
        return {
            "rank": entry["rank"],
            "order_no": mask_order_number(entry["order_no"]),
            "buyer": entry["buyer_mask"],
            "paid_ms": entry["paid_ms"],
            "winner": entry["rank"] <= winners,
        }

    @api.get("/v1/promos/{promo_id}", tags=["promo"])
    def promo(promo_id: str) -> dict[str, Any]:
        return promotion(node.app, promo_id)

    @api.get("/v1/promos/{promo_id}/ranking", tags=["promo"])
    def promo_ranking(
        promo_id: str,
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        record = promotion(node.app, promo_id)
        entries = ranking(node.app, promo_id)
        return {
            "promo": promo_id,
            "final": record["closed"],
            "root": record["root"],
            "orders": len(entries),
            "winners": record["winners"],
            "entries": [public(e, record["winners"]) for e in entries[offset : offset + limit]],
        }

    @api.get("/v1/promos/{promo_id}/rank/{order_no}", tags=["promo"])
    def promo_rank(promo_id: str, order_no: str) -> dict[str, Any]:
        record = promotion(node.app, promo_id)
        entries = ranking(node.app, promo_id)
        position = rank_positions(node.app, promo_id).get(order_no)
        if position is None:
            raise NotFound(f"no order {order_no!r} in promotion {promo_id!r}", field="order_no")
        return {
            **public(entries[position], record["winners"]),
            "order_no": order_no,
            "final": record["closed"],
            "of": record["orders"],
        }

    @api.get("/v1/promos/{promo_id}/rank/{order_no}/receipt", tags=["promo"])
    def promo_rank_receipt(promo_id: str, order_no: str) -> dict[str, Any]:
        record = promotion(node.app, promo_id)
        if not record["closed"]:
            raise NotFound("the ranking is committed when the promotion closes", field="promo")
        committed = committed_ranking(node.app, promo_id)
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
    def promo_page(promo_id: str, request: Request, lang: str | None = None) -> str:
        """The public ranking page, with a "check my rank" form."""
        record = promotion(node.app, promo_id)
        entries = ranking(node.app, promo_id)[:ranking_page_rows_max]
        rows = [public(entry, record["winners"]) for entry in entries]
        chosen = language(request.headers.get("accept-language", ""), lang)
        return render_ranking(record, rows, chosen)


def _scan_url(request: Request, gtin: str, serial: str) -> str:
    return str(request.base_url).rstrip("/") + digital_link_path(gtin, serial)


def _provenance_routes(api: FastAPI, node: Node) -> None:
    @api.get("/01/{gtin}/21/{serial}", response_class=HTMLResponse, tags=["provenance"])
    def scan_page(gtin: str, serial: str, request: Request, lang: str | None = None) -> str:
        """The public page a shopper reaches by scanning an item's QR code."""
        view = item_view(node.app, check_gtin14(gtin), check_serial(serial))
        if view.registered:
            client = request.client.host if request.client else ""
            place = request.headers.get("x-scan-place", "") or ".".join(client.split(".")[:3])
            count_scan(node.app, view.epc, place[:64])
        return render(view, language(request.headers.get("accept-language", ""), lang))

    @api.get("/v1/provenance/items/{gtin}/{serial}", tags=["provenance"])
    def item(gtin: str, serial: str) -> dict[str, Any]:
        view = item_view(node.app, check_gtin14(gtin), check_serial(serial))
        if not view.registered:
            raise NotFound(f"{view.epc} was never commissioned", field="serial")
        return {
            "epc": view.epc,
            "product": view.product,
            "item": view.item,
            "steps": [
                {
                    "digest": step.digest,
                    "biz_step": step.event["biz_step"],
                    "recorded_by": step.recorded_by,
                    "height": step.height,
                    "via": step.via,
                    "event": step.document,
                }
                for step in view.steps
            ],
            "scans": view.scans,
            "places": view.places,
            "suspect": view.suspect,
            "flag": view.flag,
        }

    @api.get("/v1/provenance/items/{gtin}/{serial}/epcis", tags=["provenance"])
    def item_epcis(gtin: str, serial: str) -> Response:
        """The item's journey as an EPCIS 2.0 JSON-LD document."""
        view = item_view(node.app, check_gtin14(gtin), check_serial(serial))
        if not view.registered:
            raise NotFound(f"{view.epc} was never commissioned", field="serial")
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        document = export_document(
            [from_chain_event(step.event) for step in view.steps], creation_date=created
        )
        return Response(document, media_type="application/ld+json")

    @api.get("/v1/provenance/items/{gtin}/{serial}/qr.{kind}", tags=["provenance"])
    def item_qr(gtin: str, serial: str, kind: str, request: Request) -> Response:
        """The item's QR code: its GS1 Digital Link URL on this node, as PNG or SVG."""
        url = _scan_url(request, check_gtin14(gtin), check_serial(serial))
        if kind == "png":
            return Response(item_qr_png(url), media_type="image/png")
        if kind == "svg":
            return Response(item_qr_svg(url), media_type="image/svg+xml")
        raise XinchainError(f"expected png or svg, found {kind!r}", field="kind")

    @api.get("/v1/provenance/products/{gtin}/sheet.{kind}", tags=["provenance"])
    def product_sheet(
        gtin: str, kind: str, request: Request, limit: int = Query(100, ge=1, le=500)
    ) -> Response:
        """A printable sheet of the QR codes of the product's commissioned items (SVG, PNG or
        PDF), in serial order, at most `limit`."""
        checked = check_gtin14(gtin)
        serials = commissioned_serials(node.app, checked, limit)
        if not serials:
            raise NotFound(f"no item of GTIN {gtin} is commissioned", field="gtin")
        items = [(serial, _scan_url(request, checked, serial)) for serial in serials]
        if kind == "svg":
            return Response(sheet_svg(items), media_type="image/svg+xml")
        if kind == "png":
            return Response(sheet_png(items), media_type="image/png")
        if kind == "pdf":
            return Response(sheet_pdf(items), media_type="application/pdf")
        raise XinchainError(f"expected svg, png or pdf, found {kind!r}", field="kind")

    @api.get("/v1/provenance/brands/{org}/items", tags=["provenance"])
    def brand_items(org: str, limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
        """A brand's items and the last step of each, for the console."""
        listed: list[dict[str, Any]] = []
        for gtin in node.app.read_state("provenance", f"brand/{org}") or []:
            for serial in commissioned_serials(node.app, gtin, limit - len(listed)):
                view = item_view(node.app, gtin, serial)
                last = view.steps[-1] if view.steps else None
                listed.append(
                    {
                        "gtin": gtin,
                        "serial": serial,
                        "product": (view.product or {}).get("name", ""),
                        "last_step": last.event["biz_step"] if last else "",
                        "last_by": last.org_name if last else "",
                        "last_time_us": last.event["event_time_us"] if last else 0,
                        "scan_page": digital_link_path(gtin, serial),
                        "suspect": view.suspect,
                    }
                )
        return {"org": org, "items": listed}

    @api.get("/v1/provenance/products/{gtin}", tags=["provenance"])
    def product(gtin: str) -> dict[str, Any]:
        found = node.app.read_state("provenance", f"product/{check_gtin14(gtin)}")
        if found is None:
            raise NotFound(f"GTIN {gtin} is not registered", field="gtin")
        return dict(found)

    def event_record(digest: str) -> dict[str, Any]:
        record = node.app.read_state("provenance", f"event/{hex64(digest, 'digest')}")
        if record is None:
            raise NotFound(f"no event {digest}", field="digest")
        return dict(record)

    @api.get("/v1/provenance/events/{digest}", tags=["provenance"])
    def event(digest: str) -> dict[str, Any]:
        return event_record(digest)

    @api.get("/v1/provenance/events/{digest}/receipt", tags=["provenance"])
    def event_receipt(digest: str) -> dict[str, Any]:
        record = event_record(digest)
        events = node.recorded_events(record["tx_id"])
        digests = [node.suite.hash(codec.encode(value)) for value in events]
        proof = node.tx_proof(record["tx_id"])
        return build_receipts(proof, digests, [record["position"]], events)[0]
