"""Genuine receipts of every kind, issued by a real node (api_harness) over its REST API.

One chain holds: a single notary anchor and a batch of three (files), a provenance event, the
entries of a closed promotion ranking, a registered work and a piece of evidence against it.
Shared by the receipt tests (forgeries, the independent verifier, the report).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from api_harness import Harness

from xinchain import codec
from xinchain.apps.copyright.features import LocalFeatures
from xinchain.apps.promo.contract import payment_skew_ms
from xinchain.apps.provenance.demo import FACTORY, demo_gtin, demo_item
from xinchain.apps.provenance.epcis import to_chain_event

SINGLE = b"bill of lading 2026-1101"
BATCH = [f"customs declaration {number}".encode() for number in range(3)]
PROMO = "double11-gift"
WORK_IMAGE = b"the registered photo's bytes"
WORK_SHA256 = hashlib.sha256(WORK_IMAGE).hexdigest()
FEATURED_SHA256 = hashlib.sha256(WORK_IMAGE + b" with features").hexdigest()
CAPTURE_NAME = "copy.jpg"
CAPTURE = b"the copy's bytes, as captured"
WORK_PDQ = "a5" * 32
COPY_PDQ = "a4" * 32


@dataclass(frozen=True)
class Issued:
    """A receipt as the node served it, and the file it proves (None for a record receipt)."""

    kind: str  # "file", "event", "entry", "work" or "evidence"
    receipt: dict[str, Any]
    document: bytes | None


def issue_every_kind(harness: Harness) -> dict[str, Issued]:
    """Record one of everything and fetch each receipt from the node's API."""
    issued = {"single": _file(harness, [SINGLE], SINGLE)}
    issued.update(
        {f"batch-{i}": _file(harness, BATCH if i == 0 else [], BATCH[i]) for i in range(3)}
    )
    issued["event"] = _event(harness)
    issued.update(_entries(harness))
    issued["work"], issued["evidence"] = _work_and_evidence(harness)
    issued["work-features"], issued["evidence-features"] = _work_with_features(harness)
    return issued


def _call(harness: Harness, sender: str, contract: str, method: str, args: Any) -> str:
    tx_id = harness.submit(harness.sign(contract, method, args, sender=sender))
    harness.commit()
    body = harness.get(f"/v1/transactions/{tx_id}").json()
    assert body["result"]["ok"], body
    return tx_id


def _served(harness: Harness, path: str) -> dict[str, Any]:
    response = harness.get(path)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _file(harness: Harness, anchor: list[bytes], document: bytes) -> Issued:
    if anchor:
        harness.anchor(anchor)
    return Issued("file", harness.receipt(document), document)


def _event(harness: Harness) -> Issued:
    _call(
        harness,
        "brand",
        "provenance",
        "register_product",
        {
            "gtin": demo_gtin(),
            "name": "Organic infant formula 800 g",
            "origin": "Zwolle",
            "company_prefix_digits": 7,
        },
    )
    event = to_chain_event(
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "eventTime": "2026-11-02T08:00:00+01:00",
            "eventTimeZoneOffset": "+01:00",
            "epcList": [demo_item().uri],
            "readPoint": {"id": FACTORY},
            "disposition": "active",
        }
    )
    _call(harness, "brand", "provenance", "record_events", {"events": [event]})
    digest = harness.suite.hash(codec.encode(event)).hex()
    return Issued("event", _served(harness, f"/v1/provenance/events/{digest}/receipt"), None)


def _entries(harness: Harness) -> dict[str, Issued]:
    now_ms = int(time.time() * 1000)
    window = {"starts_ms": now_ms - 60_000, "ends_ms": now_ms + 400}
    _call(
        harness,
        "brand",
        "promo",
        "open",
        {"promo": PROMO, "title": "First 2 buyers", "gift": "A tin", "winners": 2, **window},
    )
    orders = [
        {
            "order_no": f"100{i}",
            "paid_ms": now_ms - 10 * i,
            "buyer_hash": f"{i + 1}" * 64,
            "buyer_mask": f"c***{i}",
        }
        for i in range(2)
    ]
    _call(harness, "platform", "promo", "order", {"promo": PROMO, "orders": orders})
    # Closing waits out the grace after the window, on a clock moved on past it.
    harness.move_clock(window["ends_ms"] + payment_skew_ms - int(time.time() * 1000) + 100)
    _call(harness, "brand", "promo", "close", {"promo": PROMO})
    return {
        f"entry-{order['order_no']}": Issued(
            "entry",
            _served(harness, f"/v1/promos/{PROMO}/rank/{order['order_no']}/receipt"),
            None,
        )
        for order in orders
    }


def _work_with_features(harness: Harness) -> tuple[Issued, Issued]:
    """A work that carries its local features (ORB points), as clients register them now, and
    evidence (by the regulator) of a copy that shows two of its three points in place."""
    positions = np.array([[12.5, 40.0], [300.0625, 200.5], [511.0, 383.9375]], dtype=np.float32)
    descriptors = np.arange(3 * 32, dtype=np.uint8).reshape(3, 32)
    work = {
        "sha256": FEATURED_SHA256,
        "pdq": WORK_PDQ,
        "quality": 90,
        "crops": [],
        "features": LocalFeatures(512, 384, positions, descriptors).encode(),
        "title": "Tin, with its points",
        "seller": "",
    }
    _call(harness, "brand", "copyright", "register", {"works": [work]})
    evidence = {
        "work": FEATURED_SHA256,
        "url": "https://shop.example/item/10",
        "files": [{"name": CAPTURE_NAME, "sha256": hashlib.sha256(CAPTURE).hexdigest()}],
        "captured_ms": int(time.time() * 1000) - 1000,
        "copy_pdq": COPY_PDQ,
        "note": "a cropped copy, found by its points",
        "inliers": 2,
    }
    _call(harness, "regulator", "copyright", "evidence", evidence)
    evidence_id = _only_evidence_id(_served(harness, "/v1/copyright/orgs/regulator/evidence"))
    return (
        Issued("work", _served(harness, f"/v1/copyright/works/{FEATURED_SHA256}/receipt"), None),
        Issued("evidence", _served(harness, f"/v1/copyright/evidence/{evidence_id}/receipt"), None),
    )


def _work_and_evidence(harness: Harness) -> tuple[Issued, Issued]:
    work = {
        "sha256": WORK_SHA256,
        "pdq": WORK_PDQ,
        "quality": 100,
        "crops": [WORK_PDQ],
        "title": "Tin on a white table",
        "seller": "",
    }
    _call(harness, "brand", "copyright", "register", {"works": [work]})
    _call(
        harness,
        "brand",
        "copyright",
        "evidence",
        {
            "work": WORK_SHA256,
            "url": "https://shop.example/item/9",
            "files": [
                {"name": CAPTURE_NAME, "sha256": hashlib.sha256(CAPTURE).hexdigest()},
                {"name": "page.html", "sha256": "6" * 64},
            ],
            "captured_ms": int(time.time() * 1000) - 1000,
            "copy_pdq": COPY_PDQ,
            "note": "listing photo",
        },
    )
    evidence_ids = _served(harness, "/v1/copyright/orgs/brand/evidence")
    evidence_id = _only_evidence_id(evidence_ids)
    return (
        Issued("work", _served(harness, f"/v1/copyright/works/{WORK_SHA256}/receipt"), None),
        Issued("evidence", _served(harness, f"/v1/copyright/evidence/{evidence_id}/receipt"), None),
    )


def _only_evidence_id(listing: dict[str, Any]) -> str:
    items = next(value for value in listing.values() if isinstance(value, list))
    assert len(items) == 1, listing
    item = items[0]
    return str(item["id"] if isinstance(item, dict) else item)
