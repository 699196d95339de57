"""The demo item's public scan page in a real browser (Debian's chromium), on a phone.

Scenarios:
- the page printed on `xinchain up`'s `demo:` line shows every step of the journey, each with
  its verified mark, in Chinese for a zh-CN phone and in English for an en-US one;
- nothing overflows the phone's width;
- a step's receipt downloads from the page and passes `xinchain verify` offline.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ConsoleNode
from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.slow  # runs real processes (a node, a browser) or a large set

XINCHAIN = Path(sys.executable).parent / "xinchain"
STEPS = 7  # commissioning, packing, shipping, customs clearance, receiving, storing, delivering
demo_timeout_s = 60.0


def _demo_url(node: ConsoleNode) -> str:
    deadline = time.monotonic() + demo_timeout_s
    while time.monotonic() < deadline:
        match = re.search(r"demo: (\S+)", node.output())
        if match:
            return match[1]
        time.sleep(0.2)
    raise AssertionError(f"no demo: line within {demo_timeout_s} s:\n{node.output()}")


def _open(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    return page


def test_chinese_phone_sees_every_step_verified(
    console_node: ConsoleNode, phone: Callable[[str], BrowserContext], artifacts: Path
) -> None:
    page = _open(phone("zh-CN"), _demo_url(console_node))
    assert page.locator("li.step").count() == STEPS
    assert page.locator("li.step .ok").count() == STEPS
    text = page.inner_text("main")
    for label in ("生产赋码", "装箱", "发运", "海关清关", "入库", "保税仓储存", "已送达消费者"):
        assert label in text, label
    assert "链上已验证" in text and "292420261000123456" in text
    page.screenshot(path=str(artifacts / "scan-zh.png"), full_page=True)


def test_english_phone_sees_english_and_nothing_overflows(
    console_node: ConsoleNode, phone: Callable[[str], BrowserContext]
) -> None:
    page = _open(phone("en-US"), _demo_url(console_node))
    text = page.inner_text("main")
    assert "Customs cleared" in text and "Verified on chain" in text
    overflow = page.evaluate(
        "document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0


def test_a_receipt_downloaded_from_the_page_verifies_offline(
    console_node: ConsoleNode, phone: Callable[[str], BrowserContext], tmp_path: Path
) -> None:
    page = _open(phone("en-US"), _demo_url(console_node))
    with page.expect_download() as download:
        page.locator(
            "li.step[data-step='urn:xinchain:bizstep:customs_clearance'] a.receipt"
        ).click()
    target = tmp_path / "customs.receipt.json"
    download.value.save_as(target)
    result = subprocess.run(
        [str(XINCHAIN), "verify", str(target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid: event urn:xinchain:bizstep:customs_clearance")
