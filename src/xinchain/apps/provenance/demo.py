"""The demo journey `xinchain up` records: infant formula from a Dutch factory, through a
Hangzhou bonded warehouse, to a shopper. Every step is signed by the org entitled to it.

    brand       registers the product, commissions 12 tins, packs them into a case (SSCC)
    forwarder   ships the case from Rotterdam
    customs     clears the case at Hangzhou, with a customs declaration number
    warehouse   receives and stores the case in the bonded warehouse, unpacks it
    platform    delivers tin 0001 to the shopper

Running it again on a chain that already has the product does nothing.
"""

from __future__ import annotations

from typing import Any

from xinchain.apps.provenance.epcis import (
    CUSTOMS_CLEARANCE_STEP,
    CUSTOMS_DECLARATION_TYPE,
    DELIVERING_STEP,
    to_chain_event,
)
from xinchain.apps.provenance.gs1 import Sgtin, check_digit
from xinchain.client.sdk import Client
from xinchain.errors import XinchainError
from xinchain.node.home import Home

COMPANY_PREFIX = "8712345"
ITEM_REFERENCE = "067890"  # indicator digit 0, then item reference 67890
SERIALS = [f"{number:04d}" for number in range(1, 13)]
CASE = f"urn:epc:id:sscc:{COMPANY_PREFIX}.0000000001"
FACTORY = f"urn:epc:id:sgln:{COMPANY_PREFIX}.00001.0"
ROTTERDAM = "urn:epc:id:sgln:8712345.00002.0"
HANGZHOU_CUSTOMS = "urn:epc:id:sgln:6901234.00001.0"
HANGZHOU_WAREHOUSE = "urn:epc:id:sgln:6901234.00002.0"
SHOPPER_CITY = "urn:epc:id:sgln:6901234.00003.0"
DECLARATION = "urn:xinchain:customs-declaration:292420261000123456"


def demo_gtin() -> str:
    body = ITEM_REFERENCE[0] + COMPANY_PREFIX + ITEM_REFERENCE[1:]
    return body + check_digit(body)


def demo_item() -> Sgtin:
    return Sgtin(COMPANY_PREFIX, ITEM_REFERENCE, SERIALS[0])


def _event(
    kind: str,
    step: str,
    time: str,
    offset: str,
    *,
    epcs: list[str] | None = None,
    action: str = "OBSERVE",
    parent: str = "",
    place: str = "",
    disposition: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "action": action,
        "bizStep": step,
        "eventTime": time,
        "eventTimeZoneOffset": offset,
    }
    if kind == "AggregationEvent":
        event["parentID"] = parent
        event["childEPCs"] = epcs or []
    else:
        event["epcList"] = epcs or []
    if place:
        event["readPoint"] = {"id": place}
        event["bizLocation"] = {"id": place}
    if disposition:
        event["disposition"] = disposition
    event.update(extra or {})
    return event


def journey() -> list[tuple[str, list[dict[str, Any]]]]:
    """(org, events) in the order they happen."""
    items = [Sgtin(COMPANY_PREFIX, ITEM_REFERENCE, serial).uri for serial in SERIALS]
    return [
        (
            "brand",
            [
                _event("ObjectEvent", "commissioning", "2026-11-02T08:00:00+01:00", "+01:00",
                       epcs=items, action="ADD", place=FACTORY, disposition="active"),
                _event("AggregationEvent", "packing", "2026-11-02T10:30:00+01:00", "+01:00",
                       epcs=items, action="ADD", parent=CASE, place=FACTORY,
                       disposition="container_closed"),
            ],
        ),
        (
            "forwarder",
            [_event("ObjectEvent", "shipping", "2026-11-03T09:00:00+01:00", "+01:00",
                    epcs=[CASE], place=ROTTERDAM, disposition="in_transit")],
        ),
        (
            "customs",
            [
                _event("ObjectEvent", CUSTOMS_CLEARANCE_STEP, "2026-11-09T14:20:00+08:00",
                       "+08:00", epcs=[CASE], place=HANGZHOU_CUSTOMS,
                       extra={"bizTransactionList": [
                           {"type": CUSTOMS_DECLARATION_TYPE, "bizTransaction": DECLARATION}
                       ]}),
            ],
        ),
        (
            "warehouse",
            [
                _event("ObjectEvent", "receiving", "2026-11-09T18:05:00+08:00", "+08:00",
                       epcs=[CASE], place=HANGZHOU_WAREHOUSE, disposition="in_progress"),
                _event("ObjectEvent", "storing", "2026-11-09T18:40:00+08:00", "+08:00",
                       epcs=[CASE], place=HANGZHOU_WAREHOUSE,
                       disposition="sellable_not_accessible"),
            ],
        ),
        (
            "platform",
            [_event("ObjectEvent", DELIVERING_STEP, "2026-11-12T15:30:00+08:00", "+08:00",
                    epcs=[items[0]], place=SHOPPER_CITY, disposition="sellable_accessible")],
        ),
    ]  # fmt: skip


def seed_demo(home: Home, api_url: str) -> str:
    """Record the demo journey (once) and return the path of the demo item's scan page."""
    path = demo_item().digital_link_path
    with Client(api_url) as client:
        try:
            client.product(demo_gtin())
            return path  # already recorded on this chain
        except XinchainError:
            pass  # not there yet: record it
        genesis = client.genesis()

        def call(org: str, method: str, args: dict[str, Any]) -> None:
            key = home.org_key(genesis.suite, org)
            client.call(genesis, key, sender=org, contract="provenance", method=method, args=args)

        call(
            "brand",
            "register_product",
            {
                "gtin": demo_gtin(),
                "name": "Organic infant formula 800 g / 有机婴儿配方奶粉 800克",
                "origin": "Zwolle, the Netherlands / 荷兰 兹沃勒",
                "company_prefix_digits": len(COMPANY_PREFIX),
            },
        )
        for org, events in journey():
            call(org, "record_events", {"events": [to_chain_event(e) for e in events]})
    return path
