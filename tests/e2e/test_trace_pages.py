"""What a shopper and an inspector read on the public pages of a case, a lot and an item, in a
real browser (Debian's chromium) on a phone.

A brand's tins travel in a case through a cold chain: the brand commissions three tins (by their
Digital Link URIs), a warehouse packs them into a case (an SSCC) at a location named by its SGLN,
a forwarder's logger reports the case at 31.5 °C (too warm for infant formula) and 40 % relative
humidity, the forwarder records a shipment, declares it in error and records the corrected one,
and ships 120 kg of one lot.

Scenarios:
- the tin's page names the place by its 13-digit GLN, as printed on a label;
- the retracted shipment is shown struck through as retracted, linking its corrective event;
- the readings show their units; the warm one is marked out of range, the humidity is not;
- the Chinese page labels every step and the readings in Chinese;
- the case's page lists the three tins it holds, each linking to its own page;
- the lot's page shows the lot and its shipped quantity with its unit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ConsoleNode
from playwright.sync_api import BrowserContext, Page

from xinchain.apps.provenance.epcis import CONTEXT_URL, document_events_to_chain
from xinchain.apps.provenance.gs1 import check_digit
from xinchain.apps.provenance.keys import canonical
from xinchain.client.member import Member
from xinchain.client.sdk import Client
from xinchain.node.home import Home

pytestmark = pytest.mark.slow  # a real node and a real browser

PREFIX = "6901234"  # a GS1 China company prefix
GTIN = "0" + PREFIX + "12345" + check_digit("0" + PREFIX + "12345")
TINS = [f"https://id.gs1.org/01/{GTIN}/21/T{n}" for n in range(3)]
CASE = f"urn:epc:id:sscc:{PREFIX}.0000000077"
PLACE = f"urn:epc:id:sgln:{PREFIX}.56789.0"
LOT = "L2026"


def _event(**fields: Any) -> dict[str, Any]:
    return {"eventTime": "2026-11-11T08:00:00+08:00", "eventTimeZoneOffset": "+08:00", **fields}


def _record(client: Client, member: Member, *events: dict[str, Any]) -> None:
    document = {
        "@context": [CONTEXT_URL],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-11T00:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }
    args = {"events": document_events_to_chain(json.dumps(document))}
    client.member_call(member, "provenance", "record_events", args)


@pytest.fixture(scope="module")
def journey(console_node: ConsoleNode) -> str:
    """Records the cold chain above; returns the node's base URL."""
    api = f"http://127.0.0.1:{console_node.port}"
    home = Home(console_node.home)
    genesis = home.genesis()

    def member(org: str) -> Member:
        return Member(genesis, org, home.org_key(genesis.suite, org))

    brand, warehouse, forwarder = member("brand"), member("warehouse"), member("forwarder")
    shipped = _event(
        type="ObjectEvent", action="OBSERVE", bizStep="shipping", epcList=[CASE],
        eventID="urn:uuid:ship-1", disposition="in_transit",
    )  # fmt: skip
    with Client(api) as client:
        args = {"gtin": GTIN, "name": "Infant formula 800 g", "origin": "NZ"}
        client.member_call(brand, "provenance", "register_product",
                           {**args, "company_prefix_digits": 7})  # fmt: skip
        _record(client, brand, _event(
            type="ObjectEvent", action="ADD", bizStep="commissioning", epcList=TINS))  # fmt: skip
        _record(client, warehouse, _event(
            type="AggregationEvent", action="ADD", bizStep="packing", parentID=CASE,
            childEPCs=TINS, readPoint={"id": PLACE},
        ))  # fmt: skip
        _record(client, forwarder, _event(
            type="ObjectEvent", action="OBSERVE", bizStep="sensor_reporting", epcList=[CASE],
            sensorElementList=[{"sensorReport": [
                {"type": "Temperature", "value": 31.5, "uom": "CEL"},
                {"type": "RelativeHumidity", "value": 40, "uom": "P1"},
            ]}],
        ))  # fmt: skip
        _record(client, forwarder, shipped)
        declared = {**shipped, "errorDeclaration": {
            "declarationTime": "2026-11-11T09:00:00+08:00", "reason": "incorrect_data",
            "correctiveEventIDs": ["urn:uuid:ship-2"],
        }}  # fmt: skip
        corrected = {**shipped, "eventID": "urn:uuid:ship-2", "disposition": "in_progress"}
        _record(client, forwarder, declared, corrected)
        _record(client, forwarder, _event(
            type="ObjectEvent", action="OBSERVE", bizStep="shipping",
            quantityList=[{"epcClass": f"urn:epc:class:lgtin:{PREFIX}.012345.{LOT}",
                           "quantity": 120, "uom": "KGM"}],
        ))  # fmt: skip
    return api


def _open(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    return page


def test_the_tins_page_shows_gln_retraction_and_readings(
    journey: str, phone: Callable[[str], BrowserContext]
) -> None:
    page = _open(phone("en-US"), f"{journey}/01/{GTIN}/21/T0")
    gln = canonical(PLACE).key
    assert len(gln) == 13 and f"GLN {gln}" in page.inner_text("main")
    retracted = page.locator("li.step.retracted")
    assert retracted.count() == 1
    assert "declared this event in error" in retracted.inner_text()
    assert retracted.locator("a.corrective").inner_text() == "urn:uuid:ship-2"
    assert page.locator("li.step:not(.retracted)[data-step='shipping']").count() == 1
    warm = page.locator("dd.bad-reading")
    assert warm.count() == 1
    assert "31.5 °C" in warm.inner_text() and "out of range" in warm.inner_text()
    assert "40 %" in page.locator("dd.reading:not(.bad-reading)").inner_text()


def test_the_chinese_page_labels_steps_and_readings(
    journey: str, phone: Callable[[str], BrowserContext]
) -> None:
    text = _open(phone("zh-CN"), f"{journey}/01/{GTIN}/21/T1").inner_text("main")
    for label in (
        "生产赋码",
        "装箱",
        "传感器读数",
        "发运",
        "温度",
        "相对湿度",
        "超出范围",
        "已撤销",
    ):
        assert label in text, label


def test_the_case_page_lists_its_tins(journey: str, phone: Callable[[str], BrowserContext]) -> None:
    page = _open(phone("en-US"), f"{journey}{canonical(CASE).path}")
    assert "(00) " + canonical(CASE).key in page.inner_text("#key")
    links = page.locator("#contents a")
    assert links.count() == 3
    links.first.click()
    page.wait_for_url(f"**/01/{GTIN}/21/T*")
    assert page.locator("li.step").count() >= 4


def test_the_lot_page_shows_its_quantity(
    journey: str, phone: Callable[[str], BrowserContext]
) -> None:
    page = _open(phone("en-US"), f"{journey}/01/{GTIN}/10/{LOT}")
    assert page.inner_text("#key") == LOT
    assert "120 kg" in page.locator("li.step").inner_text()
