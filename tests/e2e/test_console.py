"""The web console (`/`, src/xinchain/web/console.html) in a real Chromium against a real node.

Scenarios:

* The header names the chain id of the node that serves the page.
* The height in the header grows while the page is open. The page polls the node every 3 s.
* On a phone (390 x 844) nothing is wider than the screen: not the page as it first loads, and
  not the page after it shows an anchored file's hash and records.
* A file anchored with `xinchain notary put` and then chosen in the file input shows "Anchored"
  with the file's SHA-256. Its receipt link downloads `<file>.receipt.json`, and
  `xinchain verify` accepts that receipt for the file.
* A file never anchored shows "Not anchored" with its SHA-256.

One test saves a screenshot to the artifacts directory (see conftest.py): the phone page
showing a lookup result. Look at it there.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import ConsoleNode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

# The console script installed next to this interpreter: the same entry point users run.
XINCHAIN = Path(sys.executable).parent / "xinchain"

# Blocks come about once a second and the page polls every 3 s: a few polls are enough.
height_growth_timeout_ms = 15_000
# A `notary put` of one file is done in about a second on a loopback node.
cli_timeout_s = 60.0
# How many too-wide elements a failing overflow test names.
culprits_listed_max = 10

# Measures against the layout viewport's width, not `innerWidth`: in phone emulation Chromium
# zooms out to fit a page that is too wide, and `innerWidth` grows with it, so `scrollWidth <=
# innerWidth` would hold even for a page that overflows.
# Then names the culprits, for the failure message. A too-wide element widens the grid column of
# every section, so being past the right edge does not make an element a culprit. To find them,
# every element is briefly allowed to shrink (`min-width: 0`); the deepest elements whose content
# still sticks out of their own box are the culprits.
MEASURE_WIDTH = """() => {
  const width = document.documentElement.clientWidth;
  const scrollWidth = document.scrollingElement.scrollWidth;
  const shrink = document.createElement("style");
  shrink.textContent = "* { min-width: 0 !important; }";
  document.head.append(shrink);
  const sticking = [...document.body.querySelectorAll("*")].filter((element) =>
    element.scrollWidth > element.clientWidth && element.clientWidth > 0);
  const culprits = sticking
    .filter((element) => !sticking.some((other) => other !== element && element.contains(other)))
    .map((element) => `<${element.tagName.toLowerCase()}`
      + (element.id ? ` id="${element.id}"` : "")
      + (element.className ? ` class="${element.className}"` : "")
      + `>: content ${element.scrollWidth} px wide in a ${element.clientWidth} px box: `
      + JSON.stringify(element.textContent.trim().replace(/\\s+/g, " ").slice(0, 60)));
  shrink.remove();
  return { scrollWidth, width, innerWidth, culprits };
}"""

HEADER_HEIGHT_ABOVE = """(height) => {
  const match = /height (\\d+)/.exec(document.getElementById("chain").textContent);
  return match !== null && Number(match[1]) > height;
}"""


def xinchain(*arguments: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [XINCHAIN, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=cli_timeout_s,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )


def new_document(directory: Path, name: str) -> Path:
    """A small file whose contents no other test, and no earlier run, has written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"{uuid.uuid4().hex} {name}\n", encoding="utf-8")
    return path


def anchor(node: ConsoleNode, document: Path, receipts: Path) -> None:
    put = xinchain(
        "notary", "put", document, "--home", node.home, "--api", node.url, "--out", receipts
    )
    assert put.returncode == 0, f"notary put failed: {put.stdout}{put.stderr}"


def sha256_hex(document: Path) -> str:
    return hashlib.sha256(document.read_bytes()).hexdigest()


def wait_until_loaded(page: Page, node: ConsoleNode) -> None:
    """The header shows the node's status, and the latest blocks table has rows."""
    expect(page.locator("#chain")).to_contain_text(node.chain_id)
    expect(page.locator("#blocks tr").first).to_be_visible()


def choose_file(page: Page, document: Path) -> None:
    page.locator("#file").set_input_files(document)


def assert_fits_width(page: Page) -> None:
    measured = page.evaluate(MEASURE_WIDTH)
    listed = (
        "\n".join(measured["culprits"][:culprits_listed_max])
        or "(no one element: see the screenshot)"
    )
    assert measured["scrollWidth"] <= measured["width"], (
        f"the page is {measured['scrollWidth']} px wide on a {measured['width']} px screen "
        f"(innerWidth {measured['innerWidth']}); too wide to fit:\n{listed}"
    )


def test_header_names_the_chain(desktop_page: Page, console_node: ConsoleNode) -> None:
    expect(desktop_page.locator("#chain")).to_contain_text(f"{console_node.chain_id} · ")


def test_header_height_grows(desktop_page: Page, console_node: ConsoleNode) -> None:
    header = desktop_page.locator("#chain")
    expect(header).to_contain_text(re.compile(r"height \d+"))
    first = int(re.findall(r"height (\d+)", header.inner_text())[0])
    desktop_page.wait_for_function(HEADER_HEIGHT_ABOVE, arg=first, timeout=height_growth_timeout_ms)


def test_phone_page_fits_the_screen(phone_page: Page, console_node: ConsoleNode) -> None:
    assert phone_page.viewport_size == {"width": 390, "height": 844}
    wait_until_loaded(phone_page, console_node)
    assert_fits_width(phone_page)


def test_phone_page_fits_the_screen_with_a_lookup_result(
    phone_page: Page, console_node: ConsoleNode, tmp_path: Path, artifacts: Path
) -> None:
    document = new_document(tmp_path / "documents", "invoice-2024-0117.pdf")
    anchor(console_node, document, tmp_path / "receipts")
    wait_until_loaded(phone_page, console_node)
    choose_file(phone_page, document)
    expect(phone_page.locator("#lookup a")).to_have_text("receipt")
    phone_page.screenshot(path=artifacts / "console-phone.png", full_page=True)
    assert_fits_width(phone_page)


def test_anchored_file_shows_anchored_and_a_receipt_that_verifies(
    desktop_page: Page, console_node: ConsoleNode, tmp_path: Path
) -> None:
    document = new_document(tmp_path / "documents", "contract.pdf")
    anchor(console_node, document, tmp_path / "receipts")
    wait_until_loaded(desktop_page, console_node)
    choose_file(desktop_page, document)
    verdict = desktop_page.locator("#lookup p")
    expect(verdict).to_have_text(f"Anchored 1 time(s): {sha256_hex(document)}")
    expect(verdict).to_have_class("ok")

    with desktop_page.expect_download() as download_info:
        desktop_page.locator("#lookup a", has_text="receipt").click()
    download = download_info.value
    assert download.suggested_filename == "contract.pdf.receipt.json"
    receipt = tmp_path / "downloads" / download.suggested_filename
    download.save_as(receipt)
    verified = xinchain("verify", receipt, "--file", document)
    assert verified.returncode == 0, f"verify refused: {verified.stdout}{verified.stderr}"
    assert verified.stdout.startswith("valid: contract.pdf"), verified.stdout


def test_file_never_anchored_shows_not_anchored(
    desktop_page: Page, console_node: ConsoleNode, tmp_path: Path
) -> None:
    document = new_document(tmp_path / "documents", "never-anchored.txt")
    wait_until_loaded(desktop_page, console_node)
    choose_file(desktop_page, document)
    verdict = desktop_page.locator("#lookup p")
    expect(verdict).to_have_text(f"Not anchored: {sha256_hex(document)}")
    expect(verdict).to_have_class("bad")
    expect(desktop_page.locator("#lookup a")).to_have_count(0)
