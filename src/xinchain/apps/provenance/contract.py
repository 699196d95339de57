"""The provenance contract: products, serialized items and EPCIS 2.0 events on chain.

Model (GS1 EPCIS 2.0 / CBV 2.0):

* every identifier is read by its one canonical key (keys.py): an EPC URI and a GS1 Digital Link
  URI of the same item, case, lot or location are one thing on chain;
* a **product** is a GTIN registered by the brand org that owns it (name, origin, GS1 company
  prefix length, so that its SGTIN URIs can be derived);
* an **item** is an SGTIN, created by a commissioning event recorded by the product's brand:
  an ObjectEvent ADD (its epcList), a TransformationEvent (its outputs), an AggregationEvent or
  AssociationEvent ADD (parent and children); no other event may name an SGTIN that was never
  commissioned, and none is commissioned twice. Other keys (SSCC, GRAI, GIAI, lots, …) need no
  commissioning;
* an **event** is stored in its canonical on-chain form (epcis.py `to_chain_event`): the fields
  the chain indexes and checks, and the whole original event as canonical JSON text. The very
  same event recorded again is kept once;
* an **error declaration** (the event repeated with `errorDeclaration`) retracts the events of
  its sender under that eventID; a retracted commissioning event's items may be commissioned
  again by the corrective event;
* an **AggregationEvent** (ADD or OBSERVE) puts child EPCs inside a parent (a case, a pallet,
  an SSCC); DELETE takes them out (all of them when it names none). An event on a container
  applies to what is inside it when the journey of an item is read (view.py `journey`).

Who may write which event is configuration, not code: `config/step_roles` maps a bizStep to the
roles allowed to record it, set by governance (`set_config`), with `DEFAULT_STEP_ROLES` until
then: every CBV 2.0 step, and under `EXTENSION_STEPS` the steps outside CBV. Each transaction
records a batch of events; the result's data is the RFC 9162 root over the events' digests, so
each event gets its own receipt exactly like a notarized document.

State (key space ``provenance/``; `<key>` a canonical key): ``product/<gtin>``,
``item/<key>``, ``event/<digest>``, ``epc/<key> <n>`` (the digest of the n-th event naming an
instance or a class; ``epcs/<key>`` their count), ``in/<key>`` (its container), ``has/<key>``
(what a container holds), ``id/<eventID>`` (digests of the events under an eventID),
``retracted/<digest>`` (the error declaration that retracted it), ``brand/<org>`` (the brand's
GTINs), ``flag/<key>`` (a suspected copy), ``config/step_roles``.
"""

from __future__ import annotations

from typing import Any

from xinchain import codec
from xinchain.apps.provenance.epcis import (
    CUSTOMS_CLEARANCE_STEP,
    DELIVERING_STEP,
    EventParts,
    checked_event_parts,
)
from xinchain.apps.provenance.gs1 import check_gtin14
from xinchain.apps.provenance.keys import Gs1Key, canonical
from xinchain.contracts.base import CallContext, Contract, Handler, Setting, require_args
from xinchain.errors import ContractError, XinchainError
from xinchain.merkle import MerkleTree

NAME = "provenance"

# The roles that record supply-chain events; a bizStep outside CBV (an extension URI a brand's
# own system uses) may be recorded by any of them unless governance configures it.
BUSINESS_ROLES = ["brand", "logistics", "warehouse", "customs_broker", "platform"]
# The step_roles entry that governs bizSteps outside CBV 2.0 which no entry names.
EXTENSION_STEPS = "*"
# bizStep → roles allowed to record it: every CBV 2.0 business step, plus our own URIs for what
# CBV lacks, and the entry for extension steps.
DEFAULT_STEP_ROLES: dict[str, list[str]] = {
    "accepting": ["warehouse", "platform", "logistics"],
    "arriving": ["logistics", "warehouse"],
    "assembling": ["brand", "warehouse"],
    "collecting": ["logistics", "warehouse", "platform"],
    "commissioning": ["brand"],
    "consigning": ["brand", "logistics", "warehouse"],
    "creating_class_instance": ["brand"],
    "cycle_counting": ["warehouse", "platform"],
    "decommissioning": ["brand"],
    "departing": ["logistics", "warehouse"],
    "destroying": ["brand", "warehouse", "customs_broker"],
    "disassembling": ["brand", "warehouse"],
    "dispensing": ["platform", "warehouse"],
    "encoding": ["brand"],
    "entering_exiting": ["warehouse", "logistics", "customs_broker"],
    "holding": ["customs_broker", "warehouse"],
    "inspecting": ["customs_broker", "warehouse", "brand", "logistics", "regulator"],
    "installing": ["brand", "warehouse"],
    "killing": ["brand"],
    "loading": ["logistics", "warehouse"],
    "other": BUSINESS_ROLES,
    "packing": ["brand", "warehouse"],
    "picking": ["warehouse", "platform"],
    "receiving": ["logistics", "warehouse", "platform", "brand"],
    "removing": ["brand", "warehouse"],
    "repackaging": ["brand", "warehouse"],
    "repairing": ["brand", "warehouse"],
    "replacing": ["brand", "warehouse"],
    "reserving": ["warehouse", "platform", "brand"],
    "retail_selling": ["platform"],
    "sampling": ["brand", "customs_broker", "warehouse", "regulator"],
    "sensor_reporting": ["brand", "logistics", "warehouse", "customs_broker", "platform"],
    "shipping": ["logistics", "brand", "warehouse"],
    "staging_outbound": ["warehouse", "brand"],
    "stock_taking": ["warehouse", "platform"],
    "stocking": ["warehouse", "platform"],
    "storing": ["warehouse"],
    "transporting": ["logistics"],
    "unloading": ["logistics", "warehouse"],
    "unpacking": ["warehouse", "logistics", "platform"],
    "void_shipping": ["logistics", "brand", "warehouse"],
    CUSTOMS_CLEARANCE_STEP: ["customs_broker"],
    DELIVERING_STEP: ["platform", "logistics"],
    EXTENSION_STEPS: BUSINESS_ROLES,
}

# Events in one transaction: a document of a few hundred events is one transaction, and a block
# of several such transactions still executes in well under a second.
events_per_tx_max = 1_000
# Events kept per key: a journey has tens of steps, a cold-chain logger on a pallet reports
# every few minutes for weeks; each is one entry, so adding one costs the same at any count.
events_per_epc_max = 100_000
# Containers nest (item in case in pallet in container): deeper than this is refused.
nesting_depth_max = 8
# Instances one container holds at once (a pallet of small items holds a few thousand).
contents_max = 10_000
_EVENT_FIELDS = {
    "event_id",
    "type",
    "action",
    "biz_step",
    "disposition",
    "event_time_us",
    "epcs",
    "parent_id",
    "read_point",
    "biz_location",
    "customs_declaration",
    "json",
}
EVENT_TYPES = {
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "AssociationEvent",
    "TransactionEvent",
}


def event_digest(context_hash: Any, event: dict[str, Any]) -> bytes:
    return bytes(context_hash(codec.encode(event)))


def _step_roles_valid(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(step, str)
        and isinstance(roles, list)
        and all(isinstance(role, str) for role in roles)
        for step, roles in value.items()
    )


class Provenance(Contract):
    name = NAME

    def methods(self) -> dict[str, Handler]:
        return {
            "register_product": self.register_product,
            "record_events": self.record_events,
            "flag": self.flag,
        }

    def settings(self) -> dict[str, Setting]:
        return {
            "step_roles": Setting(
                "a map of bizStep to a list of role names", _step_roles_valid, DEFAULT_STEP_ROLES
            )
        }

    def roles(self) -> dict[str, frozenset[str]]:
        return {
            "register_product": frozenset({"brand"}),
            "flag": frozenset({"platform", "regulator"}),
        }

    def register_product(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"gtin", "name", "origin", "company_prefix_digits"})
        gtin = _checked(check_gtin14, args["gtin"], "args.gtin")
        for field in ("name", "origin"):
            if not isinstance(args[field], str) or not 1 <= len(args[field]) <= 200:
                raise ContractError("expected text of 1-200 characters", field=f"args.{field}")
        digits = args["company_prefix_digits"]
        if isinstance(digits, bool) or not isinstance(digits, int) or not 6 <= digits <= 12:
            raise ContractError("expected 6 to 12", field="args.company_prefix_digits")
        existing = context.read(NAME, f"product/{gtin}")
        if existing is not None and existing["brand"] != context.sender:
            raise ContractError(f"GTIN {gtin} belongs to {existing['brand']!r}", field="args.gtin")
        product = {
            "gtin": gtin,
            "name": args["name"],
            "origin": args["origin"],
            "brand": context.sender,
            "company_prefix_digits": digits,
        }
        context.write(NAME, f"product/{gtin}", product)
        if existing is None:
            gtins = context.read(NAME, f"brand/{context.sender}") or []
            context.write(NAME, f"brand/{context.sender}", [*gtins, gtin])
        return {"gtin": gtin}

    def record_events(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"events"})
        events = args["events"]
        if not isinstance(events, list) or not 1 <= len(events) <= events_per_tx_max:
            raise ContractError(
                f"expected a list of 1 to {events_per_tx_max} events", field="args.events"
            )
        step_roles = context.read(NAME, "config/step_roles") or DEFAULT_STEP_ROLES
        digests = []
        for index, event in enumerate(events):
            where = f"events[{index}]"
            try:
                _check_shape(event)
                parts = checked_event_parts(event)  # the indexed fields are what its JSON says
                self._authorize(context, event, step_roles)
                digest = event_digest(context.suite.hash, event)
                self._apply(context, event, parts, digest, index)
            except XinchainError as exc:
                label = event.get("event_id") if isinstance(event, dict) else None
                name = f"{where} ({label})" if label else where
                raise ContractError(f"{name}: {exc.reason}", field=exc.field or where) from exc
            digests.append(digest)
        root = MerkleTree(context.suite.hash, digests).root().hex()
        return {"root": root, "size": len(digests)}

    def flag(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        """Anchor a suspected copy: an item scanned too often or in too many places."""
        require_args(args, {"epc", "scans", "places"})
        epc = args["epc"]
        if not isinstance(epc, str) or context.read(NAME, f"item/{epc}") is None:
            raise ContractError("expected a commissioned item's EPC", field="args.epc")
        for field in ("scans", "places"):
            value = args[field]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ContractError("expected a count", field=f"args.{field}")
        flag = {
            "scans": args["scans"],
            "places": args["places"],
            "by": context.sender,
            "height": context.height,
            "time_ms": context.time_ms,
        }
        context.write(NAME, f"flag/{epc}", flag)
        return {"epc": epc, "flagged": True}

    # --- rules ---------------------------------------------------------------------------------

    def _authorize(
        self, context: CallContext, event: dict[str, Any], step_roles: dict[str, Any]
    ) -> None:
        step = event["biz_step"]
        allowed = step_roles.get(step)
        if allowed is None and (":" in step or not step):
            # a URI (an extension step, not a CBV word), or no bizStep at all (EPCIS 2.0 makes
            # it optional): the roles of extension steps
            allowed = step_roles.get(EXTENSION_STEPS)
        if allowed is None:
            raise ContractError(
                f"bizStep {step!r} is not configured for any role; governance configures "
                "provenance step_roles",
                field="bizStep",
            )
        if not context.sender_roles.intersection(allowed):
            raise ContractError(
                f"org {context.sender!r} (roles {sorted(context.sender_roles)}) may not record "
                f"{step!r}; that needs one of {sorted(allowed)}",
                field="bizStep",
            )

    def _apply(
        self,
        context: CallContext,
        event: dict[str, Any],
        parts: EventParts,
        digest: bytes,
        position: int,
    ) -> None:
        if context.read(NAME, f"event/{digest.hex()}") is not None:
            return  # the very same event again (a document sent twice): recorded once
        retracts = ""
        if parts.declaration is not None:
            retracts = self._declare_error(context, event, parts, digest)
        else:
            self._check_items(context, event, parts, digest)
            if event["event_id"]:
                self._note_event_id(context, event["event_id"], digest)
            if event["type"] == "AggregationEvent":
                self._aggregate(context, event)
        record = {
            "event": event,
            "recorded_by": context.sender,
            "height": context.height,
            "tx_id": context.tx_id,
            "position": position,
        }
        if retracts:
            record["retracts"] = retracts
        context.write(NAME, f"event/{digest.hex()}", record)
        parent = [event["parent_id"]] if event["parent_id"] else []
        for key in dict.fromkeys([*event["epcs"], *parent, *parts.classes]):
            count = context.read(NAME, f"epcs/{key}") or 0
            if count >= events_per_epc_max:
                raise ContractError(f"{key} already has {count} events", field="epcList")
            context.write(NAME, event_entry(key, count), digest.hex())
            context.write(NAME, f"epcs/{key}", count + 1)

    def _check_items(
        self, context: CallContext, event: dict[str, Any], parts: EventParts, digest: bytes
    ) -> None:
        """Serialised items (SGTINs) exist only once their brand commissions them: a
        commissioning event creates those it names as new (`EventParts.created`), every other
        mention needs them commissioned already."""
        created = set(parts.created)
        parent = [event["parent_id"]] if event["parent_id"] else []
        for uri in dict.fromkeys([*event["epcs"], *parent]):
            key = canonical(uri)
            if key.kind != "sgtin":
                continue
            if uri in created:
                self._commission(context, key, digest)
            elif context.read(NAME, f"item/{uri}") is None:
                raise ContractError(f"{uri} was never commissioned", field="epcList")

    def _note_event_id(self, context: CallContext, event_id: str, digest: bytes) -> None:
        """eventIDs are meant to be unique, but GS1's own examples reuse one for edited copies
        of an event; so an eventID lists every event recorded under it, and none is refused."""
        known = context.read(NAME, f"id/{event_id}") or []
        if len(known) >= events_per_epc_max:
            raise ContractError(f"eventID {event_id!r} names {len(known)} events", field="eventID")
        context.write(NAME, f"id/{event_id}", [*known, digest.hex()])

    def _declare_error(
        self, context: CallContext, event: dict[str, Any], parts: EventParts, digest: bytes
    ) -> str:
        """An error declaration (EPCIS 2.0: the event repeated with its eventID, plus
        `errorDeclaration`) retracts the events under that eventID that its sender recorded;
        another org's event it may not retract. Returns the first retracted digest, or "" when
        the chain holds no event under that eventID."""
        event_id = event["event_id"]
        known: list[str] = (context.read(NAME, f"id/{event_id}") or []) if event_id else []
        if not event_id and parts.original is not None:
            # No eventID: the event it repeats is found by its content.
            repeated = event_digest(context.suite.hash, parts.original).hex()
            if context.read(NAME, f"event/{repeated}") is not None:
                known = [repeated]
        if not known:
            return ""
        records = {digest_hex: context.read(NAME, f"event/{digest_hex}") for digest_hex in known}
        own = [d for d, record in records.items() if record["recorded_by"] == context.sender]
        if not own:
            recorders = sorted({record["recorded_by"] for record in records.values()})
            raise ContractError(
                f"event {event_id!r} was recorded by {', '.join(map(repr, recorders))}; only "
                "that org declares it in error",
                field="errorDeclaration",
            )
        open_ = [d for d in own if context.read(NAME, f"retracted/{d}") is None]
        if not open_:
            raise ContractError(f"event {event_id!r} is already declared in error", field="eventID")
        for retracted in open_:
            context.write(NAME, f"retracted/{retracted}", digest.hex())
        return open_[0]

    def _commission(self, context: CallContext, key: Gs1Key, digest: bytes) -> None:
        product = context.read(NAME, f"product/{key.key}")
        if product is None:
            raise ContractError(
                f"GTIN {key.key} is not a registered product; its brand registers it first",
                field="epcList",
            )
        if product["brand"] != context.sender:
            raise ContractError(
                f"only {product['brand']!r}, the brand of GTIN {key.key}, commissions it",
                field="epcList",
            )
        existing = context.read(NAME, f"item/{key.uri}")
        if existing is not None and not context.read(NAME, f"retracted/{existing['commissioned']}"):
            raise ContractError(f"{key.uri} is already commissioned", field="epcList")
        item = {
            "gtin": key.key,
            "serial": key.serial,
            "brand": context.sender,
            "commissioned": digest.hex(),
            "height": context.height,
        }
        context.write(NAME, f"item/{key.uri}", item)

    def _aggregate(self, context: CallContext, event: dict[str, Any]) -> None:
        parent = event["parent_id"]
        if not parent:
            if event["action"] == "OBSERVE":
                return  # children seen without their parent: no containment to record
            raise ContractError(
                "an AggregationEvent ADD or DELETE names its parentID", field="parentID"
            )
        around_parent = containers_of(context.read, parent)
        if len(around_parent) >= nesting_depth_max:
            raise ContractError(
                f"containers nest deeper than {nesting_depth_max}", field="parentID"
            )
        contents: list[str] = context.read(NAME, f"has/{parent}") or []
        if event["action"] == "DELETE":
            # No children named: everything is taken out of the parent (EPCIS 2.0 §7.4.3).
            leaving = event["epcs"] or contents
            for child in leaving:
                if context.read(NAME, f"in/{child}") == parent:
                    context.remove(NAME, f"in/{child}")
            remaining = [child for child in contents if child not in set(leaving)]
            self._write_contents(context, parent, remaining)
            return
        for child in event["epcs"]:
            if child == parent or child in around_parent:
                raise ContractError(f"{child} would contain itself", field="childEPCs")
            before = context.read(NAME, f"in/{child}")
            if before == parent:
                continue
            if isinstance(before, str):
                others = context.read(NAME, f"has/{before}") or []
                self._write_contents(context, before, [c for c in others if c != child])
            context.write(NAME, f"in/{child}", parent)
            contents.append(child)
        if len(contents) > contents_max:
            raise ContractError(
                f"{parent} would hold {len(contents)} items, more than {contents_max}",
                field="childEPCs",
            )
        self._write_contents(context, parent, contents)

    @staticmethod
    def _write_contents(context: CallContext, parent: str, contents: list[str]) -> None:
        if contents:
            context.write(NAME, f"has/{parent}", contents)
        elif context.read(NAME, f"has/{parent}") is not None:
            context.remove(NAME, f"has/{parent}")


def event_entry(key: str, position: int) -> str:
    """The state key of the `position`-th event naming `key`. A space never occurs in a key
    (URIs hold none), so the entries of one key never share a prefix with another key's."""
    return f"epc/{key} {position:010d}"


def containers_of(read: Any, epc: str) -> list[str]:
    """The containers around `epc`, innermost first; `read(contract, key)` reads state."""
    chain: list[str] = []
    current = read(NAME, f"in/{epc}")
    while isinstance(current, str) and len(chain) <= nesting_depth_max:
        chain.append(current)
        current = read(NAME, f"in/{current}")
    return chain


def _check_shape(event: object) -> None:
    if not isinstance(event, dict) or set(event) != _EVENT_FIELDS:
        found = sorted(event) if isinstance(event, dict) else type(event).__name__
        raise ContractError(f"expected the fields {sorted(_EVENT_FIELDS)}, found {found}")
    if event["type"] not in EVENT_TYPES:
        raise ContractError(f"unknown event type {event['type']!r}", field="type")
    if event["action"] not in ("", "ADD", "OBSERVE", "DELETE"):
        raise ContractError(f"unknown action {event['action']!r}", field="action")
    for name in _EVENT_FIELDS - {"event_time_us", "epcs"}:
        if not isinstance(event[name], str) or len(event[name]) > 1_000_000:
            raise ContractError("expected text", field=name)
    time_us = event["event_time_us"]
    if isinstance(time_us, bool) or not isinstance(time_us, int):
        raise ContractError("expected microseconds since the epoch", field="eventTime")
    epcs = event["epcs"]
    if not isinstance(epcs, list) or not all(isinstance(epc, str) for epc in epcs):
        raise ContractError("expected a list of EPC URIs", field="epcList")
    if not codec.is_text_model(event):
        raise ContractError("events hold text, integers and lists only")


def _checked(check: Any, value: object, field: str) -> Any:
    if not isinstance(value, str):
        raise ContractError("expected text", field=field)
    try:
        return check(value)
    except XinchainError as exc:
        raise ContractError(exc.reason, field=field) from exc
