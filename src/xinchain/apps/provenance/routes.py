"""REST routes of provenance and the public scan page a shopper reaches by a QR code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from xinchain import codec
from xinchain.api.checks import (
    HEX64_PATTERN,
    IDENTIFIER_PATTERN,
    binary_answer,
    described,
    hex64,
    identifier,
)
from xinchain.apps.provenance.contract import NAME
from xinchain.apps.provenance.epcis import export_document, from_chain_event
from xinchain.apps.provenance.gs1 import check_gtin14, check_serial, digital_link_path
from xinchain.apps.provenance.page import render
from xinchain.apps.provenance.qr import item_qr_png, item_qr_svg, sheet_pdf, sheet_png, sheet_svg
from xinchain.apps.provenance.scans import scans
from xinchain.apps.provenance.view import commissioned_serials, item_view
from xinchain.errors import NotFound, XinchainError
from xinchain.node.node import Node
from xinchain.receipt import build_receipts
from xinchain.web.lang import language


def recorded_events(node: Node, tx_id: str) -> list[dict[str, Any]]:
    """The events a committed provenance transaction recorded, in its order."""
    body = node.committed_tx(tx_id).body
    if body.contract != NAME or body.method != "record_events":
        raise NotFound(f"transaction {tx_id} recorded no events", field="tx_id")
    return list(body.args["events"])


# QR codes one printable sheet holds, and a brand's items the console lists, at most.
sheet_codes_max = 500
brand_items_listed_max = 200


def _scan_url(request: Request, gtin: str, serial: str) -> str:
    return str(request.base_url).rstrip("/") + digital_link_path(gtin, serial)


# GS1's syntax for a GTIN-14 and a serial (AI 21: 1-20 characters of CSET 82), as the API
# description states it; the check digit is checked by the route.
GTIN = described("the GTIN-14 (14 digits, check digit last)", "^[0-9]{14}$")
SERIAL = described("the serial number (GS1 AI 21)", '^[!"%-?A-Z_a-z]{1,20}$')
ORG = described("the brand's org id", IDENTIFIER_PATTERN)
DIGEST = described("the event's hash", HEX64_PATTERN)
QR_KIND = described("the image format", enum=["png", "svg"])
SHEET_KIND = described("the sheet's format", enum=["svg", "png", "pdf"])


def provenance_routes(api: FastAPI, node: Node) -> None:
    @api.get("/01/{gtin}/21/{serial}", response_class=HTMLResponse, tags=["provenance"])
    def scan_page(
        request: Request, gtin: str = GTIN, serial: str = SERIAL, lang: str | None = None
    ) -> str:
        """The public page a shopper reaches by scanning an item's QR code."""
        view = item_view(node.chain, check_gtin14(gtin), check_serial(serial))
        if view.registered:
            client = request.client.host if request.client else ""
            place = request.headers.get("x-scan-place", "") or ".".join(client.split(".")[:3])
            scans(node.chain).count(view.epc, place[:64])  # in memory: no disk write here
        return render(view, language(request.headers.get("accept-language", ""), lang))

    @api.get("/v1/provenance/items/{gtin}/{serial}", tags=["provenance"])
    def item(gtin: str = GTIN, serial: str = SERIAL) -> dict[str, Any]:
        view = item_view(node.chain, check_gtin14(gtin), check_serial(serial))
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

    @api.get(
        "/v1/provenance/items/{gtin}/{serial}/epcis",
        tags=["provenance"],
        response_class=Response,
        responses=binary_answer(
            "the item's events as an EPCIS 2.0 document", "application/ld+json"
        ),
    )
    def item_epcis(gtin: str = GTIN, serial: str = SERIAL) -> Response:
        """The item's journey as an EPCIS 2.0 JSON-LD document."""
        view = item_view(node.chain, check_gtin14(gtin), check_serial(serial))
        if not view.registered:
            raise NotFound(f"{view.epc} was never commissioned", field="serial")
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        document = export_document(
            [from_chain_event(step.event) for step in view.steps], creation_date=created
        )
        return Response(document, media_type="application/ld+json")

    @api.get(
        "/v1/provenance/items/{gtin}/{serial}/qr.{kind}",
        tags=["provenance"],
        response_class=Response,
        responses=binary_answer("the QR code", "image/png", "image/svg+xml"),
    )
    def item_qr(
        request: Request, gtin: str = GTIN, serial: str = SERIAL, kind: str = QR_KIND
    ) -> Response:
        """The item's QR code: its GS1 Digital Link URL on this node, as PNG or SVG."""
        url = _scan_url(request, check_gtin14(gtin), check_serial(serial))
        if kind == "png":
            return Response(item_qr_png(url), media_type="image/png")
        if kind == "svg":
            return Response(item_qr_svg(url), media_type="image/svg+xml")
        raise XinchainError(f"expected png or svg, found {kind!r}", field="kind")

    @api.get(
        "/v1/provenance/products/{gtin}/sheet.{kind}",
        tags=["provenance"],
        response_class=Response,
        responses=binary_answer("the sheet", "image/svg+xml", "image/png", "application/pdf"),
    )
    def product_sheet(
        request: Request,
        gtin: str = GTIN,
        kind: str = SHEET_KIND,
        limit: int = Query(100, ge=1, le=sheet_codes_max),
    ) -> Response:
        """A printable sheet of the QR codes of the product's commissioned items (SVG, PNG or
        PDF), in serial order, at most `limit`."""
        checked = check_gtin14(gtin)
        serials = commissioned_serials(node.chain, checked, limit)
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
    def brand_items(
        org: str = ORG, limit: int = Query(50, ge=1, le=brand_items_listed_max)
    ) -> dict[str, Any]:
        """A brand's items and the last step of each, for the console."""
        identifier(org, "org")
        listed: list[dict[str, Any]] = []
        for gtin in node.chain.read_state(NAME, f"brand/{org}") or []:
            for serial in commissioned_serials(node.chain, gtin, limit - len(listed)):
                view = item_view(node.chain, gtin, serial)
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
    def product(gtin: str = GTIN) -> dict[str, Any]:
        found = node.chain.read_state(NAME, f"product/{check_gtin14(gtin)}")
        if found is None:
            raise NotFound(f"GTIN {gtin} is not registered", field="gtin")
        return dict(found)

    def event_record(digest: str) -> dict[str, Any]:
        record = node.chain.read_state(NAME, f"event/{hex64(digest, 'digest')}")
        if record is None:
            raise NotFound(f"no event {digest}", field="digest")
        return dict(record)

    @api.get("/v1/provenance/events/{digest}", tags=["provenance"])
    def event(digest: str = DIGEST) -> dict[str, Any]:
        return event_record(digest)

    @api.get("/v1/provenance/events/{digest}/receipt", tags=["provenance"])
    def event_receipt(digest: str = DIGEST) -> dict[str, Any]:
        record = event_record(digest)
        events = recorded_events(node, record["tx_id"])
        digests = [node.suite.hash(codec.encode(value)) for value in events]
        proof = node.tx_proof(record["tx_id"])
        return build_receipts(proof, digests, [record["position"]], events, "event")[0]
