"""The copyright console (`/copyright`, src/xinchain/web/copyright.html) in a real Chromium
against a real node, on a desktop window (1280 x 800) and an emulated phone (390 x 844).

The gateway token is the one on the `console:` line `xinchain up` prints, as a user gets it.
Photos are drawn by tests/support/image_set.py from this module's seed; each test uses its own
image indexes, so no two tests register the same photo.

Scenarios:

* Registering an uploaded photo (desktop and phone) shows the work: its title as text (markup in
  it is not interpreted), the SHA-256 and PDQ hash an independent hashing gives, the quality and
  the block; its "download receipt" link downloads a receipt that `verify_receipt` accepts
  offline and that proves that same work.
* Registering a half-size copy of a registered photo lists the original among the similar works.
* Registering a picture with little detail shows the low-quality warning; a flat colour is
  refused, the page saying why (in Chinese and English).
* Searching with a copy under a price banner (desktop and phone) lists the work as found by
  local features, with its points in place.
* Searching with a half-size mirrored copy (desktop and phone) lists the work with the distance
  and orientation an independent hashing gives; a photo of noise shows "no match".
* From "my works", recording evidence for a work (desktop and phone) with a captured copy, a URL
  and a note shows the evidence; its package downloads and passes `verify_package` offline and
  proves that evidence; the work's evidence count goes up, and "my evidence" lists it with a
  package link.
* A wrong token shows the API's reason and registers nothing; with no token the page asks for one,
  and a token pasted into that field registers.
* The tabs move with the arrow keys.
* Nothing is wider than the phone: as the page loads, and in each phone scenario once its
  results are shown.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copy_kinds
import httpx
import numpy as np
import pytest
from conftest import DESKTOP, PHONE, ConsoleNode, Viewport
from image_set import flip, generate_photo, resize_half
from PIL import Image
from playwright.sync_api import Page, expect
from receipts import verify_receipt

from xinchain.apps.copyright.evidence import verify_package
from xinchain.apps.copyright.perceptual import (
    DIHEDRAL,
    distance,
    hash_image,
    query_pdq,
    work_hashes,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SEED = 20_261_127  # this module's image set (image_set.generate_photo)
# How long `xinchain up` may take to print its `console:` line after `ready`.
console_line_timeout_s = 30.0
# A gateway registration waits for its block; the page's default 10 s is plenty on loopback.
api_timeout_s = 30.0
VIEWPORTS = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]

# Measures against the layout viewport's width, not `innerWidth` (which grows when a phone zooms
# out to fit a page that is too wide); names the elements whose content sticks out of them.
MEASURE_WIDTH = """() => {
  const width = document.documentElement.clientWidth;
  const scrollWidth = document.scrollingElement.scrollWidth;
  const culprits = [...document.body.querySelectorAll("*")]
    .filter((element) => element.scrollWidth > element.clientWidth && element.clientWidth > 0)
    .map((element) => element.tagName.toLowerCase() + (element.id ? "#" + element.id : ""));
  return { scrollWidth, width, culprits: culprits.slice(0, 10) };
}"""


# --- helpers -----------------------------------------------------------------------------------


def gateway_token(node: ConsoleNode) -> str:
    """The token on the `console:` line `xinchain up` prints."""
    deadline = time.monotonic() + console_line_timeout_s
    while time.monotonic() < deadline:
        match = re.search(r"^console: \S+/copyright#token=(\S+)$", node.output(), re.MULTILINE)
        if match:
            return match[1]
        time.sleep(0.2)
    raise AssertionError(f"no console: line within {console_line_timeout_s} s:\n{node.output()}")


@pytest.fixture(scope="module")
def token(console_node: ConsoleNode) -> str:
    return gateway_token(console_node)


@pytest.fixture(scope="module")
def genesis_hash(console_node: ConsoleNode) -> str:
    return str(httpx.get(f"{console_node.url}/v1/status").json()["genesis_hash"])


def photo(index: int) -> bytes:
    return generate_photo(index, SEED).data


def write(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def png(pixels: np.ndarray) -> bytes:
    output = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(output, "PNG")
    return output.getvalue()


def register_by_api(node: ConsoleNode, token: str, data: bytes, title: str) -> dict[str, Any]:
    response = httpx.post(
        f"{node.url}/v1/copyright/images/register",
        params={"title": title},
        content=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=api_timeout_s,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def nearest(copy: bytes, original: bytes, searched: bool = False) -> tuple[int, str]:
    """The distance and orientation a search or evidence should report, hashed here: the nearest
    of the copy's dihedral hashes (and its mirrored pixels') to any of the original's stored
    hashes (its PDQ and crops). `searched`: with the hashes a search by hashes and local
    features looks up (query_pdq: not the mirrored pixels')."""
    hashes = work_hashes(original)
    stored = [hashes.pdq.pdq, *hashes.crops]
    queries = (query_pdq if searched else hash_image)(copy).hashes
    found = [
        (min(distance(query, known) for known in stored), name)
        for query, name in zip(queries, DIHEDRAL[: len(queries)], strict=True)
    ]
    return min(found, key=lambda pair: pair[0])


def open_copyright(
    open_console: Callable[[Viewport], Page], node: ConsoleNode, viewport: Viewport, fragment: str
) -> Page:
    """The copyright page in a fresh browser context (so with nothing in localStorage)."""
    page = open_console(viewport)
    page.goto(f"{node.url}/copyright{fragment}")
    expect(page.locator("#chain")).to_contain_text(node.chain_id)
    return page


def search_on_page(
    open_console: Callable[[Viewport], Page],
    node: ConsoleNode,
    viewport: Viewport,
    image: Path,
) -> Page:
    """The copyright page's search tab, after searching for `image`."""
    page = open_copyright(open_console, node, viewport, "")
    page.locator("#tab-search").click()
    page.locator("#search-file").set_input_files(image)
    page.locator("#search-submit").click()
    return page


def assert_fits_width(page: Page) -> None:
    measured = page.evaluate(MEASURE_WIDTH)
    assert measured["width"] == PHONE.width, measured
    assert measured["scrollWidth"] <= measured["width"], measured


def register_on_page(page: Page, image: Path, title: str) -> None:
    page.locator("#register-file").set_input_files(image)
    page.locator("#register-title").fill(title)
    page.locator("#register-submit").click()


def download(page: Page, link: str, directory: Path) -> Path:
    with page.expect_download() as info:
        page.locator(link).click()
    path = directory / info.value.suggested_filename
    info.value.save_as(path)
    return path


# --- register ----------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_registering_an_upload_shows_the_work_and_a_receipt_that_verifies(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    genesis_hash: str,
    viewport: Viewport,
    tmp_path: Path,
) -> None:
    data = photo(1 if viewport.phone else 2)
    sha256 = hashlib.sha256(data).hexdigest()
    title = f"<img src=x onerror=alert(1)> 保温杯 & mug {viewport.width}"
    page = open_copyright(open_console, console_node, viewport, f"#token={token}")
    register_on_page(page, write(tmp_path, "mug.jpg", data), title)

    result = page.locator("#register-result")
    expect(result.locator(".notice.ok").first).to_contain_text("已登记上链 Registered in block")
    expect(page.locator("#register-title-shown")).to_have_text(title)
    expect(result.locator("img")).to_have_count(0)  # the title's markup stayed text
    text = result.inner_text()
    assert sha256 in text
    assert work_hashes(data).pdq.pdq_hex in text
    assert "没有发现已登记的近似作品" in text
    assert page.url == f"{console_node.url}/copyright"  # the token is off the address bar

    receipt_path = download(page, "#register-receipt", tmp_path)
    assert receipt_path.name == f"work-{sha256[:16]}.receipt.json"
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    verified = verify_receipt(receipt, None, expected_genesis_hash=genesis_hash)
    assert receipt["work"]["sha256"] == sha256 and receipt["work"]["title"] == title
    assert receipt["work"]["org"] == verified.sender == "platform"
    expect(result.locator(".notice.ok").first).to_have_text(
        f"已登记上链 Registered in block {verified.height}"
    )
    if viewport.phone:
        assert_fits_width(page)


def test_registering_a_copy_lists_the_original_as_similar(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    tmp_path: Path,
) -> None:
    original = photo(3)
    register_by_api(console_node, token, original, "Original tube 原图")
    copy = resize_half(original)
    page = open_copyright(open_console, console_node, DESKTOP, f"#token={token}")
    register_on_page(page, write(tmp_path, "copy.jpg", copy), "Resized tube 缩小副本")

    similar = page.locator("#register-similar li")
    expect(similar).to_have_count(1)
    expect(similar.locator("h3")).to_have_text("Original tube 原图")
    expected, _ = nearest(copy, original)
    expect(similar).to_contain_text(f"{expected} / 256 位不同")
    expect(similar).to_contain_text(hashlib.sha256(original).hexdigest())


def test_registering_a_picture_with_little_detail_warns_of_low_quality(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    tmp_path: Path,
) -> None:
    pixels = np.full((240, 320, 3), (212, 96, 40), np.uint8)
    pixels[100:124, 140:164] = (250, 250, 250)  # one small square: PDQ quality about 12
    sparse = png(pixels)
    page = open_copyright(open_console, console_node, DESKTOP, f"#token={token}")
    register_on_page(page, write(tmp_path, "sparse.png", sparse), "Orange, one square 几乎纯色")
    result = page.locator("#register-result")
    expect(result.locator(".notice.warn")).to_contain_text("图片质量低")
    assert f"{work_hashes(sparse).pdq.quality} / 100 · 质量低 low" in result.inner_text()


def test_registering_a_flat_colour_is_refused_saying_why(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    tmp_path: Path,
) -> None:
    flat = png(np.full((240, 320, 3), (212, 96, 40), np.uint8))
    page = open_copyright(open_console, console_node, DESKTOP, f"#token={token}")
    register_on_page(page, write(tmp_path, "flat.png", flat), "Flat orange 纯色")
    refusal = page.locator("#register-result .notice.bad")
    expect(refusal).to_contain_text("图片无法使用")
    expect(refusal).to_contain_text("no detail to hash")


# --- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_searching_with_a_resized_mirrored_copy_lists_the_work_with_its_distance(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    viewport: Viewport,
    tmp_path: Path,
) -> None:
    original = photo(4 if viewport.phone else 5)
    title = f"Shoe 运动鞋 {viewport.width}"
    registered = register_by_api(console_node, token, original, title)["work"]
    copy = flip(resize_half(original))
    page = search_on_page(open_console, console_node, viewport, write(tmp_path, "found.jpg", copy))

    match = page.locator("#search-matches li", has_text=registered["sha256"])
    expect(match).to_have_count(1)
    # The page's search skips the mirrored pixels' hash (its points find a mirror image); PDQ's
    # derived mirror hash can lie beyond the match line for a drawing like this one.
    expected_distance, orientation = nearest(copy, original, searched=True)
    assert orientation != "original"  # a mirror image is nearest through the dihedral hashes
    verdict = "匹配 a match" if expected_distance <= 31 else "超出匹配阈值 not a match"
    expect(match.locator("h3")).to_have_text(title)
    expect(match).to_contain_text(f"{expected_distance} / 256 位不同 bits differ · {verdict}")
    expect(match).to_contain_text(f"({orientation})")
    if expected_distance > 31:
        expect(match).to_contain_text("局部特征点 local features")
    # A search by hash alone hashes the mirrored pixels too, and finds the copy that way.
    by_hash = httpx.post(
        f"{console_node.url}/v1/copyright/images/search", params={"by": "hash"}, content=copy
    ).json()["matches"]
    hashed = [m for m in by_hash if m["work"]["sha256"] == registered["sha256"]]
    assert [m["distance"] for m in hashed] == [nearest(copy, original)[0]]
    assert hashed[0]["distance"] <= 31 and hashed[0]["found_by"] == ["hash"]
    expect(match).to_contain_text("机构 org platform")
    expect(match.locator("img.thumb")).to_be_visible()
    moment = time.gmtime(registered["time_ms"] / 1000 + 8 * 3600)
    expect(match).to_contain_text(time.strftime("%Y-%m-%d %H:%M:%S 北京时间", moment))
    if viewport.phone:
        assert_fits_width(page)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_searching_with_a_bannered_copy_says_it_was_found_by_local_features(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    viewport: Viewport,
    tmp_path: Path,
) -> None:
    original = photo(10 if viewport.phone else 11)
    registered = register_by_api(console_node, token, original, "Tin 罐头")["work"]
    bannered = io.BytesIO()
    copy_kinds.make(Image.open(io.BytesIO(original)), "banner", 3).save(bannered, "JPEG")
    page = search_on_page(
        open_console, console_node, viewport, write(tmp_path, "bannered.jpg", bannered.getvalue())
    )

    match = page.locator("#search-matches li", has_text=registered["sha256"])
    expect(match).to_have_count(1)
    expect(match).to_contain_text("局部特征点 local features")
    expect(match).to_contain_text(re.compile(r"\d+ / 64 个登记特征点在原位"))
    if viewport.phone:
        assert_fits_width(page)


def test_searching_with_an_unregistered_image_shows_no_match(
    open_console: Callable[[Viewport], Page], console_node: ConsoleNode, tmp_path: Path
) -> None:
    noise = np.random.default_rng(SEED).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    page = search_on_page(
        open_console, console_node, DESKTOP, write(tmp_path, "noise.png", png(noise))
    )
    expect(page.locator("#search-result")).to_contain_text("没有匹配的已登记作品 No match")
    expect(page.locator("#search-matches")).to_have_count(0)


# --- evidence ----------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_evidence_recorded_from_my_works_downloads_a_package_that_verifies(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    genesis_hash: str,
    viewport: Viewport,
    tmp_path: Path,
) -> None:
    original = photo(6 if viewport.phone else 7)
    registered = register_by_api(console_node, token, original, f"Jar 果酱罐 {viewport.width}")
    sha256 = registered["work"]["sha256"]
    copy = flip(resize_half(original))
    url = f"https://shop.example/item/{viewport.width}?from=search&x=<b>"
    page = open_copyright(open_console, console_node, viewport, f"#token={token}")
    page.locator("#tab-works").click()
    card = page.locator(f"#works li[data-sha256='{sha256}']")
    expect(card.locator(".evidence-count")).to_have_text("0 条 piece(s)")
    card.get_by_role("button", name="记录侵权证据 Record evidence").click()
    page.locator("#evidence-file").set_input_files(write(tmp_path, "captured-copy.jpg", copy))
    page.locator("#evidence-url").fill(url)
    page.locator("#evidence-note").fill("Found by a buyer's complaint 买家投诉发现")
    page.locator("#evidence-submit").click()

    result = page.locator("#evidence-result")
    expect(result.locator(".notice.ok")).to_contain_text("已存证上链 Evidence recorded in block")
    expected_distance, _ = nearest(copy, original)
    expect(result).to_contain_text(f"{expected_distance} / 256 位不同")
    expect(card.locator(".evidence-count")).to_have_text("1 条 piece(s)")
    if viewport.phone:
        assert_fits_width(page)

    package = download(page, "#evidence-package", tmp_path)
    checked = verify_package(package.read_bytes(), expected_genesis_hash=genesis_hash)
    assert checked.work["sha256"] == sha256
    assert checked.evidence["url"] == url
    assert checked.evidence["note"] == "Found by a buyer's complaint 买家投诉发现"
    assert checked.evidence["distance"] == expected_distance
    assert checked.evidence["files"] == [
        {"name": "captured-copy.jpg", "sha256": hashlib.sha256(copy).hexdigest()}
    ]
    evidence_id = checked.evidence_receipt.document_hash  # the evidence record's digest
    assert package.name == f"evidence-{evidence_id[:16]}.zip"
    expect(result).to_contain_text(evidence_id)

    page.locator("#tab-evidence").click()
    listed = page.locator("#evidence-list li", has_text=evidence_id)
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(url)
    package_link = listed.get_by_role("link", name="下载证据包 Download evidence package")
    expect(package_link).to_have_attribute("href", f"/v1/copyright/evidence/{evidence_id}/package")
    if viewport.phone:
        assert_fits_width(page)


# --- the token ---------------------------------------------------------------------------------


def test_a_wrong_token_shows_the_apis_reason_and_registers_nothing(
    open_console: Callable[[Viewport], Page], console_node: ConsoleNode, tmp_path: Path
) -> None:
    data = photo(8)
    page = open_copyright(open_console, console_node, PHONE, "#token=not-the-token")
    register_on_page(page, write(tmp_path, "bag.jpg", data), "Bag 手提袋")
    error = page.locator("#register-result .notice.bad")
    expect(error).to_have_text(
        "网关令牌错误或缺失 The gateway token is wrong or missing: expected the header "
        "'Authorization: Bearer <gateway token>'"
    )
    expect(page.locator("#token")).to_be_focused()
    missing = httpx.get(f"{console_node.url}/v1/copyright/works/{hashlib.sha256(data).hexdigest()}")
    assert missing.status_code == 404, missing.text
    assert_fits_width(page)


def test_with_no_token_the_page_asks_for_one_and_a_pasted_token_registers(
    open_console: Callable[[Viewport], Page],
    console_node: ConsoleNode,
    token: str,
    tmp_path: Path,
) -> None:
    page = open_copyright(open_console, console_node, DESKTOP, "")
    expect(page.locator("#token-state")).to_have_text("未设置 not set")
    expect(page.locator("#token")).to_be_visible()
    register_on_page(page, write(tmp_path, "box.jpg", photo(9)), "Box 礼盒")
    expect(page.locator("#register-result .notice.bad")).to_contain_text("需要网关令牌")

    page.locator("#token").fill(token)
    page.get_by_role("button", name="保存 Save").click()
    expect(page.locator("#token-state")).to_have_text("已设置 set")
    page.locator("#register-submit").click()
    expect(page.locator("#register-result .notice.ok").first).to_contain_text("已登记上链")


# --- the page ----------------------------------------------------------------------------------


def test_the_tabs_move_with_the_arrow_keys(
    open_console: Callable[[Viewport], Page], console_node: ConsoleNode
) -> None:
    page = open_copyright(open_console, console_node, DESKTOP, "")
    page.locator("#tab-register").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-search")).to_be_focused()
    expect(page.locator("#tab-search")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-search")).to_be_visible()
    expect(page.locator("#panel-register")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#panel-evidence")).to_be_visible()
    page.keyboard.press("ArrowRight")  # wraps round to the first
    expect(page.locator("#panel-register")).to_be_visible()


def test_the_phone_page_fits_the_screen(
    open_console: Callable[[Viewport], Page], console_node: ConsoleNode, artifacts: Path
) -> None:
    page = open_copyright(open_console, console_node, PHONE, "")
    assert page.viewport_size == {"width": PHONE.width, "height": PHONE.height}
    assert_fits_width(page)
    for tab in ("#tab-search", "#tab-works", "#tab-evidence"):
        page.locator(tab).click()
        assert_fits_width(page)
    page.screenshot(path=str(artifacts / "copyright-phone.png"), full_page=True)
