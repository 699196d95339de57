"""EPCIS documents as other systems write them: variants of GS1's examples that an independent
evaluation found refused or mishandled, each now taken as GS1 would take it.

Scenarios:
- accepted: a bizStep as a compact IRI (`cbv:BizStep-commissioning`) commissions; extension
  prefixes with `-` or `.` and URI schemes such as `x-erp:`; an event with no bizStep (recorded
  by a business role); an AggregationEvent OBSERVE with no parentID; an event with its own
  @context that also uses its document's prefix; a UTF-8 byte-order mark; 600 logger readings
  on one pallet; `/414/{GLN}/254/0` as the same place as `urn:epc:id:sgln:….0`;
- an error declaration with no eventID retracts the event it repeats, and one whose UUID is
  written in upper case retracts the event written in lower case;
- numbers beyond 1E±15 (6.02214076E+23, 1.6E-19) keep an exponent and read back alike;
- refused, naming the field: a serialised item given as a quantity's epcClass (it would bypass
  commissioning), a class in epcList, a malformed percent escape in a Digital Link;
- `trace import` splits a document of 1,200 events into transactions of at most 1,000.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chain_helpers import Chain, make_consortium
from chain_helpers import object_event as event

from xinchain.apps.provenance.cli import _batches
from xinchain.apps.provenance.contract import NAME
from xinchain.apps.provenance.epcis import (
    CONTEXT_URL,
    EpcisInvalid,
    document_events_to_chain,
    export_document,
    from_chain_event,
)
from xinchain.apps.provenance.keys import canonical
from xinchain.apps.provenance.view import journey, key_view

GTIN = "10614141073464"
ITEM = "urn:epc:id:sgtin:0614141.107346.V1"
CASE = "urn:epc:id:sscc:0614141.1234567890"
ROLES = {"org0": ["brand"], "org1": ["logistics"], "org2": ["bank"]}


def document(*events: dict[str, Any], context: Any = None) -> str:
    return json.dumps(
        {
            "@context": context or [CONTEXT_URL],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-11-01T00:00:00Z",
            "epcisBody": {"eventList": list(events)},
        }
    )


@pytest.fixture
def chain() -> Chain:
    chain = Chain(make_consortium("ed25519-sha256", org_count=3, roles=ROLES))
    args = {"gtin": GTIN, "name": "Formula", "origin": "NZ", "company_prefix_digits": 7}
    assert chain.call("org0", NAME, "register_product", args).ok
    return chain


def record(chain: Chain, sender: str, text: str) -> Any:
    args = {"events": document_events_to_chain(text)}
    return chain.call(sender, NAME, "record_events", args)


def commissioned(chain: Chain) -> Chain:
    made = event(action="ADD", bizStep="commissioning", epcList=[ITEM])
    assert record(chain, "org0", document(made)).ok
    return chain


def test_a_compact_cbv_step_commissions(chain: Chain) -> None:
    made = event(action="ADD", bizStep="cbv:BizStep-commissioning", epcList=[ITEM])
    result = record(chain, "org0", document(made))
    assert result.ok, result.error
    assert [s.event["biz_step"] for s in journey(chain.app.chain, canonical(ITEM).uri)] == [
        "commissioning"
    ]


def test_extension_prefixes_and_schemes_as_rfc_3986_allows() -> None:
    context = [CONTEXT_URL, {"acme-ext": "https://acme.example/ns/", "acme.ns": "urn:acme:"}]
    observed = event(
        bizStep="receiving",
        epcList=[ITEM],
        bizTransactionList=[{"type": "inv", "bizTransaction": "x-erp://acme/inv/7"}],
        **{"acme-ext:batchNote": "ok", "acme.ns:line": 4},
    )
    (chain_event,) = document_events_to_chain(document(observed, context=context))
    carried = from_chain_event(chain_event)["@context"]
    assert carried == {"acme-ext": "https://acme.example/ns/", "acme.ns": "urn:acme:"}


def test_an_event_with_no_bizstep_is_recorded_by_a_business_role(chain: Chain) -> None:
    commissioned(chain)
    seen = event(epcList=[ITEM])
    assert not record(chain, "org2", document(seen)).ok  # a bank records no supply chain
    assert record(chain, "org1", document(seen)).ok


def test_an_aggregation_observed_without_its_parent(chain: Chain) -> None:
    commissioned(chain)
    observed = event(type="AggregationEvent", bizStep="receiving", childEPCs=[ITEM])
    assert record(chain, "org1", document(observed)).ok
    assert key_view(chain.app.chain, ITEM).container == ""


def test_an_events_own_context_also_gets_its_documents_prefix() -> None:
    context = [CONTEXT_URL, {"example": "https://ns.example.com/"}]
    own = event(bizStep="receiving", epcList=[ITEM], **{"@context": {"mine": "urn:mine:"}})
    own.update({"example:a": 1, "mine:b": 2})
    (chain_event,) = document_events_to_chain(document(own, context=context))
    carried = from_chain_event(chain_event)["@context"]
    assert carried == [{"example": "https://ns.example.com/"}, {"mine": "urn:mine:"}]


def test_a_byte_order_mark_is_read_past() -> None:
    text = "\ufeff" + document(event(bizStep="receiving", epcList=[ITEM]))
    assert document_events_to_chain(text)


def test_six_hundred_logger_readings_on_one_pallet(chain: Chain) -> None:
    readings = [
        event(
            bizStep="sensor_reporting",
            epcList=[CASE],
            eventTime=f"2026-11-01T{minute // 60:02d}:{minute % 60:02d}:00Z",
            sensorElementList=[
                {"sensorReport": [{"type": "Temperature", "value": 4, "uom": "CEL"}]}
            ],
        )
        for minute in range(0, 600 * 2, 2)
    ]
    assert record(chain, "org1", document(*readings)).ok
    assert len(key_view(chain.app.chain, CASE).steps) == 256  # the page shows the first 256


@pytest.mark.parametrize(
    ("spelled", "canonical_text"),
    [("6.02214076E+23", "6.02214076E+23"), ("1.6e-19", "1.6E-19"), ("-1e20", "-1E+20")],
)
def test_numbers_beyond_1e15_keep_an_exponent_and_read_back_alike(
    spelled: str, canonical_text: str
) -> None:
    reading = event(bizStep="sensor_reporting", epcList=[CASE], sensorElementList=[
        {"sensorReport": [{"type": "Temperature", "value": 1}], "example:n": "x"}
    ])  # fmt: skip
    text = document(reading, context=[CONTEXT_URL, {"example": "https://ns.example.com/"}])
    text = text.replace('"value": 1', f'"value": {spelled}')
    (chain_event,) = document_events_to_chain(text)
    assert f'"value":{canonical_text}' in chain_event["json"]
    created = "2026-11-02T00:00:00Z"
    exported = export_document([from_chain_event(chain_event)], creation_date=created)
    assert document_events_to_chain(exported) == [chain_event]


def test_a_gln_extension_of_0_is_no_extension() -> None:
    assert (
        canonical("https://id.gs1.org/414/0614141073467/254/0").uri
        == canonical("urn:epc:id:sgln:0614141.07346.0").uri
        == "https://id.gs1.org/414/0614141073467"
    )


def declared(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "errorDeclaration": {"declarationTime": "2026-11-02T00:00:00Z"}}


def test_a_declaration_with_no_event_id_retracts_the_event_it_repeats(chain: Chain) -> None:
    commissioned(chain)
    shipped = event(bizStep="shipping", epcList=[ITEM])
    assert record(chain, "org1", document(shipped)).ok
    assert record(chain, "org1", document(declared(shipped))).ok
    steps = [s for s in journey(chain.app.chain, canonical(ITEM).uri) if not s.declares]
    assert [bool(s.retracted_by) for s in steps] == [False, True]


def test_a_declaration_finds_its_uuid_in_any_case(chain: Chain) -> None:
    commissioned(chain)
    lower = "urn:uuid:abcdef01-0000-4000-8000-00000000000a"
    shipped = event(bizStep="shipping", epcList=[ITEM], eventID=lower)
    assert record(chain, "org1", document(shipped)).ok
    upper = {**shipped, "eventID": lower.upper().replace("URN:UUID:", "urn:uuid:")}
    assert record(chain, "org1", document(declared(upper))).ok
    steps = [s for s in journey(chain.app.chain, canonical(ITEM).uri) if not s.declares]
    assert [bool(s.retracted_by) for s in steps] == [False, True]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"quantityList": [{"epcClass": ITEM, "quantity": 1}]},
            "quantityList[0].epcClass",
            "is one serialised item",
        ),
        ({"epcList": ["urn:epc:class:lgtin:0614141.107346.L1"]}, "epcList[0]", "is a class"),
        ({"epcList": [f"https://id.gs1.org/01/{GTIN}/21/ab%zz"]}, "epcList[0]", "%XX escape"),
    ],
)
def test_refused_naming_the_field(fields: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(EpcisInvalid) as caught:
        document_events_to_chain(document(event(bizStep="receiving", **fields)))
    assert caught.value.field == field and words in caught.value.reason


def test_a_large_document_goes_in_transactions_of_at_most_1000_events() -> None:
    events = document_events_to_chain(
        document(*[event(bizStep="receiving", epcList=[ITEM]) for _ in range(1200)])
    )
    assert [len(batch) for batch in _batches(events)] == [1000, 200]


def test_an_epcis_1_cbv_urn_is_refused_saying_how_2_0_writes_it() -> None:
    shipped = event(bizStep="urn:epcglobal:cbv:bizstep:shipping", epcList=[ITEM])
    with pytest.raises(EpcisInvalid) as caught:
        document_events_to_chain(document(shipped))
    assert caught.value.field == "bizStep"
    assert "EPCIS 1.x spelling" in caught.value.reason and "BizStep-shipping" in caught.value.reason


def test_a_number_beyond_any_decimal_is_refused_not_raised() -> None:
    """Found by long/fuzz.py epcis: Decimal() raised InvalidOperation out of the parser."""
    with pytest.raises(EpcisInvalid) as caught:
        document_events_to_chain('{ "@cst":11E1111111111111111111 }')
    assert "beyond any decimal's range" in caught.value.reason
