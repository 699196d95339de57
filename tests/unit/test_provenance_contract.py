"""The provenance contract on GS1's terms: one item however it is named, every CBV step, events
that commission, retract or repeat, and what a container holds.

Scenarios (one in-process chain; org0 a brand, org1 logistics, org2 a warehouse, org3 a bank):

identity
- an item commissioned by its Digital Link URI and shipped by its EPC URI has one journey
- a lot named as urn:epc:class:lgtin and as a Digital Link /10/ URI has one journey
vocabulary and roles
- every CBV 2.0 bizStep in GS1's schema has default roles, and an English and a Chinese label
- a bizStep written as its full CBV URI is checked and stored as its bare word
- an extension step (a URI outside CBV) is open to the business roles, not to a bank
commissioning
- a TransformationEvent whose bizStep is commissioning commissions its outputs, not its inputs
- only the product's brand commissions it, whatever the event type
errors and repeats
- an error declaration retracts the event with its eventID; its corrective event may
  commission the retracted event's outputs again
- only the org that recorded an event declares it in error
- the same event sent twice is recorded once; another event reusing an eventID is kept beside
  it, and a declaration retracts only its sender's event
containers
- an AggregationEvent ADD fills the parent's contents; DELETE naming no children empties it
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chain_helpers import Chain, make_consortium
from chain_helpers import object_event as event

from xinchain.apps.provenance.contract import DEFAULT_STEP_ROLES, NAME
from xinchain.apps.provenance.epcis import to_chain_event
from xinchain.apps.provenance.page import STEP_LABELS
from xinchain.apps.provenance.view import journey, key_view

SCHEMA = (
    Path(__file__).resolve().parents[2]
    / "src/xinchain/apps/provenance/gs1data/EPCIS-JSON-Schema.json"
)
GTIN = "10614141073464"  # urn:epc:id:sgtin:0614141.107346.*
OUTPUT_GTIN = "10614141077776"  # urn:epc:id:sgtin:0614141.107777.*
ROLES = {
    "org0": ["brand"],
    "org1": ["logistics"],
    "org2": ["warehouse"],
    "org3": ["bank"],
}


@pytest.fixture
def chain() -> Chain:
    chain = Chain(make_consortium("ed25519-sha256", org_count=4, roles=ROLES))
    for gtin in (GTIN, OUTPUT_GTIN):
        args = {"gtin": gtin, "name": "Formula", "origin": "NZ", "company_prefix_digits": 7}
        assert chain.call("org0", NAME, "register_product", args).ok
    return chain


def record(chain: Chain, sender: str, *events: dict[str, Any]) -> Any:
    return chain.call(
        sender, NAME, "record_events", {"events": [to_chain_event(e) for e in events]}
    )


def commission(chain: Chain, *epcs: str) -> None:
    result = record(chain, "org0", event(action="ADD", bizStep="commissioning", epcList=list(epcs)))
    assert result.ok, result.error


def steps_of(chain: Chain, key: str) -> list[str]:
    return [step.event["biz_step"] for step in journey(chain.app.chain, key)]


# --- identity ----------------------------------------------------------------------------------


def test_an_item_named_by_digital_link_and_by_epc_uri_has_one_journey(chain: Chain) -> None:
    commission(chain, f"https://brand.example.com/01/{GTIN}/21/A1")
    shipped = event(bizStep="shipping", epcList=["urn:epc:id:sgtin:0614141.107346.A1"])
    assert record(chain, "org1", shipped).ok
    key = f"https://id.gs1.org/01/{GTIN}/21/A1"
    assert steps_of(chain, key) == ["commissioning", "shipping"]
    assert chain.app.chain.read_state(NAME, f"item/{key}")["serial"] == "A1"


def test_a_lot_named_two_ways_has_one_journey(chain: Chain) -> None:
    quantities = [
        [{"epcClass": "urn:epc:class:lgtin:0614141.107346.LOT7", "quantity": 10}],
        [{"epcClass": f"https://id.gs1.org/01/{GTIN}/10/LOT7", "quantity": 5, "uom": "KGM"}],
    ]
    for quantity_list in quantities:
        assert record(chain, "org1", event(bizStep="shipping", quantityList=quantity_list)).ok
    view = key_view(chain.app.chain, "urn:epc:class:lgtin:0614141.107346.LOT7")
    assert view.key.kind == "lgtin" and view.key.lot == "LOT7"
    assert len(view.steps) == 2


# --- vocabulary and roles ----------------------------------------------------------------------


def test_every_cbv_step_in_gs1s_schema_has_default_roles() -> None:
    schema = json.loads(SCHEMA.read_text())
    words = schema["definitions"]["bizStep"]["anyOf"][1]["enum"]
    assert len(words) >= 40
    assert [word for word in words if not DEFAULT_STEP_ROLES.get(word)] == []


def test_every_cbv_step_has_an_english_and_a_chinese_label() -> None:
    schema = json.loads(SCHEMA.read_text())
    words = schema["definitions"]["bizStep"]["anyOf"][1]["enum"]
    for word in words:
        english, chinese = STEP_LABELS[word]
        assert english.isascii() and not chinese.isascii(), word


def test_a_step_written_as_its_cbv_uri_is_its_bare_word(chain: Chain) -> None:
    commission(chain, "urn:epc:id:sgtin:0614141.107346.B1")
    uri_step = event(
        bizStep="https://ref.gs1.org/cbv/BizStep-transporting",
        disposition="https://ref.gs1.org/cbv/Disp-in_transit",
        epcList=["urn:epc:id:sgtin:0614141.107346.B1"],
    )
    refused = record(chain, "org0", uri_step)  # a brand does not transport
    assert not refused.ok and "'transporting'" in refused.error
    assert record(chain, "org1", uri_step).ok
    (step,) = [s for s in journey(chain.app.chain, f"https://id.gs1.org/01/{GTIN}/21/B1")][1:]
    assert (step.event["biz_step"], step.event["disposition"]) == ("transporting", "in_transit")


def test_an_extension_step_is_open_to_business_roles_only(chain: Chain) -> None:
    commission(chain, "urn:epc:id:sgtin:0614141.107346.C1")
    custom = event(
        bizStep="http://epcis.example.org/hc/bizstep/summarising_discharge",
        epcList=["urn:epc:id:sgtin:0614141.107346.C1"],
    )
    refused = record(chain, "org3", custom)
    assert not refused.ok and "may not record" in refused.error
    assert record(chain, "org2", custom).ok


# --- commissioning -----------------------------------------------------------------------------


def transformation(**fields: Any) -> dict[str, Any]:
    return event(
        type="TransformationEvent",
        bizStep="commissioning",
        inputEPCList=["urn:epc:id:sgtin:0614141.107346.IN1"],
        outputEPCList=["urn:epc:id:sgtin:0614141.107777.OUT1"],
        **{"action": None, **fields},
    )


def without_action(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None}


def test_a_commissioning_transformation_commissions_its_outputs(chain: Chain) -> None:
    made = without_action(transformation())
    refused = record(chain, "org0", made)  # its input was never commissioned
    assert not refused.ok and "IN1 was never commissioned" in refused.error
    commission(chain, "urn:epc:id:sgtin:0614141.107346.IN1")
    assert record(chain, "org0", made).ok
    output = f"https://id.gs1.org/01/{OUTPUT_GTIN}/21/OUT1"
    assert chain.app.chain.read_state(NAME, f"item/{output}")["brand"] == "org0"


def test_only_the_brand_commissions_whatever_the_event_type(chain: Chain) -> None:
    commission(chain, "urn:epc:id:sgtin:0614141.107346.IN1")
    chain_event = to_chain_event(without_action(transformation()))
    # The warehouse may not record commissioning at all.
    result = chain.call("org2", NAME, "record_events", {"events": [chain_event]})
    assert not result.ok and "commissioning" in result.error


# --- errors and repeats ------------------------------------------------------------------------


def test_an_error_declaration_retracts_and_its_corrective_event_recommissions(chain: Chain) -> None:
    commission(chain, "urn:epc:id:sgtin:0614141.107346.IN1")
    original = without_action(transformation(eventID="urn:uuid:e-1"))
    assert record(chain, "org0", original).ok
    declaration = {
        **original,
        "errorDeclaration": {
            "declarationTime": "2026-11-02T00:00:00Z",
            "reason": "incorrect_data",
            "correctiveEventIDs": ["urn:uuid:e-2"],
        },
    }
    corrective = {**original, "eventID": "urn:uuid:e-2", "eventTime": "2026-11-02T01:00:00Z"}
    result = record(chain, "org0", declaration, corrective)
    assert result.ok, result.error
    steps = journey(chain.app.chain, f"https://id.gs1.org/01/{OUTPUT_GTIN}/21/OUT1")
    (declared,) = [s for s in steps if s.declares]
    steps = [s for s in steps if not s.declares]
    assert declared.declares == steps[0].digest and steps[0].retracted_by == declared.digest
    assert [(s.document.get("eventID"), bool(s.retracted_by)) for s in steps] == [
        ("urn:uuid:e-1", True),
        ("urn:uuid:e-2", False),
    ]
    assert steps[0].corrective == (("urn:uuid:e-2", steps[1].digest),)


def test_only_the_recorder_declares_an_event_in_error(chain: Chain) -> None:
    commission(chain, "urn:epc:id:sgtin:0614141.107346.D1")
    shipped = event(eventID="urn:uuid:s-1", bizStep="shipping", epcList=[
        "urn:epc:id:sgtin:0614141.107346.D1"
    ])  # fmt: skip
    assert record(chain, "org1", shipped).ok
    declared = {**shipped, "errorDeclaration": {"declarationTime": "2026-11-02T00:00:00Z"}}
    refused = record(chain, "org2", declared)
    assert not refused.ok and "only that org" in refused.error


def test_a_repeated_event_is_recorded_once_and_a_reused_event_id_is_kept(chain: Chain) -> None:
    commission(chain, "urn:epc:id:sgtin:0614141.107346.E1")
    shipped = event(eventID="urn:uuid:x-1", bizStep="shipping", epcList=[
        "urn:epc:id:sgtin:0614141.107346.E1"
    ])  # fmt: skip
    assert record(chain, "org1", shipped).ok
    assert record(chain, "org1", shipped).ok
    assert steps_of(chain, f"https://id.gs1.org/01/{GTIN}/21/E1") == ["commissioning", "shipping"]
    # GS1's examples reuse eventIDs for edited copies: another event under one is recorded.
    assert record(chain, "org2", {**shipped, "bizStep": "receiving"}).ok
    item = f"https://id.gs1.org/01/{GTIN}/21/E1"
    assert steps_of(chain, item) == ["commissioning", "shipping", "receiving"]
    # A declaration retracts only its sender's events under that eventID.
    declared = {**shipped, "errorDeclaration": {"declarationTime": "2026-11-02T00:00:00Z"}}
    assert record(chain, "org1", declared).ok
    steps = [step for step in journey(chain.app.chain, item) if not step.declares]
    assert [bool(step.retracted_by) for step in steps] == [False, True, False]


# --- containers --------------------------------------------------------------------------------


def test_aggregation_fills_a_case_and_delete_with_no_children_empties_it(chain: Chain) -> None:
    items = [f"urn:epc:id:sgtin:0614141.107346.F{n}" for n in range(3)]
    commission(chain, *items)
    case = "urn:epc:id:sscc:0614141.1234567890"
    packed = event(type="AggregationEvent", action="ADD", bizStep="packing", parentID=case,
                   childEPCs=items)  # fmt: skip
    assert record(chain, "org2", packed).ok
    view = key_view(chain.app.chain, "https://id.gs1.org/00/106141412345678908")
    assert view.key.kind == "sscc"
    assert view.contents == [f"https://id.gs1.org/01/{GTIN}/21/F{n}" for n in range(3)]
    unpacked = event(type="AggregationEvent", action="DELETE", bizStep="unpacking", parentID=case)
    assert record(chain, "org2", unpacked).ok
    assert key_view(chain.app.chain, case).contents == []
    assert key_view(chain.app.chain, items[0]).container == ""
