"""What a node shows of an item: its journey, assembled from committed state, and its scans.

Reads only: the journey of an item is its own events plus the events of every container it
was in (an event on a case applies to what is inside it), in event-time order. Scans are
counted by the node off chain (node-local storage, not consensus state); a code scanned too
often or from too many places is a suspected copy, shown on the page and anchored on chain by
a node that may (see `FlagAnchorer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from xinchain.apps.provenance.contract import NAME, containers_of, event_entry
from xinchain.apps.provenance.keys import RESOLVER, Gs1Key, canonical, item_key
from xinchain.apps.provenance.scans import scans as scans_of
from xinchain.execution.chain import ChainStore

# A code scanned more often than this, or from more distinct places, is a suspected copy: a
# genuine tin is scanned by its buyer a few times, not by crowds in many cities.
scans_suspect_min = 50
places_suspect_min = 5
# Events shown for one item, its containers' included.
journey_events_max = 256


@dataclass(frozen=True)
class Step:
    digest: str
    event: dict[str, Any]
    document: dict[str, Any]  # the original EPCIS event
    recorded_by: str
    org_name: str
    height: int
    via: str  # "" for the item itself, else the container the event was about
    # When a later error declaration retracted this event: the declaration's digest, and the
    # corrective events it names as (eventID, digest on chain or "").
    retracted_by: str = ""
    corrective: tuple[tuple[str, str], ...] = ()
    # An error declaration: the digest of the event it retracts (shown on that event's step,
    # not as a step of its own; exported as it is).
    declares: str = ""


@dataclass(frozen=True)
class ItemView:
    epc: str
    gtin: str
    serial: str
    product: dict[str, Any] | None
    item: dict[str, Any] | None
    steps: list[Step]
    scans: int
    places: int
    flag: dict[str, Any] | None

    @property
    def registered(self) -> bool:
        return self.item is not None

    @property
    def suspect(self) -> bool:
        return (
            self.flag is not None
            or self.scans > scans_suspect_min
            or self.places > places_suspect_min
        )


def item_view(app: ChainStore, gtin: str, serial: str) -> ItemView:
    product = app.read_state(NAME, f"product/{gtin}")
    epc = item_key(gtin, serial)
    if product is not None:
        brand = app.read_state("governance", f"org/{product['brand']}") or {}
        product = {**product, "brand_name": brand.get("name", product["brand"])}
    item = app.read_state(NAME, f"item/{epc}")
    steps = journey(app, epc) if item is not None else []
    scans = scans_of(app).record(epc)
    return ItemView(
        epc=epc,
        gtin=gtin,
        serial=serial,
        product=product,
        item=item,
        steps=steps,
        scans=scans["count"],
        places=len(scans["places"]),
        flag=app.read_state(NAME, f"flag/{epc}"),
    )


def journey(app: ChainStore, epc: str) -> list[Step]:
    """The events of `epc` (a canonical key) and of the containers around it, in event time,
    error declarations included (`Step.declares`)."""

    def read(contract: str, key: str) -> Any:
        return app.read_state(contract, key)

    subjects = [epc, *containers_of(read, epc)]
    seen: set[str] = set()
    steps: list[Step] = []
    for subject in subjects:
        for _, digest in app.scan_state(NAME, event_entry(subject, 0)[:-10]):
            if len(steps) >= journey_events_max:
                break
            if digest in seen:
                continue
            seen.add(digest)
            record = app.read_state(NAME, f"event/{digest}")
            if record is None:
                continue
            steps.append(_step(app, digest, record, "" if subject == epc else subject))
    steps.sort(key=lambda step: (step.event["event_time_us"], step.height))
    return steps


def _step(app: ChainStore, digest: str, record: dict[str, Any], via: str) -> Step:
    org = app.read_state("governance", f"org/{record['recorded_by']}") or {}
    retracted_by = app.read_state(NAME, f"retracted/{digest}") or ""
    corrective: tuple[tuple[str, str], ...] = ()
    if retracted_by:
        declaration = app.read_state(NAME, f"event/{retracted_by}") or {}
        document = json.loads(declaration.get("event", {}).get("json", "{}"))
        ids = document.get("errorDeclaration", {}).get("correctiveEventIDs", [])
        corrective = tuple(
            (str(event_id), str((app.read_state(NAME, f"id/{event_id}") or [""])[-1]))
            for event_id in ids
        )
    return Step(
        digest=digest,
        event=record["event"],
        document=json.loads(record["event"]["json"]),
        recorded_by=record["recorded_by"],
        org_name=str(org.get("name", record["recorded_by"])),
        height=record["height"],
        via=via,
        retracted_by=str(retracted_by),
        corrective=corrective,
        declares=str(record.get("retracts", "")),
    )


@dataclass(frozen=True)
class KeyView:
    """Any GS1 key's page: a lot, a case or pallet, a returnable or fixed asset, a location."""

    key: Gs1Key
    steps: list[Step]
    container: str  # the container it is in now, or ""
    contents: list[str]  # what it holds now (canonical keys)


def key_view(app: ChainStore, uri: str, contents_shown_max: int = 1_000) -> KeyView:
    """The journey and the contents of whatever `uri` names (any spelling keys.py reads)."""
    key = canonical(uri)
    contents = app.read_state(NAME, f"has/{key.uri}") or []
    container = app.read_state(NAME, f"in/{key.uri}")
    return KeyView(
        key=key,
        steps=journey(app, key.uri),
        container=container if isinstance(container, str) else "",
        contents=list(contents[:contents_shown_max]),
    )


def commissioned_serials(app: ChainStore, gtin: str, limit: int) -> list[str]:
    """Serials of a product's commissioned items, in key order, at most `limit`."""
    product = app.read_state(NAME, f"product/{gtin}")
    if product is None or limit <= 0:
        return []
    stem = f"{RESOLVER}/01/{gtin}/21/"
    serials = []
    for _, record in app.scan_state(NAME, f"item/{stem}"):
        serials.append(str(record["serial"]))
        if len(serials) >= limit:
            break
    return serials


def suspects_to_anchor(app: ChainStore) -> list[tuple[str, dict[str, Any]]]:
    """Items this node counted as suspected copies that the chain has not flagged yet."""
    found = []
    for epc, record in scans_of(app).all():
        suspect = record["count"] > scans_suspect_min or len(record["places"]) > places_suspect_min
        if suspect and app.read_state(NAME, f"flag/{epc}") is None:
            found.append((epc, record))
    return found
