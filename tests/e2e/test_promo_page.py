"""A promotion's public ranking page (`/promo/<id>`) and its "check my rank" form, in a real
Chromium emulating a phone (390 x 844), against a real node.

Setup, once for the module, through the Python SDK: the brand (a merchant) opens a promotion
whose window ends a few seconds from now, with 3 winners; the platform (the payment org) anchors
12 paid orders of 12 buyers, some paid in the same millisecond, and 450 orders to a second
promotion; the node, a module's own, is restarted with its clock past the windows' end and the
grace after it (libfaketime, as if the five minutes had passed); one more order, paid inside the
second window, arrives then, too late to rank; both promotions are closed and their rankings
committed.

Scenarios:

* The page lists every order in the order of an independent sort (payment time, then order
  number), with masked buyers and masked order numbers and never the full ones; the first 3
  rows, and only they, are marked as winners; the page says the ranking is final. In Chinese for
  a zh-CN phone, in English for an en-US one.
* The form shows the rank of an order number typed in, of 12, with the rank an independent sort
  gives: the third order, a winner only by the order-number tie break (Chinese); the fourth, paid
  in the same millisecond, a loser (English).
* The receipt linked from the form downloads and passes `xinchain verify` offline.
* An order number not in the promotion shows "no such order", in either language, and no receipt.
* Nothing is wider than the phone, with the ranking and a form result on the page.
* 450 orders are three pages of 200: page 1 lists ranks 1-200 and says "Page 1 of 3 · 450
  orders"; Next leads to ranks 201-400, Last to 401-450, and typing 2 into the page box to page
  2; the first page offers no Previous link, the last no Next.
* The form, for the order at rank 420, links the page that shows it: following the link shows
  that order's row on page 3.
* The order that arrived too late: the page counts it ("1 orders arrived too late to rank"), and
  the form says so for its number, in either language.

One test saves a screenshot to the artifacts directory (see conftest.py): the Chinese phone page
showing a winner's rank. Look at it there.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PHONE, ConsoleNode, free_ports
from playwright.sync_api import BrowserContext, Page, expect

from xinchain.apps.promo.contract import payment_skew_ms
from xinchain.client.sdk import Client
from xinchain.node.home import Home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# The console script installed next to this interpreter: the same entry point users run.
XINCHAIN = Path(sys.executable).parent / "xinchain"
MERCHANT = "brand"  # demo org with the merchant role
PAYMENT = "platform"  # demo org with the payment role: it anchors the orders
WINNERS = 3
GIFT = "Sample pack"
# The orders in the order the platform anchors them: (last four digits of the order number,
# milliseconds paid before the base time). Sorted, the third place goes to 1204 over 2077 and
# 5512, paid in the same millisecond, by its smaller order number; 3390 and 6613 tie too, and so
# do 1999 and 4420. Neither arrival order nor order number matches the ranking.
PAYMENTS = [
    (7301, 900),
    (1204, 2500),
    (5512, 2500),
    (3390, 400),
    (2077, 2500),
    (9146, 3100),
    (4420, 1800),
    (6613, 400),
    (8005, 0),
    (1999, 1800),
    (7050, 2900),
    (3001, 1200),
]
BUYER_FIRST_LETTERS = "cmwlzhqtyxbf"  # one per order: every masked buyer differs

# The window ends this long after the promotion opens: enough for the open and the anchoring
# to commit (a block a second), short enough that the module does not wait long to close.
window_left_ms = 5_000
# The window starts this long before the promotion opens, so that payments of the last few
# seconds fall inside it.
window_before_ms = 60_000
cli_timeout_s = 60.0
# The second promotion: enough orders for three pages of the ranking (200 rows a page).
paged_orders = 450
rows_a_page = 200


@dataclass(frozen=True)
class Order:
    number: str
    paid_ms: int
    buyer: str  # the buyer's account: only its salted hash and its mask go on chain

    @property
    def buyer_mask(self) -> str:
        return f"{self.buyer[0]}***{self.buyer[-1]}"

    @property
    def masked_number(self) -> str:
        return f"{self.number[:4]}****{self.number[-4:]}"


@dataclass(frozen=True)
class ClosedPromotion:
    promo: str
    ranked: list[Order]  # by the test's own sort, not the chain's
    unknown_order: str  # an order number of the same shape that was never anchored
    paged: str  # the second promotion, of `paged_orders` orders
    paged_ranked: list[Order]  # its orders by the test's own sort
    late_order: str  # anchored to the second promotion after the grace: not ranked

    def rank_of(self, suffix: int) -> tuple[int, Order]:
        for rank, order in enumerate(self.ranked, start=1):
            if order.number.endswith(f"{suffix:04d}"):
                return rank, order
        raise AssertionError(f"no order ending {suffix:04d}")


def close(call: Callable[[str, dict[str, Any]], dict[str, Any]], promo: str) -> dict[str, Any]:
    """Close until the ranking is committed (a large one takes a close a block)."""
    while True:
        answer = call("close", {"promo": promo})
        if "root" in answer:
            return answer


@pytest.fixture(scope="module")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleNode]:
    """The module's own node: its clock is moved on, which the session's node must not be."""
    node = ConsoleNode(tmp_path_factory.mktemp("promo-node") / "home", free_ports(1)[0])
    try:
        node.start()
        yield node
    finally:
        node.stop()


def paid(order: Order, salt: str) -> dict[str, Any]:
    return {
        "order_no": order.number,
        "paid_ms": order.paid_ms,
        "buyer_hash": hashlib.sha256(f"{salt}:{order.buyer}".encode()).hexdigest(),
        "buyer_mask": order.buyer_mask,
    }


@pytest.fixture(scope="module")
def promotion(console_node: ConsoleNode) -> ClosedPromotion:
    home = Home(console_node.home)
    promo = f"e2e-{secrets.token_hex(6)}"
    prefix = f"{secrets.randbelow(10**10):010d}"  # order numbers: 14 digits, this + the suffix
    salt = secrets.token_hex(8)
    with Client(console_node.url) as client:
        genesis = client.genesis()

        def caller(org: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
            key = home.org_key(genesis.suite, org)

            def call(method: str, args: dict[str, Any]) -> dict[str, Any]:
                return client.call(
                    genesis, key, sender=org, contract="promo", method=method, args=args
                )

            return call

        merchant, platform = caller(MERCHANT), caller(PAYMENT)
        opened_ms = console_node.now_ms()
        ends_ms = opened_ms + window_left_ms
        merchant(
            "open",
            {
                "promo": promo,
                "title": "First 3 buyers get a gift",
                "gift": GIFT,
                "starts_ms": opened_ms - window_before_ms,
                "ends_ms": ends_ms,
                "winners": WINNERS,
            },
        )
        base_ms = min(console_node.now_ms(), ends_ms - 1)  # every payment inside the window
        orders = [
            Order(f"{prefix}{suffix:04d}", base_ms - before_ms, f"{letter}buyer{suffix}")
            for (suffix, before_ms), letter in zip(PAYMENTS, BUYER_FIRST_LETTERS, strict=True)
        ]
        anchored = [paid(order, salt) for order in orders]
        assert platform("order", {"promo": promo, "orders": anchored})["orders"] == len(orders)
        paged = f"{promo}-paged"
        window = {"starts_ms": opened_ms - window_before_ms, "ends_ms": ends_ms}
        merchant(
            "open", {"promo": paged, "title": "First 100", "gift": GIFT, "winners": 100, **window}
        )
        many = [
            Order(f"9{prefix}{n:04d}", base_ms - n * 7 % 3_000, f"p{n}z")
            for n in range(paged_orders)
        ]
        assert platform("order", {"promo": paged, "orders": [paid(o, salt) for o in many]})
        console_node.restart_past(ends_ms + payment_skew_ms)
        late = Order(f"8{prefix}0001", ends_ms - 1_000, "late1")
        answer = platform("order", {"promo": paged, "orders": [paid(late, salt)]})
        assert [entry["order_no"] for entry in answer["late"]] == [late.number], answer
        assert close(merchant, promo)["size"] == len(orders)
        assert close(merchant, paged)["size"] == paged_orders
    ranked = sorted(orders, key=lambda order: (order.paid_ms, int(order.number)))
    paged_ranked = sorted(many, key=lambda order: (order.paid_ms, int(order.number)))
    return ClosedPromotion(promo, ranked, f"{prefix}0000", paged, paged_ranked, late.number)


def open_ranking(
    phone: Callable[[str], BrowserContext], locale: str, node: ConsoleNode, promo: str
) -> Page:
    page = phone(locale).new_page()
    page.goto(f"{node.url}/promo/{promo}")
    return page


def check_rank(page: Page, order_number: str) -> None:
    page.locator("#order").fill(order_number)
    page.locator("#check button").click()


def paid_text(paid_ms: int, chinese: bool) -> str:
    """Beijing time on the Chinese page, UTC on the English one."""
    hours = 8 if chinese else 0
    zone = datetime.timezone(datetime.timedelta(hours=hours))
    second = datetime.datetime.fromtimestamp(paid_ms // 1000, zone)
    return f"{second:%m-%d %H:%M:%S}.{paid_ms % 1000:03d}"


def expected_rows(promotion: ClosedPromotion, chinese: bool) -> list[dict[str, Any]]:
    mark = "获奖" if chinese else "winner"
    return [
        {
            "win": rank <= WINNERS,
            "cells": [
                f"{rank} {mark}" if rank <= WINNERS else str(rank),
                order.buyer_mask,
                paid_text(order.paid_ms, chinese),
                order.masked_number,
            ],
        }
        for rank, order in enumerate(promotion.ranked, start=1)
    ]


def shown_rows(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.eval_on_selector_all(
        "tbody tr",
        "rows => rows.map((row) => ({win: row.classList.contains('win'), "
        "cells: [...row.cells].map((cell) => cell.textContent)}))",
    )
    return rows


def assert_lists_the_committed_ranking(page: Page, promotion: ClosedPromotion) -> None:
    chinese = page.evaluate("document.documentElement.lang") == "zh-CN"
    assert shown_rows(page) == expected_rows(promotion, chinese)
    text = page.inner_text("body")
    for order in promotion.ranked:
        assert order.number not in text, f"full order number {order.number} on the page"
        assert order.buyer not in text, f"buyer account {order.buyer} on the page"


def assert_fits_width(page: Page) -> None:
    # The layout viewport's width, not innerWidth: a phone zooms out to fit a page that is too
    # wide, and innerWidth grows with it (see test_console.py).
    measured = page.evaluate(
        """() => ({
          scrollWidth: document.scrollingElement.scrollWidth,
          width: document.documentElement.clientWidth,
          past: [...document.body.querySelectorAll("*")]
            .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth
              && !e.closest(".scroll"))
            .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")),
        })"""
    )
    assert measured["width"] == PHONE.width, measured
    assert measured["scrollWidth"] <= measured["width"], measured


def test_chinese_phone_lists_the_final_ranking_in_payment_then_order_number_order(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
) -> None:
    page = open_ranking(phone, "zh-CN", console_node, promotion.promo)
    assert_lists_the_committed_ranking(page, promotion)
    expect(page.locator(".status")).to_have_text("最终排名（已上链存证）")
    expect(page.locator("thead")).to_have_text("名次买家付款时间 (北京时间)订单号")
    expect(page.locator(".muted")).to_contain_text(f"前{WINNERS}名获赠：{GIFT}")


def test_english_phone_lists_the_final_ranking_in_payment_then_order_number_order(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
) -> None:
    page = open_ranking(phone, "en-US", console_node, promotion.promo)
    assert_lists_the_committed_ranking(page, promotion)
    expect(page.locator(".status")).to_have_text("Final ranking, committed on chain")
    expect(page.locator(".muted")).to_contain_text(f"The first {WINNERS} win: {GIFT}.")


def test_chinese_form_shows_a_winner_by_the_order_number_tie_break(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
    artifacts: Path,
) -> None:
    rank, order = promotion.rank_of(1204)
    assert rank == WINNERS  # the setup's point: 2077 and 5512 paid in the same millisecond
    page = open_ranking(phone, "zh-CN", console_node, promotion.promo)
    check_rank(page, order.number)
    result = page.locator("#my-rank")
    expect(result).to_have_text(f"您是第{rank}名（共{len(PAYMENTS)}单） · 您获得赠品")
    expect(result).to_have_class("ok")
    expect(page.locator("#rank-receipt")).to_have_text("下载名次存证回执")
    page.screenshot(path=str(artifacts / "promo-zh.png"), full_page=True)


def test_english_form_shows_a_loser_paid_in_the_same_millisecond_as_a_winner(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
) -> None:
    rank, order = promotion.rank_of(2077)
    assert rank == WINNERS + 1
    page = open_ranking(phone, "en-US", console_node, promotion.promo)
    check_rank(page, order.number)
    result = page.locator("#my-rank")
    expect(result).to_have_text(f"You are No. {rank} of {len(PAYMENTS)} · Not among the winners")
    expect(result).not_to_have_class("ok")


def test_a_rank_receipt_downloaded_from_the_form_verifies_offline(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
    tmp_path: Path,
) -> None:
    rank, order = promotion.rank_of(3390)
    page = open_ranking(phone, "en-US", console_node, promotion.promo)
    check_rank(page, order.number)
    with page.expect_download() as download:
        page.locator("#rank-receipt").click()
    assert download.value.suggested_filename == f"{order.number}.rank-receipt.json"
    receipt = tmp_path / download.value.suggested_filename
    download.value.save_as(receipt)
    result = subprocess.run(
        [str(XINCHAIN), "verify", str(receipt)],
        capture_output=True,
        text=True,
        timeout=cli_timeout_s,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        f"valid: order {order.number} at rank {rank} of {promotion.promo} "
    ), result.stdout


@pytest.mark.parametrize(
    ("locale", "message"),
    [("zh-CN", "本活动中没有该订单"), ("en-US", "No such order in this promotion")],
)
def test_an_unknown_order_number_shows_no_such_order(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
    locale: str,
    message: str,
) -> None:
    page = open_ranking(phone, locale, console_node, promotion.promo)
    check_rank(page, promotion.unknown_order)
    expect(page.locator("#result .bad")).to_have_text(message)
    expect(page.locator("#my-rank")).to_have_count(0)
    expect(page.locator("#rank-receipt")).to_have_count(0)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_nothing_is_wider_than_the_phone_with_a_rank_shown(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
    locale: str,
) -> None:
    page = open_ranking(phone, locale, console_node, promotion.promo)
    assert_fits_width(page)
    check_rank(page, promotion.ranked[-1].number)
    expect(page.locator("#rank-receipt")).to_be_visible()
    assert_fits_width(page)


def ranks_shown(page: Page) -> list[int]:
    cells: list[str] = page.eval_on_selector_all(
        "tbody tr", "rows => rows.map((row) => row.cells[0].textContent)"
    )
    return [int(cell.split()[0]) for cell in cells]


def test_the_ranking_pages_through_450_orders(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
) -> None:
    page = open_ranking(phone, "en-US", console_node, promotion.paged)
    assert ranks_shown(page) == list(range(1, rows_a_page + 1))
    expect(page.locator("#where").first).to_have_text("Page 1 of 3 · 450 orders")
    expect(page.locator(".pager a[rel=previous]")).to_have_count(0)
    page.locator(".pager a[rel=next]").first.click()
    expect(page.locator("#where").first).to_have_text("Page 2 of 3 · 450 orders")
    assert ranks_shown(page) == list(range(rows_a_page + 1, 2 * rows_a_page + 1))
    page.locator(".pager a[rel=last]").first.click()
    expect(page.locator("#where").first).to_have_text("Page 3 of 3 · 450 orders")
    assert ranks_shown(page) == list(range(2 * rows_a_page + 1, paged_orders + 1))
    expect(page.locator(".pager a[rel=next]")).to_have_count(0)
    box = page.locator(".go input[name=page]").first
    box.fill("2")
    box.press("Enter")
    expect(page.locator("#where").first).to_have_text("Page 2 of 3 · 450 orders")
    shown = page.eval_on_selector_all(
        "tbody tr", "rows => rows.map((row) => row.cells[3].textContent)"
    )
    numbers = [
        order.masked_number for order in promotion.paged_ranked[rows_a_page : 2 * rows_a_page]
    ]
    assert shown == [f"{n[:4]}****{n[-4:]}" for n in numbers] or shown == numbers


def test_the_form_links_the_page_that_shows_the_rank(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
) -> None:
    order = promotion.paged_ranked[419]
    page = open_ranking(phone, "zh-CN", console_node, promotion.paged)
    check_rank(page, order.number)
    expect(page.locator("#my-rank")).to_have_text(
        f"您是第420名（共{paged_orders}单） · 未进入获奖名次"
    )
    page.locator("#rank-page").click()
    expect(page.locator("#where").first).to_have_text(f"第 3 / 3 页 · 共 {paged_orders} 单")
    row = page.locator("tbody tr", has_text=order.masked_number)
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text("420")


@pytest.mark.parametrize(
    ("locale", "count", "message"),
    [
        (
            "zh-CN",
            "1 笔订单上链过晚，未参与排名（付款后超过 5 分钟才上链）",
            "该订单上链过晚，未参与排名",
        ),
        (
            "en-US",
            "1 orders arrived too late to rank (anchored more than 5 minutes after payment)",
            "This order arrived too late to rank",
        ),
    ],
)
def test_an_order_that_arrived_too_late_is_counted_and_says_so(
    console_node: ConsoleNode,
    promotion: ClosedPromotion,
    phone: Callable[[str], BrowserContext],
    locale: str,
    count: str,
    message: str,
) -> None:
    page = open_ranking(phone, locale, console_node, promotion.paged)
    expect(page.locator("#late")).to_have_text(count)
    check_rank(page, promotion.late_order)
    expect(page.locator("#result .bad")).to_have_text(message)
    expect(page.locator("#rank-receipt")).to_have_count(0)
