"""GS1 EPCIS 2.0 JSON-LD documents: validation, the canonical on-chain event form, and export.

Import path: `parse_document(text)` reads the JSON (every non-integer number as a `Decimal`,
never a float), validates the document against GS1's EPCIS 2.0 JSON schema and against the
rules the schema lacks (below), and returns its events; `to_chain_event(event)` turns one event
into the value the provenance contract stores; `document_events_to_chain(text)` does both.
Export path: `from_chain_event(value)` gives the EPCIS event back, and `export_document(events,
creation_date=...)` writes an EPCIS 2.0 document that validates against the same schema.

**The schema** is GS1's published `EPCIS-JSON-Schema.json` (draft-07, self-contained), held
byte for byte in `gs1data/` with its source (gs1/EPCIS at a named commit, gs1data/SOURCE.md).
It is pinned by its sha256: every node must judge a document the same way. fastjsonschema
decides whether a document is valid (about 18,000 events/s); only when it is not does
jsonschema run again to find the most useful error message.

**Rules the schema lacks**, checked here: `eventTime` is strict RFC 3339 with no leap second
(the chain orders events by UTC microsecond); every GS1 key, as an EPC URI or a Digital Link
URI, is well formed with its check digit (keys.py); numbers fit what EPCIS consumers hold
(decimals of at most 17 significant digits, as a double is written, integers of 64 bits);
text is valid Unicode; a JSON object names each key once; at most one customs declaration
number per event.

**The on-chain form** (`to_chain_event`) lies in the codec's text data model: the fields the
contract indexes and checks (each identifier by its canonical key, keys.py; a bizStep or
disposition written as its full CBV URI by its bare word), plus the whole original event as
canonical JSON text (sorted keys, no spaces, numbers as canonical decimal text: `200.50` is
written `200.5`, `10.0` is `10`). The indexed fields are a pure function of that text, so
`check_chain_event` can re-derive them.

Customs clearance and delivery to the shopper have no CBV bizStep, and customs declarations no
CBV bizTransaction type, so xinchain names them with its own URIs (EPCIS 2.0 allows any URI
there): `CUSTOMS_CLEARANCE_STEP`, `DELIVERING_STEP`, `CUSTOMS_DECLARATION_TYPE`.
See docs: GS1 EPCIS 2.0 §7 (JSON/JSON-LD binding), CBV 2.0, and the research memo for issue 4.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, NoReturn

import fastjsonschema
import jsonschema  # type: ignore[import-untyped]

from xinchain.apps.provenance.gs1 import InvalidIdentifier
from xinchain.apps.provenance.keys import canonical
from xinchain.errors import ConfigError, XinchainError

CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"
# xinchain's private vocabulary (CBV 2.0 has no customs clearance, delivery or declaration).
CUSTOMS_CLEARANCE_STEP = "urn:xinchain:bizstep:customs_clearance"
DELIVERING_STEP = "urn:xinchain:bizstep:delivering"
CUSTOMS_DECLARATION_TYPE = "urn:xinchain:btt:customs_declaration"
# An event may instead carry its declaration number in this extension field; the document's
# @context then maps the prefix, for example {"xinchain": XINCHAIN_NAMESPACE}.
CUSTOMS_DECLARATION_FIELD = "xinchain:customsDeclaration"
XINCHAIN_NAMESPACE = "urn:xinchain:"

SCHEMA_PATH_ENV = "XINCHAIN_EPCIS_SCHEMA"
GS1_DATA = Path(__file__).resolve().parent / "gs1data"
# gs1/EPCIS commit 2b888befbc071e1c2d388e027b30149b3f51dcef, EPCIS-JSON-Schema.json.
SCHEMA_SHA256 = "ed3228d7867198b4a5be9748fe77f473457c6ed98224fab28a950b4ce634a041"

# A document larger than this is refused before parsing: 64 MiB holds about 50,000 typical
# events; a bigger import is split into several documents.
document_chars_max = 64 * 1024 * 1024
# One event's canonical JSON text: real events are well under 2 KB and a sensor event with
# hundreds of readings stays under this; more would crowd a 1 MiB transaction.
event_json_chars_max = 64 * 1024
# EPCIS events nest a handful of levels (sensorElementList → sensorReport → …); deeper nesting
# is refused so that no recursion here can be driven to the interpreter's limit.
nesting_depth_max = 32
# Other EPCIS tools read JSON numbers as IEEE doubles; a double is written back in at most 17
# significant digits (0.1 + 0.2 prints as 0.30000000000000004), so exports of such tools carry
# up to 17 and are accepted as written; the exponent bound keeps canonical plain-digit text
# short (`1e999999999` would otherwise be a gigabyte of zeros).
decimal_significant_digits_max = 17
# Magnitudes a double holds; canonical text writes plain digits up to 1E±15 and an exponent
# beyond (plain digits would read back as integers beyond 64 bits).
decimal_exponent_abs_max = 308
plain_exponent_abs_max = 15
# Integers beyond 64 bits fit no consumer's integer type (nor the codec's).
integer_min = -(2**63)
integer_max = 2**64 - 1  # unsigned 64-bit counters too
# A JSON integer literal longer than this cannot lie within 64 bits (sign plus 19 digits).
integer_chars_max = 20
# Schema errors examined to pick the best message, and the length of one reason.
schema_errors_examined_max = 1_000
reason_chars_max = 400

_EPC_LIST_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LIST_FIELDS = (
    "quantityList",
    "childQuantityList",
    "inputQuantityList",
    "outputQuantityList",
)
# Canonical keys of GTINs: with /21/ an item, otherwise a class (a product, a lot).
_CLASS_STEMS = ("https://id.gs1.org/01/",)
# CBV terms as EPCIS 1.x wrote them, which GS1's 2.0 schema refuses.
_EPCIS_1_CBV = ("urn:epcglobal:cbv:", "http://ns.gs1.org/cbv/", "https://ns.gs1.org/cbv/")
# A CBV term's bare word: lower case letters and underscores.
_CBV_WORD = re.compile(r"[a-z][a-z_]*", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# RFC 3339 §5.6 date-time; `re.ASCII` so that \d is 0-9 only.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


class EpcisInvalid(XinchainError):
    """An EPCIS document or event that cannot be accepted. `event_index` and `event_id` name
    the event (when the fault lies inside one), `field` its JSON path inside that event."""

    code = "epcis_invalid"

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        event_index: int | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(reason, field=field)
        self.event_index = event_index
        self.event_id = event_id
        self.args = (_describe(reason, field, event_index, event_id),)

    def in_event(self, index: int, event: object) -> EpcisInvalid:
        """The same failure, placed in event `index` of a document."""
        event_id = event.get("eventID") if isinstance(event, dict) else None
        return EpcisInvalid(
            self.reason,
            field=self.field,
            event_index=index,
            event_id=event_id if isinstance(event_id, str) else None,
        )

    def as_dict(self) -> dict[str, str]:
        body = super().as_dict()
        if self.event_index is not None:
            body["event"] = str(self.event_index)
        if self.event_id is not None:
            body["event_id"] = self.event_id
        return body


def _describe(reason: str, field: str | None, event_index: int | None, event_id: str | None) -> str:
    where = []
    if event_index is not None:
        where.append(f"event {event_index}" + (f" ({event_id})" if event_id else ""))
    if field is not None:
        where.append(f"field {field}")
    return f"{', '.join(where)}: {reason}" if where else reason


# --- the schema ----------------------------------------------------------------------------------


def schema_path() -> Path:
    """Where GS1's EPCIS 2.0 JSON schema is read from: `$XINCHAIN_EPCIS_SCHEMA`, else the copy
    in gs1data/."""
    override = os.environ.get(SCHEMA_PATH_ENV)
    if override:
        return Path(override)
    return GS1_DATA / "EPCIS-JSON-Schema.json"


# RFC 3986 §3.1: a scheme is a letter, then letters, digits, "+", "-" or "."; fastjsonschema's
# own "uri" check allows only word characters there, refusing `x-erp://…` and extension names
# such as `acme-ext:batchNote` that GS1's schema and JSON-LD accept.
_URI_FORMAT = r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+\Z"


class _Validators:
    def __init__(self, schema: dict[str, Any]) -> None:
        # use_default=False: fastjsonschema would otherwise write schema defaults into the data.
        self.fast: Callable[[Any], Any] = fastjsonschema.compile(
            schema, use_default=False, formats={"uri": _URI_FORMAT}
        )
        validator_class = jsonschema.Draft7Validator
        self.detailed = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def _validators() -> _Validators:
    return _load_validators(str(schema_path()))


@lru_cache(maxsize=4)
def _load_validators(path: str) -> _Validators:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"the EPCIS 2.0 JSON schema is missing at {path} ({exc.strerror}); it ships in "
            f"xinchain/apps/provenance/gs1data, or set {SCHEMA_PATH_ENV} to a copy of it"
        ) from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SCHEMA_SHA256:
        raise ConfigError(
            f"the EPCIS 2.0 JSON schema at {path} has sha256 {digest}, expected {SCHEMA_SHA256} "
            "(GS1's EPCIS-JSON-Schema.json, gs1data/SOURCE.md)"
        )
    return _Validators(json.loads(raw))


# --- reading JSON --------------------------------------------------------------------------------


def _refuse_constant(name: str) -> NoReturn:
    raise EpcisInvalid(f"{name} is not a JSON number; EPCIS numbers are finite decimals")


def _parse_decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what a decimal can hold (11E1111111111111111111)
        raise EpcisInvalid(f"the number {_short(text)} lies beyond any decimal's range") from None


def _parse_integer(text: str) -> int:
    if len(text) > integer_chars_max:
        raise EpcisInvalid(f"the integer {text[:24]}… lies outside 64 bits")
    return int(text)


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EpcisInvalid(f"the key {key!r} appears twice in one JSON object")
            seen.add(key)
    return value


def _parse_json(text: str, field: str | None = None) -> Any:
    """JSON with every non-integer number as a Decimal; no floats, NaN or duplicate keys."""
    if not isinstance(text, str):
        raise EpcisInvalid(f"expected JSON text, found {type(text).__name__}", field=field)
    text = text.removeprefix("\ufeff")  # a byte-order mark, as .NET writes (RFC 8259 §8.1)
    if len(text) > document_chars_max:
        raise EpcisInvalid(
            f"the text has {len(text)} characters, more than {document_chars_max}; "
            "split it into several documents",
            field=field,
        )
    try:
        return json.loads(
            text,
            parse_float=_parse_decimal,
            parse_int=_parse_integer,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except EpcisInvalid as exc:
        raise EpcisInvalid(exc.reason, field=field) from None
    except json.JSONDecodeError as exc:
        raise EpcisInvalid(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field=field
        ) from None
    except RecursionError:
        raise EpcisInvalid(
            "not JSON this program reads: it nests too deeply", field=field
        ) from None


# --- validation ----------------------------------------------------------------------------------


def validate_document(value: object) -> None:
    """Raise `EpcisInvalid` unless `value` (JSON parsed with Decimal numbers) is a valid EPCIS
    2.0 EPCISDocument whose events all convert to the on-chain form."""
    _document_chain_events(value)


def validate_event(event: object) -> None:
    """Validate one event as it would be inside a document (schema and semantic rules)."""
    validate_document(_document_of([event], creation_date="1970-01-01T00:00:00Z"))


def parse_document(text: str) -> list[dict[str, Any]]:
    """Parse and validate an EPCIS 2.0 JSON-LD document; return its events, each carrying the
    document's @context terms it uses (`with_context`)."""
    document = _parse_json(text)
    validate_document(document)
    declared = context_terms(document.get("@context"))
    return [with_context(event, declared) for event in document["epcisBody"]["eventList"]]


def document_events_to_chain(text: str) -> list[dict[str, Any]]:
    """Parse and validate an EPCIS 2.0 JSON-LD document; return its events in on-chain form."""
    return _document_chain_events(_parse_json(text))


def _document_chain_events(document: object) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        raise EpcisInvalid(
            "expected an EPCISDocument (a JSON object with type 'EPCISDocument'), "
            f"found a JSON {_json_kind(document)}"
        )
    if document.get("type") != "EPCISDocument":
        raise EpcisInvalid(
            f"expected type 'EPCISDocument', found {document.get('type')!r}", field="type"
        )
    _check_schema(document)
    declared = context_terms(document.get("@context"))
    chain_events = []
    for index, event in enumerate(document["epcisBody"]["eventList"]):
        try:
            chain_events.append(to_chain_event(with_context(event, declared)))
        except EpcisInvalid as exc:
            raise exc.in_event(index, event) from None
    return chain_events


def _check_schema(document: dict[str, Any]) -> None:
    validators = _validators()
    try:
        validators.fast(document)
    except fastjsonschema.JsonSchemaValueException as fast_error:
        detailed = _detailed_error(validators.detailed, document)
        raise (detailed or _from_fast_error(fast_error, document)) from None


def _detailed_error(validator: Any, document: dict[str, Any]) -> EpcisInvalid | None:
    """The most useful jsonschema error, in the first event that has one."""
    errors = list(itertools.islice(validator.iter_errors(document), schema_errors_examined_max))
    if not errors:
        return None
    first_place = min(_event_index(list(error.absolute_path)) for error in errors)
    in_place = [e for e in errors if _event_index(list(e.absolute_path)) == first_place]
    best = jsonschema.exceptions.best_match(in_place)
    return _error_at(list(best.absolute_path), *_leaf_field_and_reason(best), document)


def _event_index(path: list[Any]) -> int:
    """Index of the event a document path lies in; -1 (sorting first) for the document."""
    in_event = len(path) >= 3 and path[:2] == ["epcisBody", "eventList"]
    return path[2] if in_event and isinstance(path[2], int) else -1


def _leaf_field_and_reason(error: Any) -> tuple[list[Any], str]:
    """Walk anyOf/oneOf context down to the leaves at the deepest field; name field and reason.

    Returns the path below `error`'s own path and the reason text."""
    base = len(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:
        name = error.instance
        return [name], (
            f"unknown field {name!r}: not a field of this EPCIS structure, and an extension "
            f"field must be a prefixed name declared in @context (for example 'example:{name}')"
        )
    leaves = list(_leaves(error))
    depth = max(len(leaf.absolute_path) for leaf in leaves)
    deepest = [leaf for leaf in leaves if len(leaf.absolute_path) == depth]
    below = list(deepest[0].absolute_path)[base:]
    literals = [_anchored_literal(leaf) for leaf in deepest]
    if len(deepest) > 1 and all(literals):
        allowed = ", ".join(repr(literal) for literal in dict.fromkeys(literals))
        return below, f"{_short(repr(deepest[0].instance))} is not one of {allowed}"
    instance = deepest[0].instance
    if isinstance(instance, str) and instance.startswith(_EPCIS_1_CBV):
        return below, (
            f"{_short(repr(instance))} is a CBV term in its EPCIS 1.x spelling; EPCIS 2.0 writes "
            "a bare word (shipping, in_transit) or a https://ref.gs1.org/cbv/ URI "
            "(https://ref.gs1.org/cbv/BizStep-shipping)"
        )
    reasons = list(dict.fromkeys(_leaf_reason(leaf) for leaf in deepest))
    if len(deepest) == 1 and deepest[0].validator == "required":
        missing = [name for name in deepest[0].validator_value if name not in deepest[0].instance]
        below += missing[:1]
    return below, " or ".join(reasons)


def _leaves(error: Any) -> Iterator[Any]:
    if not error.context:
        yield error
        return
    for child in error.context:
        yield from _leaves(child)


def _anchored_literal(error: Any) -> str | None:
    """The word a `pattern` error's pattern `^WORD$` allows (the schema spells enums so)."""
    if error.validator != "pattern":
        return None
    match = re.fullmatch(r"\^(\w+)\$", error.validator_value)
    return match[1] if match else None


def _leaf_reason(error: Any) -> str:
    if error.validator == "format" and isinstance(error.instance, str):
        if error.validator_value == "date-time":
            try:
                event_time_us(error.instance)
            except EpcisInvalid as exc:
                return exc.reason
        return f"{_short(repr(error.instance))} is not a valid {error.validator_value}"
    if error.validator == "enum" and len(error.validator_value) > 6:
        shown = ", ".join(repr(value) for value in error.validator_value[:6])
        return (
            f"{_short(repr(error.instance))} is not one of the "
            f"{len(error.validator_value)} allowed values ({shown}, …)"
        )
    if error.validator == "type":
        return f"expected {error.validator_value}, found {_short(repr(error.instance))}"
    return str(error.message)


def _from_fast_error(
    error: fastjsonschema.JsonSchemaValueException, document: dict[str, Any]
) -> EpcisInvalid:
    path: list[Any] = [int(part) if part.isdigit() else part for part in (error.path or [])[1:]]
    reason = error.message
    if error.name and reason.startswith(error.name):
        reason = reason[len(error.name) :].strip()
    return _error_at(path, [], reason, document)


def _error_at(
    path: list[Any], below: list[Any], reason: str, document: dict[str, Any]
) -> EpcisInvalid:
    full = path + below
    index = _event_index(full)
    if index < 0:
        return EpcisInvalid(_short(reason), field=_json_path(full) or None)
    error = EpcisInvalid(_short(reason), field=_json_path(full[3:]) or None)
    return error.in_event(index, document["epcisBody"]["eventList"][index])


def _json_path(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(text: str) -> str:
    return text if len(text) <= reason_chars_max else text[: reason_chars_max - 1] + "…"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "boolean" if isinstance(value, bool) else "number"


# --- the on-chain form ---------------------------------------------------------------------------


def to_chain_event(event: object) -> dict[str, Any]:
    """The on-chain form of one EPCIS event (parsed with Decimal numbers), checking the rules
    the schema lacks. Raises `EpcisInvalid` naming the field and the reason."""
    if not isinstance(event, dict):
        raise EpcisInvalid(f"expected an EPCIS event (a JSON object), found {_json_kind(event)}")
    text = canonical_json(event)
    if len(text) > event_json_chars_max:
        raise EpcisInvalid(
            f"the event is {len(text)} characters of canonical JSON, more than "
            f"{event_json_chars_max}"
        )
    event_type = _text(event, "type")
    if not event_type:
        raise EpcisInvalid("every event names its type", field="type")
    if "eventTime" not in event:
        raise EpcisInvalid("every event has an eventTime", field="eventTime")
    event_classes(event)  # a quantity list names classes, never one serialised item
    return {
        "event_id": _event_id(event),
        "type": event_type,
        "action": _text(event, "action"),
        "biz_step": _cbv_term(event, "bizStep", "BizStep"),
        "disposition": _cbv_term(event, "disposition", "Disp"),
        "event_time_us": event_time_us(_text(event, "eventTime")),
        "epcs": _instance_epcs(event),
        "parent_id": _checked_epc(_text(event, "parentID"), "parentID"),
        "read_point": _location(event, "readPoint"),
        "biz_location": _location(event, "bizLocation"),
        "customs_declaration": _customs_declaration(event),
        "json": text,
    }


def from_chain_event(value: object) -> dict[str, Any]:
    """The EPCIS event an on-chain event holds (numbers as int or Decimal)."""
    if not isinstance(value, dict) or not isinstance(value.get("json"), str):
        raise EpcisInvalid("expected an on-chain event with its JSON text", field="json")
    event = _parse_json(value["json"], field="json")
    if not isinstance(event, dict):
        raise EpcisInvalid(f"expected a JSON object, found {_json_kind(event)}", field="json")
    return event


def check_chain_event(value: object) -> dict[str, Any]:
    """Return `value` if it is exactly the on-chain form of a valid event, else raise
    `EpcisInvalid`: its indexed fields must be what its own JSON text says. For a contract
    that must not trust a client's conversion."""
    return _checked_chain_event(value)[1]


def checked_event_parts(value: object) -> EventParts:
    """`check_chain_event`, then the event's `EventParts` (one parse of its JSON text)."""
    return event_parts(_checked_chain_event(value)[0])


def _checked_chain_event(value: object) -> tuple[dict[str, Any], dict[str, Any]]:
    event = from_chain_event(value)
    validate_event(event)
    expected = to_chain_event(event)
    given: dict[str, Any] = value if isinstance(value, dict) else {}
    if given != expected:
        keys = expected.keys() | given.keys()
        differing = sorted(key for key in keys if given.get(key) != expected.get(key))
        raise EpcisInvalid(
            "the indexed fields do not match the event's own JSON text "
            f"(differing: {', '.join(differing)})",
            field=differing[0],
        )
    return event, expected


def event_time_us(text: str, field: str = "eventTime") -> int:
    """UTC microseconds since 1970 of an RFC 3339 date-time, a finer fraction truncated;
    refuses leap seconds (no instant on the UTC microsecond time line)."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise EpcisInvalid(
            f"{_short(repr(text))} is not an RFC 3339 date-time such as "
            "2005-04-03T20:33:31.116-06:00",
            field=field,
        )
    year, month, day, hour, minute, second = (int(match[group]) for group in range(1, 7))
    # The chain orders events by microsecond; a finer fraction (.NET writes 7 digits) is kept
    # whole in the event's text and truncated here.
    fraction = match[7] or ""
    if second == 60:
        raise EpcisInvalid(
            f"{text!r} names second 60, a leap second, which has no place on the UTC "
            "microsecond time line; write :59.999999 instead",
            field=field,
        )
    offset_minutes = 0
    if match[8]:
        offset_hours, offset_part = int(match[9]), int(match[10])
        if offset_hours > 23 or offset_part > 59:
            raise EpcisInvalid(f"{text!r} has an impossible UTC offset", field=field)
        offset_minutes = (offset_hours * 60 + offset_part) * (-1 if match[8] == "-" else 1)
    try:
        instant = datetime(
            year,
            month,
            day,
            hour,
            minute,
            second,
            int(fraction[:6].ljust(6, "0")),
            tzinfo=timezone(timedelta(minutes=offset_minutes)),
        )
    except ValueError as exc:
        raise EpcisInvalid(f"{text!r} is not a valid date-time: {exc}", field=field) from None
    return (instant - _EPOCH) // _MICROSECOND


def _event_id(event: dict[str, Any]) -> str:
    """The eventID; a UUID URN in lower case (RFC 9562: its hex digits are case-insensitive), so
    that a declaration written in upper case finds the event it repeats."""
    event_id = _text(event, "eventID")
    if event_id[:9].lower() == "urn:uuid:":
        return "urn:uuid:" + event_id[9:].lower()
    return event_id


def _text(event: dict[str, Any], key: str) -> str:
    value = event.get(key, "")
    if not isinstance(value, str):
        raise EpcisInvalid(f"expected text, found {_short(repr(value))}", field=key)
    return value


def _instance_epcs(event: dict[str, Any]) -> list[str]:
    """Every instance the event names, each by its one canonical key (keys.py), first occurrence
    first, in field order epcList, childEPCs, inputEPCList, outputEPCList (a fixed order, so
    canonical key sorting of the JSON text cannot change it)."""
    epcs: dict[str, None] = {}
    for key in _EPC_LIST_FIELDS:
        for epc in _epc_list(event, key):
            epcs[epc] = None
    return list(epcs)


def _epc_list(event: dict[str, Any], key: str) -> list[str]:
    values = event.get(key, [])
    if not isinstance(values, list):
        raise EpcisInvalid("expected a list of EPC URIs", field=key)
    found = []
    for position, epc in enumerate(values):
        field = f"{key}[{position}]"
        if not isinstance(epc, str):
            raise EpcisInvalid(f"expected an EPC URI, found {_short(repr(epc))}", field=field)
        uri = _checked_epc(epc, field)
        if uri.startswith(_CLASS_STEMS) and "/21/" not in uri:
            raise EpcisInvalid(
                f"{key} names instances; {epc!r} is a class (a product or a lot): give it with "
                "a quantity in quantityList",
                field=field,
            )
        found.append(uri)
    return found


def _checked_epc(epc: str, field: str) -> str:
    """The canonical key of an EPC URI or Digital Link URI (keys.py), refusing one whose GS1
    key is malformed; any other URI passes as it is. Empty stays empty (no parentID)."""
    if not epc:
        return epc
    try:
        return canonical(epc, field).uri
    except InvalidIdentifier as exc:
        raise EpcisInvalid(exc.reason, field=field) from None


def cbv_word(value: str, vocabulary: str) -> str:
    """A CBV 2.0 term written as its full URI (`https://ref.gs1.org/cbv/BizStep-shipping`, the
    JSON-LD expansion of the bare word) is that bare word (`shipping`); anything else is kept.
    `vocabulary` is the term's URI stem: "BizStep" or "Disp"."""
    for scheme in ("https://", "http://"):
        stem = f"{scheme}ref.gs1.org/cbv/{vocabulary}-"
        if value.startswith(stem) and _CBV_WORD.fullmatch(value[len(stem) :]):
            return value[len(stem) :]
    return value


def _cbv_term(event: dict[str, Any], key: str, vocabulary: str) -> str:
    """The bizStep or disposition of an event as a CBV bare word when it is one, however
    written: `shipping`, `https://ref.gs1.org/cbv/BizStep-shipping`, or a compact IRI such as
    `cbv:BizStep-shipping` (GS1's context defines `cbv`; an event's own @context may define
    another prefix for the same namespace)."""
    value = _text(event, key)
    prefix, colon, rest = value.partition(":")
    if colon and not rest.startswith("//"):
        terms = {**context_terms(event.get("@context")), **gs1_context_terms()}
        namespace = terms.get(prefix)
        if isinstance(namespace, dict):
            namespace = namespace.get("@id")
        if isinstance(namespace, str):
            value = namespace + rest
    return cbv_word(value, vocabulary)


def event_classes(event: dict[str, Any]) -> list[str]:
    """The canonical keys of the classes (LGTIN lots, GTINs, …) the event's quantity lists
    name, first occurrence first, in field order quantityList, childQuantityList,
    inputQuantityList, outputQuantityList."""
    classes: dict[str, None] = {}
    for key in _QUANTITY_LIST_FIELDS:
        values = event.get(key, [])
        if not isinstance(values, list):
            raise EpcisInvalid("expected a list of quantity elements", field=key)
        for position, element in enumerate(values):
            epc_class = element.get("epcClass") if isinstance(element, dict) else None
            field = f"{key}[{position}].epcClass"
            if not isinstance(epc_class, str):
                raise EpcisInvalid("expected an EPC class URI", field=field)
            uri = _checked_epc(epc_class, field)
            if uri.startswith(_CLASS_STEMS) and "/21/" in uri:
                raise EpcisInvalid(
                    f"an epcClass names a class (an LGTIN lot, a GTIN); {epc_class!r} is one "
                    "serialised item: name it in epcList",
                    field=field,
                )
            classes[uri] = None
    return list(classes)


@dataclass(frozen=True)
class EventParts:
    """What a contract needs of one EPCIS event beyond its indexed fields: the instances it
    creates when it is a commissioning event (ObjectEvent ADD: epcList; TransformationEvent:
    outputEPCList; AggregationEvent or AssociationEvent ADD: parentID and childEPCs), the
    classes its quantity lists name, and its error declaration, if it is one (EPCIS 2.0: the
    retracted event repeated, with the same eventID, plus `errorDeclaration`)."""

    created: tuple[str, ...]
    classes: tuple[str, ...]
    declaration: dict[str, Any] | None
    # For a declaration: the on-chain form of the event it repeats (itself without
    # `errorDeclaration`), to find that event when no eventID names it.
    original: dict[str, Any] | None = None

    @property
    def corrective_event_ids(self) -> tuple[str, ...]:
        ids = (self.declaration or {}).get("correctiveEventIDs", [])
        return tuple(value for value in ids if isinstance(value, str))


def event_parts(event: dict[str, Any]) -> EventParts:
    """The `EventParts` of a valid EPCIS event (numbers as int or Decimal)."""
    declaration = event.get("errorDeclaration")
    created: list[str] = []
    step = _cbv_term(event, "bizStep", "BizStep")
    if step == "commissioning" and declaration is None:
        event_type, action = _text(event, "type"), _text(event, "action")
        if event_type == "ObjectEvent" and action == "ADD":
            created = _epc_list(event, "epcList")
        elif event_type == "TransformationEvent":
            created = _epc_list(event, "outputEPCList")
        elif event_type in ("AggregationEvent", "AssociationEvent") and action == "ADD":
            parent = _checked_epc(_text(event, "parentID"), "parentID")
            created = [*([parent] if parent else []), *_epc_list(event, "childEPCs")]
    original = None
    if isinstance(declaration, dict):
        repeated = {key: value for key, value in event.items() if key != "errorDeclaration"}
        original = to_chain_event(repeated)
    return EventParts(
        created=tuple(dict.fromkeys(created)),
        classes=tuple(event_classes(event)),
        declaration=declaration if isinstance(declaration, dict) else None,
        original=original,
    )


def _location(event: dict[str, Any], key: str) -> str:
    """A readPoint's or bizLocation's id by its canonical key (an SGLN URI and a Digital Link
    /414/ URI of the same GLN and extension name one place)."""
    value = event.get(key)
    if value is None:
        return ""
    location = value.get("id") if isinstance(value, dict) else None
    if not isinstance(location, str):
        raise EpcisInvalid("expected an object with an id URI", field=key)
    return _checked_epc(location, f"{key}.id")


def _customs_declaration(event: dict[str, Any]) -> str:
    """The customs declaration number: from a bizTransactionList entry of our type, or from the
    extension field; an event naming two different numbers is refused."""
    found: dict[str, str] = {}
    transactions = event.get("bizTransactionList", [])
    if not isinstance(transactions, list):
        raise EpcisInvalid("expected a list", field="bizTransactionList")
    for position, entry in enumerate(transactions):
        if isinstance(entry, dict) and entry.get("type") == CUSTOMS_DECLARATION_TYPE:
            field = f"bizTransactionList[{position}].bizTransaction"
            number = entry.get("bizTransaction")
            if not isinstance(number, str) or not number:
                raise EpcisInvalid("expected the declaration as a URI", field=field)
            found.setdefault(number, field)
    if CUSTOMS_DECLARATION_FIELD in event:
        number = event[CUSTOMS_DECLARATION_FIELD]
        if not isinstance(number, str) or not number:
            raise EpcisInvalid(
                "expected the declaration number as text", field=CUSTOMS_DECLARATION_FIELD
            )
        found.setdefault(number, CUSTOMS_DECLARATION_FIELD)
    if len(found) > 1:
        raise EpcisInvalid(
            f"the event names {len(found)} different customs declarations "
            f"({', '.join(map(repr, found))}); one event records one declaration",
            field=list(found.values())[1],
        )
    return next(iter(found), "")


# --- JSON-LD context ------------------------------------------------------------------------------


def context_terms(context: object) -> dict[str, Any]:
    """The terms (mostly namespace prefixes such as `"example": "https://ns.example.com/"`) a
    JSON-LD @context defines inline; remote contexts (URLs) are not fetched."""
    entries = context if isinstance(context, list) else [context]
    terms: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry, dict):
            for name, value in entry.items():
                if not name.startswith("@") and isinstance(value, str | dict):
                    terms[name] = value
    return terms


@lru_cache(maxsize=1)
def gs1_context_terms() -> dict[str, Any]:
    """The terms GS1's EPCIS context defines (`cbv`, `gs1`, `cbvmda`, …)."""
    context = json.loads((GS1_DATA / "epcis-context.jsonld").read_text(encoding="utf-8"))
    return context_terms(context["@context"])


def gs1_terms() -> frozenset[str]:
    """The terms GS1's EPCIS context defines; it protects them, so no document may define them
    again (GS1's `cbvmda` prefix is GS1's whatever a document says)."""
    return frozenset(gs1_context_terms())


def with_context(event: Any, declared: dict[str, Any]) -> Any:
    """`event` carrying, in its own @context, the terms of its document's @context that it uses
    and does not define itself (an extension field `example:myField` uses the prefix
    `example`), so that it keeps its meaning as JSON-LD when it is stored alone and exported in
    another document. An event that uses none of them is returned as it is."""
    if not isinstance(event, dict) or not declared:
        return event
    own = event.get("@context")
    defined = context_terms(own)
    declared = {
        name: value
        for name, value in declared.items()
        if name not in gs1_terms() and name not in defined
    }
    used = sorted(_terms_used(event, declared))
    if not used:
        return event
    carried = {name: declared[name] for name in used}
    if own is None:
        return {"@context": carried, **event}
    # The event's own context comes last, so that its own definitions win (JSON-LD order).
    return {**event, "@context": [carried, *(own if isinstance(own, list) else [own])]}


def _terms_used(value: object, declared: dict[str, Any], depth: int = 0) -> set[str]:
    used: set[str] = set()
    if depth > nesting_depth_max:
        return used
    if isinstance(value, dict):
        for key, item in value.items():
            used |= _term_of(key, declared)
            used |= _terms_used(item, declared, depth + 1)
    elif isinstance(value, list):
        for item in value:
            used |= _terms_used(item, declared, depth + 1)
    elif isinstance(value, str):
        used |= _term_of(value, declared)
    return used


def _term_of(text: str, declared: dict[str, Any]) -> set[str]:
    if text in declared:
        return {text}
    prefix, colon, rest = text.partition(":")
    return {prefix} if colon and prefix in declared and not rest.startswith("//") else set()


def document_context(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The terms the events' own @context objects define, for the @context of a document that
    holds them all. Left to each event's own: a term two events define differently, and a term
    another event uses without defining (its document left the prefix undeclared, so there it
    is a URI scheme; declaring it for the whole document would change that event's meaning)."""
    terms: dict[str, Any] = {}
    conflicting: set[str] = set()
    for event in events:
        for name, value in context_terms(event.get("@context")).items():
            if name in gs1_terms():
                continue
            if terms.setdefault(name, value) != value:
                conflicting.add(name)
    for event in events:
        own = context_terms(event.get("@context"))
        undefined = {name: value for name, value in terms.items() if name not in own}
        conflicting |= _terms_used(event, undefined)
    return {name: value for name, value in terms.items() if name not in conflicting}


# --- canonical JSON ------------------------------------------------------------------------------


def canonical_json(value: object) -> str:
    """The one JSON text of `value`: sorted keys, no spaces, UTF-8 characters unescaped, each
    number in canonical decimal text. Refuses floats, unpaired surrogates and numbers beyond
    the bounds above."""
    parts: list[str] = []
    _write(value, parts, (), 0)
    return "".join(parts)


def canonical_decimal(number: Decimal, field: str | None = None) -> str:
    """Canonical text of a finite decimal: plain digits from 1E-15 to 1E+15, with no trailing
    zeros and no trailing point (`200.50` → `200.5`, `10.0` → `10`, `1E+3` → `1000`), "0" for
    any zero; beyond that one digit, a point and the rest, and a signed exponent
    (`6.02214076E+23`, `1.6E-19`), so that it reads back as the same decimal, never an integer."""
    _sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": NaN or infinity
        raise EpcisInvalid(f"{number} is not a finite number", field=field)
    if number.is_zero():
        return "0"
    significant = len(digits)
    while digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    adjusted = exponent + significant - 1
    if significant > decimal_significant_digits_max:
        raise EpcisInvalid(
            f"{_short(str(number))} has {significant} significant digits; at most "
            f"{decimal_significant_digits_max} are accepted, so that every EPCIS consumer holds "
            "the value exactly",
            field=field,
        )
    if abs(adjusted) > decimal_exponent_abs_max:
        raise EpcisInvalid(
            f"{_short(str(number))} is of magnitude 1E{adjusted:+d}; magnitudes from "
            f"1E-{decimal_exponent_abs_max} to 1E+{decimal_exponent_abs_max} are accepted",
            field=field,
        )
    if abs(adjusted) > plain_exponent_abs_max:
        text = "".join(str(digit) for digit in digits[:significant])
        sign = "-" if number < 0 else ""
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{sign}{mantissa}E{adjusted:+d}"
    # Exact: at most 17 significant digits lie well within the default 28-digit context.
    return format(number.normalize(), "f")


def _write(value: object, parts: list[str], path: tuple[str | int, ...], depth: int) -> None:
    if depth > nesting_depth_max:
        raise EpcisInvalid(f"nests deeper than {nesting_depth_max} levels", field=_field(path))
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(_json_string(value, path))
    elif isinstance(value, int):
        if not integer_min <= value <= integer_max:
            raise EpcisInvalid(f"the integer {value} lies outside 64 bits", field=_field(path))
        parts.append(str(value))
    elif isinstance(value, Decimal):
        parts.append(canonical_decimal(value, _field(path)))
    elif isinstance(value, list):
        parts.append("[")
        for position, item in enumerate(value):
            if position:
                parts.append(",")
            _write(item, parts, (*path, position), depth + 1)
        parts.append("]")
    elif isinstance(value, dict):
        parts.append("{")
        for position, key in enumerate(sorted(_text_keys(value, path))):
            if position:
                parts.append(",")
            parts.append(_json_string(key, path))
            parts.append(":")
            _write(value[key], parts, (*path, key), depth + 1)
        parts.append("}")
    else:
        raise EpcisInvalid(
            f"expected a JSON value (text, integer, Decimal, boolean, null, list or object), "
            f"found {type(value).__name__}",
            field=_field(path),
        )


def _text_keys(value: dict[Any, Any], path: tuple[str | int, ...]) -> list[str]:
    keys = list(value)
    if not all(isinstance(key, str) for key in keys):
        raise EpcisInvalid("JSON object keys are text", field=_field(path))
    return keys


def _json_string(text: str, path: tuple[str | int, ...]) -> str:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise EpcisInvalid(
                "the text holds an unpaired UTF-16 surrogate, which is not a character",
                field=_field(path),
            ) from None
    return encode_basestring(text)


def _field(path: tuple[str | int, ...]) -> str | None:
    return _json_path(list(path)) or None


# --- export --------------------------------------------------------------------------------------


def export_document(
    events: list[dict[str, Any]],
    *,
    creation_date: str,
    namespaces: dict[str, str] | None = None,
) -> str:
    """An EPCIS 2.0 JSON-LD EPCISDocument holding `events` (EPCIS events, numbers as int or
    Decimal), as canonical JSON text; it is validated before it is returned. Its @context
    declares every term the events' own @context objects define (`document_context`), the
    `xinchain` prefix, and `namespaces`."""
    event_time_us(creation_date, field="creationDate")
    terms = {**document_context(events), **(namespaces or {})}
    document = _document_of(events, creation_date=creation_date, namespaces=terms)
    validate_document(document)
    return canonical_json(document) + "\n"


def _document_of(
    events: list[Any], *, creation_date: str, namespaces: dict[str, str] | None = None
) -> dict[str, Any]:
    prefixes = {"xinchain": XINCHAIN_NAMESPACE, **(namespaces or {})}
    return {
        "@context": [CONTEXT_URL, prefixes],
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": creation_date,
        "epcisBody": {"eventList": list(events)},
    }
