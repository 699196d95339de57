"""Provenance on a real node: the demo journey, GS1's EPCIS examples, the scan page, refusals.

Scenarios:
- `xinchain up` records the demo journey and prints its scan URL on a `demo:` line; the page
  shows every step with its org, the customs declaration number and a verified mark, and each
  step's receipt passes `xinchain verify` offline;
- the page follows the browser's language (Chinese for zh-CN, English otherwise, `?lang=` wins);
- GS1's Example 9.6.1 then 9.6.3 (serials commissioned first by the brand) import as they are,
  and /01/10614141073464/21/2018 shows the events of both documents;
- refused, each with a clear error: a customs event signed by the brand, an event for a serial
  never commissioned, an EPCIS document with a malformed field (and nothing is recorded);
- a serial never commissioned shows "not registered"; a code scanned too often is flagged on
  the page and the node anchors the flag on chain;
- an item's QR code encodes its scan page; a printable sheet (PDF, PNG, SVG) holds a product's
  codes; a journey exports as EPCIS 2.0 and re-imports alike; a brand lists its items with the
  last step each reached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
import pytest
from conftest import RunningNode

from xinchain.apps.provenance.epcis import document_events_to_chain

pytestmark = pytest.mark.slow  # runs real processes (a node, a browser) or a large set

# Nodes started by this module anchor suspected copies every second, not every minute.
os.environ["XINCHAIN_FLAG_INTERVAL_S"] = "1"
INTEROP = Path(__file__).resolve().parents[3] / "shared" / "interop" / "epcis"
FIXTURE_GTIN = "10614141073464"
demo_timeout_s = 60.0

Cli = Callable[..., CompletedProcess[str]]


def _demo_url(node: RunningNode) -> str:
    deadline = time.monotonic() + demo_timeout_s
    while time.monotonic() < deadline:
        match = re.search(r"demo: (\S+)", node.output())
        if match:
            return match[1]
        time.sleep(0.2)
    raise AssertionError(f"no demo: line within {demo_timeout_s} s:\n{node.output()}")


def _document(events: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-11-01T00:00:00Z",
            "epcisBody": {"eventList": events},
        }
    )


def _commissioning(epcs: list[str]) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "commissioning",
        "epcList": epcs,
        "eventTime": "2005-04-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
    }


def test_demo_scan_page_shows_every_step_with_verifiable_receipts(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    url = _demo_url(module_node)
    page = httpx.get(url, headers={"accept-language": "en-US"}, timeout=10)
    assert page.status_code == 200
    for label in (
        "Produced and registered",
        "Packed",
        "Shipped",
        "Customs cleared",
        "Received",
        "Stored in bonded warehouse",
        "Delivered to the shopper",
    ):
        assert label in page.text, label
    assert "292420261000123456" in page.text
    assert page.text.count("Verified on chain") == 7
    receipts = re.findall(r"href='(/v1/provenance/events/[0-9a-f]{64}/receipt)'", page.text)
    assert len(receipts) == 7
    for index, path in enumerate(receipts):
        receipt = httpx.get(module_node.api + path, timeout=10).json()
        target = tmp_path / f"step{index}.receipt.json"
        target.write_text(json.dumps(receipt))
        result = cli("verify", target)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("valid: event")


def test_scan_page_speaks_the_browsers_language(module_node: RunningNode) -> None:
    url = _demo_url(module_node)
    chinese = httpx.get(url, headers={"accept-language": "zh-CN,zh;q=0.9"}, timeout=10).text
    assert "链上已验证" in chinese and "海关清关" in chinese and "lang='zh-CN'" in chinese
    english = httpx.get(url + "?lang=en", headers={"accept-language": "zh-CN"}, timeout=10).text
    assert "Verified on chain" in english


def test_gs1_examples_import_and_show_on_the_item_page(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    home, api = module_node.home, module_node.api
    result = cli(
        "trace", "product", FIXTURE_GTIN, "--name", "Example product", "--origin", "US",
        "--home", home, "--api", api, "--as", "brand",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    commissioning = tmp_path / "commission.jsonld"
    commissioning.write_text(
        _document([_commissioning([f"urn:epc:id:sgtin:0614141.107346.{s}" for s in (2017, 2018)])])
    )
    result = cli("trace", "import", commissioning, "--home", home, "--api", api, "--as", "brand")
    assert result.returncode == 0, result.stderr
    for name in ("Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld"):
        result = cli(
            "trace", "import", INTEROP / name, "--home", home, "--api", api, "--as", "forwarder"
        )
        assert result.returncode == 0, result.stdout + result.stderr
    item = httpx.get(f"{api}/v1/provenance/items/{FIXTURE_GTIN}/2018", timeout=10).json()
    ids = {step["event"].get("eventID") for step in item["steps"]}
    assert (
        "ni:///sha-256;00e1e6eba3a7cc6125be4793a631f0af50f8322e0ab5f2c0bab994a11cec1d79?ver=CBV2.0"
        in ids
    )
    assert (
        "ni:///sha-256;87b5f18a69993f0052046d4687dfacdf48f7c988cfabda2819688c86b4066a49?ver=CBV2.0"
        in ids
    )
    page = httpx.get(f"{api}/01/{FIXTURE_GTIN}/21/2018?lang=en", timeout=10).text
    assert page.count("Verified on chain") == len(item["steps"]) >= 3
    assert "Shipped" in page and "Received" in page


def test_a_customs_event_signed_by_the_brand_is_refused(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "urn:xinchain:bizstep:customs_clearance",
        "epcList": ["urn:epc:id:sgtin:8712345.067890.0002"],
        "eventTime": "2026-11-09T14:20:00+08:00",
        "eventTimeZoneOffset": "+08:00",
    }
    _demo_url(module_node)  # the demo's items exist
    document = tmp_path / "customs.jsonld"
    document.write_text(_document([event]))
    result = cli(
        "trace", "import", document, "--home", module_node.home, "--api", module_node.api,
        "--as", "brand",
    )  # fmt: skip
    assert result.returncode == 1
    assert "may not record" in result.stderr and "customs_broker" in result.stderr


def test_an_event_for_a_serial_never_commissioned_is_refused(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "epcList": ["urn:epc:id:sgtin:8712345.067890.9999"],
        "eventTime": "2026-11-03T09:00:00+01:00",
        "eventTimeZoneOffset": "+01:00",
    }
    document = tmp_path / "ghost.jsonld"
    document.write_text(_document([event]))
    result = cli(
        "trace", "import", document, "--home", module_node.home, "--api", module_node.api,
        "--as", "forwarder",
    )  # fmt: skip
    assert result.returncode == 1
    assert "never commissioned" in result.stderr


def test_a_document_with_a_malformed_field_is_refused_naming_event_and_field(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    text = (INTEROP / "Example_9.6.1-ObjectEvent.jsonld").read_text()
    broken = text.replace(
        '"action": "OBSERVE",\n\t\t  "bizStep": "receiving"',
        '"action": "WATCH",\n\t\t  "bizStep": "receiving"',
    )
    assert broken != text
    document = tmp_path / "broken.jsonld"
    document.write_text(broken)
    result = cli(
        "trace", "import", document, "--home", module_node.home, "--api", module_node.api,
        "--as", "forwarder",
    )  # fmt: skip
    assert result.returncode == 1
    assert "action" in result.stderr and "1" in result.stderr


def test_a_serial_never_commissioned_shows_not_registered(module_node: RunningNode) -> None:
    page = httpx.get(f"{module_node.api}/01/{FIXTURE_GTIN}/21/77777?lang=en", timeout=10)
    assert page.status_code == 200
    assert 'id="not-registered"' in page.text and "Not registered" in page.text


def test_a_code_scanned_too_often_is_flagged_as_a_suspected_copy(
    module_node: RunningNode,
) -> None:
    url = _demo_url(module_node).replace("/21/0001", "/21/0007")
    assert 'id="suspect"' not in httpx.get(url, timeout=10).text
    with httpx.Client(timeout=10) as client:
        for index in range(60):
            client.get(url, headers={"x-scan-place": f"city-{index % 3}"})
    assert 'id="suspect"' in httpx.get(url + "?lang=en", timeout=10).text


@pytest.mark.parametrize(
    "path", ["/01/123/21/1", "/01/10614141073465/21/1", "/01/10614141073464/21/%20"]
)
def test_a_malformed_code_gets_a_clear_4xx(module_node: RunningNode, path: str) -> None:
    response = httpx.get(module_node.api + path, timeout=10)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["field"] in ("gtin", "serial")


def test_an_items_qr_code_encodes_its_scan_page(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    url = _demo_url(module_node)
    gtin, serial = url.split("/")[-3], url.split("/")[-1]
    target = tmp_path / "item.png"
    result = cli("trace", "qr", gtin, "--serial", serial, "--out", target, "--api", module_node.api)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = httpx.get(f"{module_node.api}/v1/provenance/items/{gtin}/{serial}/qr.svg", timeout=10)
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (Debian zbar-tools) is not installed: the decode check is skipped")
    decoded = subprocess.run(["zbarimg", "-q", str(target)], capture_output=True, text=True)
    assert decoded.stdout.strip() == f"QR-Code:{url}"


def test_a_printable_sheet_holds_the_codes_of_a_products_items(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    gtin = _demo_url(module_node).split("/")[-3]
    for kind, magic in (("pdf", b"%PDF-"), ("png", b"\x89PNG"), ("svg", b"<")):
        target = tmp_path / f"sheet.{kind}"
        result = cli("trace", "qr", gtin, "--out", target, "--api", module_node.api)
        assert result.returncode == 0, result.stderr
        assert target.read_bytes().lstrip().startswith(magic), kind
    assert (tmp_path / "sheet.svg").read_text().count("0012") >= 1  # labels are the serials


def test_an_items_journey_exports_as_epcis_and_reimports_alike(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    url = _demo_url(module_node)
    gtin, serial = url.split("/")[-3], url.split("/")[-1]
    target = tmp_path / "journey.jsonld"
    result = cli("trace", "export", gtin, serial, "--out", target, "--api", module_node.api)
    assert result.returncode == 0, result.stderr
    exported = document_events_to_chain(target.read_text())
    item = httpx.get(f"{module_node.api}/v1/provenance/items/{gtin}/{serial}", timeout=10).json()
    assert len(exported) == len(item["steps"]) == 7
    assert [event["biz_step"] for event in exported] == [s["biz_step"] for s in item["steps"]]


def test_a_brand_sees_its_items_and_their_last_step(module_node: RunningNode) -> None:
    _demo_url(module_node)
    listed = httpx.get(f"{module_node.api}/v1/provenance/brands/brand/items", timeout=10).json()
    by_serial = {item["serial"]: item for item in listed["items"]}
    assert len(by_serial) >= 12
    assert by_serial["0001"]["last_step"] == "urn:xinchain:bizstep:delivering"
    assert by_serial["0002"]["last_step"] == "storing"
    assert by_serial["0002"]["last_by"] == "Hangzhou bonded warehouse"
