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
from xinchain.apps.provenance.gs1 import (
    check_gtin14,
    check_serial,
    digital_link_path,
    digital_link_quote,
)
from xinchain.apps.provenance.keys import RESOLVER
from xinchain.apps.provenance.page import render, render_key
from xinchain.apps.provenance.qr import item_qr_png, item_qr_svg, sheet_pdf, sheet_png, sheet_svg
from xinchain.apps.provenance.scans import scans
from xinchain.apps.provenance.view import KeyView, Step, commissioned_serials, item_view, key_view
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
KEY_ID = Query(
    min_length=1,
    max_length=2000,
    description=(
        "what to look up, however an EPCIS document names it: an EPC URI "
        "(urn:epc:id:sscc:0614141.1234567890, urn:epc:class:lgtin:…) or a GS1 Digital Link URI "
        "(https://id.gs1.org/00/106141412345678908)"
    ),
)
LOT = described("the lot or batch number (GS1 AI 10)", '^[!"%-?A-Z_a-z]{1,20}$')
_CSET82 = '!"%-?A-Z_a-z'
# GS1 Digital Link primary keys other than the GTIN, each with a page at /{AI}/{key}: the key's
# syntax (GS1 General Specifications); check digits are checked by the route.
KEY_PAGE_PATTERNS = {
    "00": "^[0-9]{18}$",  # SSCC
    "8003": f"^0[0-9]{{13}}[{_CSET82}]{{0,16}}$",  # GRAI, serial optional
    "8004": f"^[{_CSET82}]{{1,30}}$",  # GIAI
    "8018": "^[0-9]{18}$",  # GSRN (recipient)
    "8017": "^[0-9]{18}$",  # GSRN (provider)
    "414": "^[0-9]{13}$",  # GLN of a location
    "417": "^[0-9]{13}$",  # GLN of a party
    "253": f"^[0-9]{{13}}[{_CSET82}]{{0,17}}$",  # GDTI
    "255": "^[0-9]{13,25}$",  # GCN
    "401": f"^[{_CSET82}]{{1,30}}$",  # GINC
    "402": "^[0-9]{17}$",  # GSIN
}


def step_json(step: Step) -> dict[str, Any]:
    return {
        "digest": step.digest,
        "biz_step": step.event["biz_step"],
        "recorded_by": step.recorded_by,
        "height": step.height,
        "via": step.via,
        "retracted_by": step.retracted_by,
        "declares": step.declares,
        "corrected_by": [
            {"event_id": event_id, "digest": digest} for event_id, digest in step.corrective
        ],
        "event": step.document,
    }


def _export(steps: list[Step]) -> Response:
    created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    document = export_document(
        [from_chain_event(step.event) for step in steps], creation_date=created
    )
    return Response(document, media_type="application/ld+json")


def _recorded(view: KeyView) -> KeyView:
    if not view.steps and not view.contents:
        raise NotFound(f"nothing is recorded for {view.key.uri}", field="id")
    return view


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
            "steps": [step_json(step) for step in view.steps],
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
        return _export(view.steps)

    @api.get("/v1/provenance/keys", tags=["provenance"])
    def key(id: str = KEY_ID) -> dict[str, Any]:
        """Any GS1 key (a lot, a case or pallet, an asset, a location) or other EPC: its
        canonical form, its events (its containers' included), where it is and what it holds."""
        view = _recorded(key_view(node.chain, id))
        return {
            "key": {
                "kind": view.key.kind,
                "uri": view.key.uri,
                "key": view.key.key,
                "serial": view.key.serial,
                "lot": view.key.lot,
                "extension": view.key.extension,
            },
            "container": view.container,
            "contents": view.contents,
            "steps": [step_json(step) for step in view.steps],
        }

    @api.get(
        "/v1/provenance/keys/epcis",
        tags=["provenance"],
        response_class=Response,
        responses=binary_answer("its events as an EPCIS 2.0 document", "application/ld+json"),
    )
    def key_epcis(id: str = KEY_ID) -> Response:
        """The events of any GS1 key or EPC as an EPCIS 2.0 JSON-LD document."""
        return _export(_recorded(key_view(node.chain, id)).steps)

    @api.get("/01/{gtin}/10/{lot}", response_class=HTMLResponse, tags=["provenance"])
    def lot_page(
        request: Request, gtin: str = GTIN, lot: str = LOT, lang: str | None = None
    ) -> str:
        """The public page of a lot: its events."""
        view = key_view(
            node.chain, f"{RESOLVER}/01/{check_gtin14(gtin)}/10/{digital_link_quote(lot)}"
        )
        return render_key(view, language(request.headers.get("accept-language", ""), lang))

    def key_page(ai: str) -> Any:
        what = f"the GS1 key of application identifier {ai}"
        value_param = described(what, KEY_PAGE_PATTERNS[ai])

        def page(request: Request, value: str = value_param, lang: str | None = None) -> str:
            view = key_view(node.chain, f"{RESOLVER}/{ai}/{digital_link_quote(value)}")
            return render_key(view, language(request.headers.get("accept-language", ""), lang))

        page.__doc__ = f"The public page of a GS1 key with application identifier {ai}."
        page.__name__ = f"key_page_{ai}"
        return page

    for ai in KEY_PAGE_PATTERNS:
        api.add_api_route(
            f"/{ai}/{{value}}", key_page(ai), response_class=HTMLResponse, tags=["provenance"]
        )

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
