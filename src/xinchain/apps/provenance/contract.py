"""The provenance contract: products, serialized items and EPCIS 2.0 events on chain.

Model (GS1 EPCIS 2.0 / CBV 2.0):

* a **product** is a GTIN registered by the brand org that owns it (name, origin, GS1 company
  prefix length, so that its SGTIN URIs can be derived);
* an **item** is an SGTIN, created by a `commissioning` ObjectEvent (action ADD) recorded by the
  product's brand; no other event may name an SGTIN that was never commissioned;
* an **event** is stored in its canonical on-chain form (epcis.py `to_chain_event`): the fields
  the chain indexes and checks, and the whole original event as canonical JSON text;
* an **AggregationEvent** (ADD or OBSERVE) puts child EPCs inside a parent (a case, a pallet,
  an SSCC); DELETE takes them out. An event on a container applies to what is inside it when
  the history of an item is read (`history_of`).

Who may write which event is configuration, not code: `config/step_roles` maps a bizStep to the
roles allowed to record it, set by governance (`set_config`), with `DEFAULT_STEP_ROLES` until
then. Each transaction records a batch of events; the result's data is the RFC 9162 root over
the events' digests, so each event gets its own receipt exactly like a notarized document.

State (key space ``provenance/``): ``product/<gtin>``, ``item/<sgtin>``, ``event/<digest>``,
``epc/<epc>`` (digests of the events naming an EPC, in order), ``in/<epc>`` (its container),
``brand/<org>`` (the brand's GTINs), ``flag/<epc>`` (a suspected copy), ``config/step_roles``.
"""

from __future__ import annotations

from typing import Any

from xinchain import codec
from xinchain.apps.provenance.epcis import (
    CUSTOMS_CLEARANCE_STEP,
    DELIVERING_STEP,
    check_chain_event,
)
from xinchain.apps.provenance.gs1 import Sgtin, check_gtin14, is_sgtin
from xinchain.contracts.base import CallContext, Contract, Handler, Setting, require_args
from xinchain.errors import ContractError, XinchainError
from xinchain.merkle import MerkleTree

NAME = "provenance"

# bizStep → roles allowed to record it. CBV words, plus our own URIs for what CBV lacks.
DEFAULT_STEP_ROLES: dict[str, list[str]] = {
    "commissioning": ["brand"],
    "packing": ["brand", "warehouse"],
    "unpacking": ["warehouse", "logistics"],
    "shipping": ["logistics", "brand", "warehouse"],
    "departing": ["logistics"],
    "arriving": ["logistics"],
    "transporting": ["logistics"],
    "loading": ["logistics", "warehouse"],
    "unloading": ["logistics", "warehouse"],
    "receiving": ["logistics", "warehouse", "platform"],
    "accepting": ["warehouse", "platform"],
    "inspecting": ["customs_broker", "warehouse", "brand"],
    "holding": ["customs_broker", "warehouse"],
    CUSTOMS_CLEARANCE_STEP: ["customs_broker"],
    "storing": ["warehouse"],
    "stocking": ["warehouse"],
    "picking": ["warehouse"],
    "staging_outbound": ["warehouse"],
    DELIVERING_STEP: ["platform", "logistics"],
    "retail_selling": ["platform"],
    "decommissioning": ["brand"],
}

# Events in one transaction: a document of a few hundred events is one transaction, and a block
# of several such transactions still executes in well under a second.
events_per_tx_max = 1_000
# Digests kept per EPC: a journey has tens of steps; thousands would be abuse.
events_per_epc_max = 512
# Containers nest (item in case in pallet in container): deeper than this is refused.
nesting_depth_max = 8
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
                check_chain_event(event)  # the indexed fields are what its own JSON says
                self._authorize(context, event, step_roles)
                digest = event_digest(context.suite.hash, event)
                self._apply(context, event, digest, index)
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
        if not step:
            raise ContractError("every event must name its bizStep", field="bizStep")
        allowed = step_roles.get(step)
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
        self, context: CallContext, event: dict[str, Any], digest: bytes, position: int
    ) -> None:
        commissioning = (
            event["biz_step"] == "commissioning"
            and event["type"] == "ObjectEvent"
            and event["action"] == "ADD"
        )
        for epc in event["epcs"]:
            if not is_sgtin(epc):
                continue
            if commissioning:
                self._commission(context, epc, digest)
            elif context.read(NAME, f"item/{epc}") is None:
                raise ContractError(f"{epc} was never commissioned", field="epcList")
        if event["type"] == "AggregationEvent":
            self._aggregate(context, event)
        record = {
            "event": event,
            "recorded_by": context.sender,
            "height": context.height,
            "tx_id": context.tx_id,
            "position": position,
        }
        context.write(NAME, f"event/{digest.hex()}", record)
        touched = [*event["epcs"], *([event["parent_id"]] if event["parent_id"] else [])]
        for epc in dict.fromkeys(touched):
            digests = context.read(NAME, f"epc/{epc}") or []
            if len(digests) >= events_per_epc_max:
                raise ContractError(f"{epc} already has {len(digests)} events", field="epcList")
            context.write(NAME, f"epc/{epc}", [*digests, digest.hex()])

    def _commission(self, context: CallContext, epc: str, digest: bytes) -> None:
        sgtin = _checked(Sgtin.parse, epc, "epcList")
        product = context.read(NAME, f"product/{sgtin.gtin}")
        if product is None:
            raise ContractError(
                f"GTIN {sgtin.gtin} is not a registered product; its brand registers it first",
                field="epcList",
            )
        if product["brand"] != context.sender:
            raise ContractError(
                f"only {product['brand']!r}, the brand of GTIN {sgtin.gtin}, commissions it",
                field="epcList",
            )
        if context.read(NAME, f"item/{epc}") is not None:
            raise ContractError(f"{epc} is already commissioned", field="epcList")
        item = {
            "gtin": sgtin.gtin,
            "serial": sgtin.serial,
            "brand": context.sender,
            "commissioned": digest.hex(),
            "height": context.height,
        }
        context.write(NAME, f"item/{epc}", item)

    def _aggregate(self, context: CallContext, event: dict[str, Any]) -> None:
        parent = event["parent_id"]
        if not parent:
            raise ContractError("an AggregationEvent names its parentID", field="parentID")
        around_parent = containers_of(context.read, parent)
        if len(around_parent) >= nesting_depth_max:
            raise ContractError(
                f"containers nest deeper than {nesting_depth_max}", field="parentID"
            )
        for child in event["epcs"]:
            if event["action"] == "DELETE":
                context.remove(NAME, f"in/{child}")
            elif child == parent or child in around_parent:
                raise ContractError(f"{child} would contain itself", field="childEPCs")
            else:
                context.write(NAME, f"in/{child}", parent)


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
