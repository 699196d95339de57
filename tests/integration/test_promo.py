"""Promotions on a real node: 50,000 orders ranked by the chain, every rigging attempt refused,
the CLI flow and the public ranking page.

The brand (a merchant) opens promotions; the platform (the payment org) anchors the paid
orders through the SDK; closing commits the ranking. A chain's block time is the node's clock,
so windows here are set from the node's clock; a close must wait out the grace after a window
(the payment skew, 5 minutes), which the tests skip by restarting the node with its clock that
much later (libfaketime), as waiting would.

Scenarios:

* 50,000 orders in one promotion, anchored as the platform in transactions of 1,000 by four
  client threads, in an arrival order unrelated to the ranking, paid within a few seconds of
  each other (about 10 orders per millisecond, so the order-number tie break decides most
  places); closed once the window has ended, then:
  - the committed ranking equals an independent sort by (payment time, order number): its root
    equals the root of the sorted entries, and paging through /ranking shows them in order;
  - /rank/{order_no} gives the independently sorted rank of a sample of 1,000 orders;
  - every one of the 50,000 rank receipts, fetched through the API, verifies offline and
    carries the order's entry at its independently sorted rank;
  - a receipt whose position was edited fails: the entry's rank; the anchor index; both
    edited alike;
  - `xinchain verify` passes 5 sampled receipts (first, last winner, first loser, middle, last).
* Fair to the last paid second: an order paid 1 s before the window's end and anchored 4
  minutes after it ranks; one paid 1 s after the end is refused with the reason, before the end
  and 4 minutes after it; close before the grace ends is refused, naming when it may close;
  after the grace the promotion closes and the late-anchored order holds its place.
* Rigging attempts, each refused with an error naming what was wrong, and nothing recorded:
  an order paid before the window starts; at its end (a millisecond earlier is accepted);
  after its end; a payment time later than the block time plus the skew; an order number twice
  in one transaction; an order number anchored again in a later transaction; orders anchored by
  the merchant's own org (the platform opens as a merchant, then anchors as the payment org); a
  close after close; a close before the window ends; orders anchored by an org without the
  payment role (brand); a promotion opened by an org without the merchant role (forwarder).
* Too late to rank, not refused: a payment time earlier than the block time minus the skew, and
  an order after close: the transaction's other orders are anchored, the answer names the late
  one with the reason, the promotion counts it, its rank lookup says it arrived too late, and a
  closed ranking keeps its root.
* CLI: `promo open` (its shortest window, one minute, is opened when the module starts so
  that it has passed by the time the CLI test closes it), `promo order` with two orders paid
  in the same millisecond, `promo close`, `promo rank` of a winner and a loser, `--receipt`
  written and passing `xinchain verify`.
* The public page /promo/{id} lists the ranking with masked buyers and masked order numbers
  (never the full ones) and marks exactly the first N rows as winners.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from receipts import verify_receipt

from xinchain import codec
from xinchain.apps.promo.contract import payment_skew_ms
from xinchain.client.sdk import ApiError, Client, sign_transaction, validity_blocks
from xinchain.errors import ReceiptInvalid
from xinchain.genesis import Genesis
from xinchain.merkle import MerkleTree
from xinchain.node.home import Home

if TYPE_CHECKING:
    from conftest import RunningNode

    from xinchain.crypto import PrivateKey

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

Cli = Callable[..., subprocess.CompletedProcess[str]]
MERCHANT = "brand"  # a demo org with the merchant role
PAYMENT = "platform"  # the demo org with the payment role (it is also a merchant)
SALT = "test-salt"  # the payment platform's salt for buyer hashes
BIG_PROMO = "big-50k"
big_orders = 50_000
big_winners = 100
orders_per_tx = 1_000
anchoring_threads = 4
# Payment times of the big promotion spread over this many ms: ~10 orders per millisecond.
big_paid_spread_ms = 5_000
# The big promotion's window ends this long after it is opened: anchoring 50,000 orders takes
# about 4 s on a 2-core machine, so the window ends a few seconds after the last order.
big_window_after_open_ms = 10_000
receipt_threads = 4
rank_samples = 1_000
# Page size of GET /v1/promos/{id}/ranking (its maximum).
ranking_page = 1_000
commit_timeout_s = 120.0


# --- the chain, as the orgs see it through the SDK ---------------------------------------------


# The module's node, once the `chain` fixture has started: its clock is the chain's.
_node: list[RunningNode] = []


def now_ms() -> int:
    """The node's clock (the single validator's block time)."""
    return _node[0].now_ms() if _node else int(time.time() * 1000)


def buyer_mask(account: str) -> str:
    return account[:1] + "***" + account[-1:]


def paid_order(order_no: str, paid_ms: int, account: str) -> dict[str, Any]:
    return {
        "order_no": order_no,
        "paid_ms": paid_ms,
        "buyer_hash": hashlib.sha256(f"{SALT}:{account}".encode()).hexdigest(),
        "buyer_mask": buyer_mask(account),
    }


def masked_order_number(order_no: str) -> str:
    """What the public ranking shows of an order number of more than 8 characters."""
    assert len(order_no) > 8, order_no
    return order_no[:4] + "****" + order_no[-4:]


def ranked(promo: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The test's own ranking: payment time, then order number, each order's committed entry."""
    ordered = sorted(orders, key=lambda order: (order["paid_ms"], order["order_no"]))
    return [
        {
            "promo": promo,
            "rank": rank,
            "order_no": order["order_no"],
            "paid_ms": order["paid_ms"],
            "buyer_hash": order["buyer_hash"],
            "buyer_mask": order["buyer_mask"],
        }
        for rank, order in enumerate(ordered, start=1)
    ]


@dataclass
class Chain:
    node: RunningNode
    client: Client
    genesis: Genesis
    keys: dict[str, PrivateKey]

    def call(self, org: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.client.call(
            self.genesis, self.keys[org], sender=org, contract="promo", method=method, args=args
        )

    def refused(self, org: str, method: str, args: dict[str, Any]) -> str:
        """The chain's reason for refusing the call (the test fails if it is accepted)."""
        with pytest.raises(ApiError) as refusal:
            self.call(org, method, args)
        assert refusal.value.code == "refused", refusal.value
        return str(refusal.value)

    def forbidden(self, org: str, method: str, args: dict[str, Any]) -> str:
        """The node's reason for refusing the call at admission: 403, never in a block."""
        with pytest.raises(ApiError) as refusal:
            self.call(org, method, args)
        assert (refusal.value.status, refusal.value.code) == (403, "unauthorized"), refusal.value
        return str(refusal.value)

    def open(
        self, promo: str, *, starts_ms: int, ends_ms: int, winners: int = 3, org: str = MERCHANT
    ) -> None:
        args = {
            "promo": promo,
            "title": f"First buyers of {promo}",
            "gift": "Sample pack",
            "starts_ms": starts_ms,
            "ends_ms": ends_ms,
            "winners": winners,
        }
        assert self.call(org, "open", args)["promo"] == promo

    def order(self, promo: str, *orders: dict[str, Any], org: str = PAYMENT) -> dict[str, Any]:
        return self.call(org, "order", {"promo": promo, "orders": list(orders)})

    def promotion(self, promo: str) -> dict[str, Any]:
        response = httpx.get(f"{self.node.api}/v1/promos/{promo}", timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def rank(self, promo: str, order_no: str) -> httpx.Response:
        return httpx.get(f"{self.node.api}/v1/promos/{promo}/rank/{order_no}", timeout=30)


@pytest.fixture(scope="module")
def chain(module_node: RunningNode) -> Iterator[Chain]:
    home = Home(module_node.home)
    with Client(module_node.api, timeout_s=commit_timeout_s) as client:
        genesis = client.genesis()
        keys = {org: home.org_key(genesis.suite, org) for org in ("platform", "brand", "forwarder")}
        _node.append(module_node)
        yield Chain(module_node, client, genesis, keys)
        _node.clear()


def close_after_grace(chain: Chain, promo: str, ends_ms: int) -> dict[str, Any]:
    """Move the node past the window's end plus the grace, then close until the ranking is
    committed (a close that is not the last answers how far it got): the last answer."""
    chain.node.move_clock_past(ends_ms + payment_skew_ms)
    while True:
        answer = chain.call(MERCHANT, "close", {"promo": promo})
        if "root" in answer:
            return answer
        assert answer["ranked"] < answer["of"], answer


# --- 50,000 orders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BigPromotion:
    orders: list[dict[str, Any]]  # in the order they were anchored
    expected: list[dict[str, Any]]  # the test's ranking: entry i has rank i + 1
    expected_by_number: dict[str, dict[str, Any]]  # the same entries by order number
    close: dict[str, Any]  # the close call's answer: height, tx_id, root, size


def plan_big_orders(starts_ms: int, seed: int) -> list[dict[str, Any]]:
    """50,000 paid orders in arrival order: order numbers shuffled, so that neither the
    arrival order nor the order number follows the payment time."""
    chooser = random.Random(seed)
    numbers = [f"2026{index:08d}" for index in range(big_orders)]
    chooser.shuffle(numbers)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [
        paid_order(
            number,
            starts_ms + chooser.randrange(big_paid_spread_ms),
            f"{chooser.choice(letters)}{index}{chooser.randrange(10)}",
        )
        for index, number in enumerate(numbers)
    ]


def anchor_concurrently(chain: Chain, promo: str, orders: list[dict[str, Any]]) -> None:
    """Transactions of `orders_per_tx` orders, signed and submitted by several threads, each
    waiting for its commit; every one must be accepted."""
    batches = [orders[i : i + orders_per_tx] for i in range(0, len(orders), orders_per_tx)]
    valid_until = int(chain.client.status()["height"]) + validity_blocks
    local = threading.local()
    clients: list[Client] = []

    def anchor(batch: list[dict[str, Any]]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(chain.node.api, timeout_s=commit_timeout_s)
            clients.append(client)
        tx = sign_transaction(
            chain.genesis.suite,
            chain.keys[PAYMENT],
            chain_id=chain.genesis.chain_id,
            sender=PAYMENT,
            contract="promo",
            method="order",
            args={"promo": promo, "orders": batch},
            valid_until=valid_until,
        )
        answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
        assert answer["result"]["ok"], answer["result"]["error"]

    try:
        with ThreadPoolExecutor(anchoring_threads) as pool:
            list(pool.map(anchor, batches))
    finally:
        for client in clients:
            client.close()


@pytest.fixture(scope="module")
def big(chain: Chain) -> BigPromotion:
    opened_ms = now_ms()
    starts_ms = opened_ms - big_paid_spread_ms  # every payment lies before its anchoring
    ends_ms = opened_ms + big_window_after_open_ms
    chain.open(BIG_PROMO, starts_ms=starts_ms, ends_ms=ends_ms, winners=big_winners)
    orders = plan_big_orders(starts_ms, seed=20261127)
    anchor_concurrently(chain, BIG_PROMO, orders)
    assert now_ms() < ends_ms + payment_skew_ms, "anchoring took longer than the skew allows"
    close = close_after_grace(chain, BIG_PROMO, ends_ms)
    expected = ranked(BIG_PROMO, orders)
    return BigPromotion(orders, expected, {entry["order_no"]: entry for entry in expected}, close)


def test_the_big_promotion_exercises_the_order_number_tie_break(big: BigPromotion) -> None:
    paid_times = {order["paid_ms"] for order in big.orders}
    assert len(paid_times) <= big_paid_spread_ms < big_orders / 5  # most orders share a time
    by_arrival = sorted(range(big_orders), key=lambda i: big.orders[i]["paid_ms"])
    assert [big.orders[i]["order_no"] for i in by_arrival] != [
        entry["order_no"] for entry in big.expected
    ], "arrival order would give the same ranking: the tie break is not exercised"


def test_fifty_thousand_orders_are_anchored_and_the_close_commits_them_all(
    chain: Chain, big: BigPromotion
) -> None:
    record = chain.promotion(BIG_PROMO)
    assert record["orders"] == big_orders
    assert record["closed"] is True
    assert record["close_tx"] == big.close["tx_id"]
    assert record["root"] == big.close["root"]
    assert big.close["size"] == big_orders


def test_the_committed_root_is_the_root_of_an_independent_sort(
    chain: Chain, big: BigPromotion
) -> None:
    hasher = chain.genesis.suite.hash
    digests = [hasher(codec.encode(entry)) for entry in big.expected]
    assert MerkleTree(hasher, digests).root().hex() == big.close["root"]


def test_the_ranking_pages_list_the_independent_sort(chain: Chain, big: BigPromotion) -> None:
    shown: list[dict[str, Any]] = []
    with httpx.Client(base_url=chain.node.api, timeout=30) as http:
        for offset in range(0, big_orders, ranking_page):
            page = http.get(
                f"/v1/promos/{BIG_PROMO}/ranking",
                params={"offset": offset, "limit": ranking_page},
            ).json()
            assert (page["final"], page["orders"]) == (True, big_orders)
            assert page["root"] == big.close["root"]
            shown.extend(page["entries"])
    expected = [
        {
            "rank": entry["rank"],
            "order_no": masked_order_number(entry["order_no"]),
            "buyer": entry["buyer_mask"],
            "paid_ms": entry["paid_ms"],
            "winner": entry["rank"] <= big_winners,
        }
        for entry in big.expected
    ]
    assert len(shown) == big_orders
    mismatches = [i for i in range(big_orders) if shown[i] != expected[i]]
    assert not mismatches, f"{len(mismatches)} positions differ, first: {mismatches[:5]}"


def test_rank_lookup_gives_each_sampled_order_its_independently_sorted_rank(
    chain: Chain, big: BigPromotion
) -> None:
    sample = random.Random(7).sample(big.expected, rank_samples)
    with httpx.Client(base_url=chain.node.api, timeout=30) as http:
        for entry in sample:
            answer = http.get(f"/v1/promos/{BIG_PROMO}/rank/{entry['order_no']}").json()
            assert answer == {
                "rank": entry["rank"],
                "order_no": entry["order_no"],
                "buyer": entry["buyer_mask"],
                "paid_ms": entry["paid_ms"],
                "winner": entry["rank"] <= big_winners,
                "final": True,
                "of": big_orders,
            }


def fetch_receipt(http: httpx.Client, order_no: str) -> dict[str, Any]:
    response = http.get(f"/v1/promos/{BIG_PROMO}/rank/{order_no}/receipt")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_every_one_of_the_50000_rank_receipts_verifies_offline(
    chain: Chain, big: BigPromotion
) -> None:
    """Fetched through the API by a few threads, each verified as it arrives."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def check(order: dict[str, Any]) -> str | None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(base_url=chain.node.api, timeout=60)
            clients.append(http)
        receipt = fetch_receipt(http, order["order_no"])
        expected = big.expected_by_number[order["order_no"]]
        try:
            verify_receipt(receipt, None, expected_genesis_hash=chain.genesis.hash_hex())
        except ReceiptInvalid as exc:
            return f"{order['order_no']}: {exc}"
        if receipt["entry"] != expected or receipt["anchor"]["index"] != expected["rank"] - 1:
            return f"{order['order_no']}: carries {receipt['entry']} at {receipt['anchor']}"
        if receipt["result"]["tx_id"] != big.close["tx_id"]:
            return f"{order['order_no']}: proves transaction {receipt['result']['tx_id']}"
        return None

    try:
        with ThreadPoolExecutor(receipt_threads) as pool:
            problems = [problem for problem in pool.map(check, big.orders) if problem]
    finally:
        for http in clients:
            http.close()
    assert not problems, f"{len(problems)} of {big_orders} receipts fail: {problems[:5]}"


def some_receipt(chain: Chain, big: BigPromotion, rank: int) -> dict[str, Any]:
    with httpx.Client(base_url=chain.node.api, timeout=30) as http:
        receipt = fetch_receipt(http, big.expected[rank - 1]["order_no"])
    verify_receipt(receipt, None)  # the control: untouched, it verifies
    return receipt


@pytest.mark.parametrize("edited_rank", [1, 2, 99, 101, big_orders])
def test_a_receipt_whose_entry_rank_was_edited_fails(
    chain: Chain, big: BigPromotion, edited_rank: int
) -> None:
    receipt = some_receipt(chain, big, rank=100)
    receipt["entry"]["rank"] = edited_rank
    with pytest.raises(ReceiptInvalid, match="hash mismatch"):
        verify_receipt(receipt, None)


@pytest.mark.parametrize("edited_index", [0, 98, 100, big_orders - 1])
def test_a_receipt_whose_anchor_index_was_edited_fails(
    chain: Chain, big: BigPromotion, edited_index: int
) -> None:
    receipt = some_receipt(chain, big, rank=100)
    receipt["anchor"]["index"] = edited_index
    # A Merkle path for another index leads elsewhere, or is too long for the last leaf.
    with pytest.raises(ReceiptInvalid, match=r"bad Merkle proof|inclusion path is longer"):
        verify_receipt(receipt, None)


def test_a_receipt_moved_to_first_place_in_entry_and_anchor_alike_fails(
    chain: Chain, big: BigPromotion, cli: Cli, tmp_path: Path
) -> None:
    """The first loser claims to be No. 1: the entry's rank, the document hash of the entry
    and the anchor index all edited to agree; only the Merkle path still tells the truth."""
    receipt = some_receipt(chain, big, rank=big_winners + 1)
    receipt["entry"]["rank"] = 1
    receipt["document"]["hash"] = chain.genesis.suite.hash(codec.encode(receipt["entry"])).hex()
    receipt["anchor"]["index"] = 0
    with pytest.raises(ReceiptInvalid, match="bad Merkle proof"):
        verify_receipt(receipt, None)
    path = tmp_path / "moved.receipt.json"
    path.write_text(json.dumps(receipt))
    result = cli("verify", path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("invalid:"), result.stdout


def test_xinchain_verify_passes_five_sampled_rank_receipts(
    chain: Chain, big: BigPromotion, cli: Cli, tmp_path: Path
) -> None:
    for rank in (1, big_winners, big_winners + 1, big_orders // 2, big_orders):
        order_no = big.expected[rank - 1]["order_no"]
        path = tmp_path / f"{order_no}.rank-receipt.json"
        path.write_text(json.dumps(some_receipt(chain, big, rank)))
        result = cli("verify", path, "--genesis-hash", chain.genesis.hash_hex())
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(
            f"valid: order {order_no} at rank {rank} of {BIG_PROMO} "
        ), result.stdout
        assert f"anchored by {MERCHANT} " in result.stdout


# --- fair to the last paid second --------------------------------------------------------------


def test_an_order_paid_a_second_before_the_end_ranks_though_anchored_four_minutes_later(
    chain: Chain,
) -> None:
    promo = unique("last-second")
    opened = now_ms()
    ends_ms = opened + 5_000
    chain.open(promo, starts_ms=opened - 60_000, ends_ms=ends_ms, winners=2)
    chain.order(promo, paid_order("202612040000000002", opened - 30_000, "early2"))
    after_end = paid_order("202612040000000009", ends_ms + 1_000, "after9")
    reason = chain.refused(PAYMENT, "order", {"promo": promo, "orders": [after_end]})
    assert "outside the window" in reason and "whenever it is anchored" in reason, reason

    chain.node.move_clock_past(ends_ms + 4 * 60_000)
    last_second = paid_order("202612040000000001", ends_ms - 1_000, "last1")
    answer = chain.order(promo, last_second)
    assert (answer["orders"], answer["late"]) == (2, []), answer
    reason = chain.refused(PAYMENT, "order", {"promo": promo, "orders": [after_end]})
    assert "outside the window" in reason and "whenever it is anchored" in reason, reason
    reason = chain.refused(MERCHANT, "close", {"promo": promo})
    assert f"close from {ends_ms + payment_skew_ms} ms on" in reason, reason
    assert chain.promotion(promo)["closed"] is False

    close = close_after_grace(chain, promo, ends_ms)
    assert close["size"] == 2
    rank = chain.rank(promo, last_second["order_no"]).json()
    assert (rank["rank"], rank["final"], rank["winner"]) == (2, True, True), rank
    assert chain.rank(promo, after_end["order_no"]).status_code == 404


# --- rigging attempts --------------------------------------------------------------------------


def unique(name: str) -> str:
    """A promotion id no other test uses, on the module's shared node."""
    return f"{name}-{random.randrange(16**8):08x}"


def open_now(chain: Chain, name: str, *, before_ms: int = 0, after_ms: int = 600_000) -> str:
    """A promotion whose window runs from `before_ms` ago to `after_ms` from now."""
    promo = unique(name)
    now = now_ms()
    chain.open(promo, starts_ms=now - before_ms, ends_ms=now + after_ms)
    return promo


def assert_nothing_anchored(chain: Chain, promo: str, *order_numbers: str) -> None:
    assert chain.promotion(promo)["orders"] == 0
    for order_no in order_numbers:
        assert chain.rank(promo, order_no).status_code == 404


def test_an_order_paid_before_the_window_starts_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "early")
    starts_ms = chain.promotion(promo)["starts_ms"]
    reason = chain.refused(
        PAYMENT, "order", {"promo": promo, "orders": [paid_order("E0001", starts_ms - 1, "e1")]}
    )
    assert "order E0001 paid at" in reason and "outside the window" in reason, reason
    assert "orders[0].paid_ms" in reason, reason
    assert_nothing_anchored(chain, promo, "E0001")


def test_an_order_paid_at_the_window_end_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "at-end", before_ms=60_000, after_ms=30_000)
    ends_ms = chain.promotion(promo)["ends_ms"]
    reason = chain.refused(
        PAYMENT, "order", {"promo": promo, "orders": [paid_order("A0001", ends_ms, "a1")]}
    )
    assert f"paid at {ends_ms} ms, outside the window" in reason, reason
    assert_nothing_anchored(chain, promo, "A0001")
    # The window is half-open: a millisecond earlier is inside it.
    assert chain.order(promo, paid_order("A0002", ends_ms - 1, "a2"))["orders"] == 1


def test_an_order_paid_after_the_window_end_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "late", before_ms=120_000, after_ms=-60_000)
    ends_ms = chain.promotion(promo)["ends_ms"]
    reason = chain.refused(
        PAYMENT, "order", {"promo": promo, "orders": [paid_order("L0001", ends_ms + 30_000, "l1")]}
    )
    assert "order L0001 paid at" in reason and "outside the window" in reason, reason
    assert_nothing_anchored(chain, promo, "L0001")


def test_a_payment_time_earlier_than_block_time_minus_the_skew_is_too_late_to_rank(
    chain: Chain,
) -> None:
    promo = open_now(chain, "backdated", before_ms=3 * payment_skew_ms)
    backdated = now_ms() - payment_skew_ms - 60_000  # inside the window, too old to rank
    answer = chain.order(
        promo, paid_order("B0001", backdated, "b1"), paid_order("B0002", now_ms() - 60_000, "b2")
    )
    assert answer["orders"] == 1, answer  # the payment well within the skew is anchored
    [late] = answer["late"]
    assert late["order_no"] == "B0001", answer
    assert late["reason"].startswith("arrived too late to rank: paid at "), late
    assert f"the payment platform anchors within {payment_skew_ms} ms" in late["reason"], late
    record = chain.promotion(promo)
    assert (record["orders"], record["late"]) == (1, 1)
    lookup = chain.rank(promo, "B0001")
    assert lookup.status_code == 404 and "arrived too late to rank" in lookup.text, lookup.text
    assert chain.rank(promo, "B0002").json()["rank"] == 1


def test_a_payment_time_later_than_block_time_plus_the_skew_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "postdated", after_ms=3 * payment_skew_ms)
    postdated = now_ms() + payment_skew_ms + 60_000
    reason = chain.refused(
        PAYMENT, "order", {"promo": promo, "orders": [paid_order("F0001", postdated, "f1")]}
    )
    assert f"more than {payment_skew_ms} ms after the block time" in reason, reason
    assert "clock is wrong" in reason, reason
    assert_nothing_anchored(chain, promo, "F0001")


def test_an_order_number_twice_in_one_transaction_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "dup-tx", before_ms=60_000)
    paid = now_ms() - 1_000
    orders = [paid_order("D0001", paid, "d1"), paid_order("D0001", paid - 500, "d2")]
    reason = chain.refused(PAYMENT, "order", {"promo": promo, "orders": orders})
    assert "order D0001 is already anchored" in reason, reason
    assert "orders[1].order_no" in reason, reason
    assert_nothing_anchored(chain, promo, "D0001")  # the whole transaction is discarded


def test_an_order_number_anchored_again_in_a_later_transaction_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "dup-later", before_ms=60_000)
    paid = now_ms() - 1_000
    chain.order(promo, paid_order("R0001", paid, "r1"))
    earlier = paid_order("R0001", paid - 30_000, "r9")  # would jump the queue
    reason = chain.refused(PAYMENT, "order", {"promo": promo, "orders": [earlier]})
    assert "order R0001 is already anchored" in reason, reason
    assert chain.promotion(promo)["orders"] == 1
    assert chain.rank(promo, "R0001").json()["paid_ms"] == paid


def anchor_as_the_merchants_own_org(chain: Chain) -> tuple[str, str]:
    """The platform opens a promotion as a merchant, then anchors an order of it as the
    payment org: the promotion and the chain's reason for refusing the order."""
    promo = unique("own-shop")
    now = now_ms()
    chain.open(promo, starts_ms=now - 60_000, ends_ms=now + 600_000, org=PAYMENT)
    assert chain.promotion(promo)["merchant"] == PAYMENT
    order = paid_order("M0001", now, "m1")
    return promo, chain.refused(PAYMENT, "order", {"promo": promo, "orders": [order]})


def test_orders_anchored_by_the_merchants_own_org_are_refused(chain: Chain) -> None:
    promo, reason = anchor_as_the_merchants_own_org(chain)
    assert "is the merchant of promotion" in reason and "may not anchor" in reason, reason
    assert reason.startswith("sender: "), reason
    assert_nothing_anchored(chain, promo, "M0001")


def test_the_refusal_of_the_merchants_own_orders_names_the_org_and_promotion(
    chain: Chain,
) -> None:
    promo, reason = anchor_as_the_merchants_own_org(chain)
    assert repr(PAYMENT) in reason and promo in reason, reason


@dataclass(frozen=True)
class Closed:
    promo: str
    ends_ms: int
    orders: list[dict[str, Any]]
    root: str


@pytest.fixture(scope="module")
def closed(chain: Chain) -> Closed:
    """A promotion of 6 orders, 2 winners, closed; two pairs paid in the same millisecond."""
    promo = unique("closed")
    now = now_ms()
    ends_ms = now + 2_000
    chain.open(promo, starts_ms=now - 60_000, ends_ms=ends_ms, winners=2)
    base = now - 10_000
    orders = [
        paid_order("202611270000000731", base + 40, "carol3"),
        paid_order("202611270000000204", base + 10, "wang_wei"),
        paid_order("202611270000000093", base + 10, "li.na8"),
        paid_order("202611270000000517", base, "zhang_san"),
        paid_order("202611270000000666", base + 25, "x9"),
        paid_order("202611270000000402", base + 25, "alice"),
    ]
    chain.order(promo, *orders)
    root = close_after_grace(chain, promo, ends_ms)["root"]
    return Closed(promo, ends_ms, orders, root)


def test_an_order_after_close_is_too_late_to_rank_and_changes_no_rank(
    chain: Chain, closed: Closed
) -> None:
    late = paid_order("202611270000000001", closed.ends_ms - 1, "late1")
    answer = chain.order(closed.promo, late)
    assert [entry["order_no"] for entry in answer["late"]] == [late["order_no"]], answer
    record = chain.promotion(closed.promo)
    assert (record["orders"], record["root"]) == (len(closed.orders), closed.root)
    assert record["late"] >= 1
    lookup = chain.rank(closed.promo, late["order_no"])
    assert lookup.status_code == 404 and "arrived too late to rank" in lookup.text, lookup.text


def test_a_close_after_close_is_refused(chain: Chain, closed: Closed) -> None:
    for org in (MERCHANT, PAYMENT):
        reason = chain.refused(org, "close", {"promo": closed.promo})
        assert f"promotion {closed.promo!r} is closed" in reason, reason
    record = chain.promotion(closed.promo)
    assert (record["orders"], record["root"]) == (len(closed.orders), closed.root)


def test_a_close_before_the_window_ends_is_refused(chain: Chain) -> None:
    promo = open_now(chain, "too-soon", before_ms=60_000)
    chain.order(promo, paid_order("S0001", now_ms() - 1_000, "s1"))
    ends_ms = chain.promotion(promo)["ends_ms"]
    reason = chain.refused(MERCHANT, "close", {"promo": promo})
    assert f"close from {ends_ms + payment_skew_ms} ms on; block time is" in reason, reason
    record = chain.promotion(promo)
    assert (record["closed"], record["root"]) == (False, "")
    assert chain.rank(promo, "S0001").json()["final"] is False


def test_orders_anchored_by_an_org_without_the_payment_role_are_refused(chain: Chain) -> None:
    promo = open_now(chain, "no-payer", before_ms=60_000)
    reason = chain.forbidden(
        MERCHANT, "order", {"promo": promo, "orders": [paid_order("N0001", now_ms(), "n1")]}
    )
    assert f"org {MERCHANT!r} has roles ['brand', 'merchant']" in reason, reason
    assert "needs one of ['payment']" in reason, reason
    assert_nothing_anchored(chain, promo, "N0001")


def test_a_promotion_opened_by_an_org_without_the_merchant_role_is_refused(chain: Chain) -> None:
    promo = unique("no-shop")
    now = now_ms()
    args = {
        "promo": promo,
        "title": "Forwarder's promotion",
        "gift": "A free shipment",
        "starts_ms": now,
        "ends_ms": now + 60_000,
        "winners": 1,
    }
    reason = chain.forbidden("forwarder", "open", args)
    assert "org 'forwarder' has roles ['logistics']" in reason, reason
    assert "needs one of ['merchant']" in reason, reason
    assert httpx.get(f"{chain.node.api}/v1/promos/{promo}", timeout=30).status_code == 404


# --- the command line --------------------------------------------------------------------------


@dataclass(frozen=True)
class CliPromotion:
    promo: str
    ends_ms: int
    opened: subprocess.CompletedProcess[str]
    ordered: list[subprocess.CompletedProcess[str]]
    paid_ms: int  # both orders were paid in this millisecond


@pytest.fixture(scope="module", autouse=True)
def cli_promotion(module_node: RunningNode, cli: Cli) -> CliPromotion:
    """Opened as the module starts: `promo open` windows last at least a minute, which the
    tests before the CLI test mostly wait out."""
    promo = unique("cli")
    where = ("--home", module_node.home, "--api", module_node.api)
    opened = cli(
        "promo", "open", promo, "--title", "Golden week", "--gift", "Tote bag",
        "--winners", "1", "--minutes", "1", *where, "--as", MERCHANT,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stdout + opened.stderr
    paid_ms = now_ms()
    ordered = []
    for order_no, buyer in (("CLI-ORDER-0002", "chen3"), ("CLI-ORDER-0001", "zhou7")):
        order = ("--order-no", order_no, "--buyer", buyer, "--salt", SALT, "--paid-ms", paid_ms)
        ordered.append(cli("promo", "order", promo, *order, *where, "--as", PAYMENT))
    ends_ms = int(httpx.get(f"{module_node.api}/v1/promos/{promo}", timeout=30).json()["ends_ms"])
    return CliPromotion(promo, ends_ms, opened, ordered, paid_ms)


def test_cli_opens_orders_closes_and_ranks_with_a_receipt_that_verifies(
    module_node: RunningNode, cli: Cli, cli_promotion: CliPromotion, tmp_path: Path
) -> None:
    promo, where = cli_promotion.promo, ("--home", module_node.home, "--api", module_node.api)
    assert cli_promotion.opened.stdout.startswith(
        f"opened {promo} until {cli_promotion.ends_ms} ms in block "
    ), cli_promotion.opened.stdout
    for result, order_no in zip(
        cli_promotion.ordered, ("CLI-ORDER-0002", "CLI-ORDER-0001"), strict=True
    ):
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"anchored order {order_no} in block "), result.stdout

    module_node.move_clock_past(cli_promotion.ends_ms + payment_skew_ms)
    closed = cli("promo", "close", promo, *where, "--as", MERCHANT)
    assert closed.returncode == 0, closed.stdout + closed.stderr
    root = httpx.get(f"{module_node.api}/v1/promos/{promo}", timeout=30).json()["root"]
    assert closed.stdout.strip() == f"closed {promo}: 2 orders, ranking root {root}"

    # Paid in the same millisecond: the smaller order number wins, though anchored second.
    receipt = tmp_path / "winner.rank-receipt.json"
    api = module_node.api
    winner = cli("promo", "rank", promo, "CLI-ORDER-0001", "--receipt", receipt, "--api", api)
    assert winner.returncode == 0, winner.stdout + winner.stderr
    assert "order CLI-ORDER-0001 is No. 1 of 2 (final); wins the gift" in winner.stdout
    loser = cli("promo", "rank", promo, "CLI-ORDER-0002", "--api", api)
    assert loser.returncode == 0, loser.stdout + loser.stderr
    assert "order CLI-ORDER-0002 is No. 2 of 2 (final); does not win" in loser.stdout

    verified = cli("verify", receipt)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"valid: order CLI-ORDER-0001 at rank 1 of {promo} ")
    entry = json.loads(receipt.read_text())["entry"]
    assert entry["paid_ms"] == cli_promotion.paid_ms
    assert entry["buyer_hash"] == hashlib.sha256(f"{SALT}:zhou7".encode()).hexdigest()
    assert entry["buyer_mask"] == "z***7"


# --- the public ranking page -------------------------------------------------------------------


class RankingRows(HTMLParser):
    """The rows of the ranking table: its class, its cells' text, and whether its rank cell
    holds the winner mark (a `gift` span)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str], bool]] = []
        self._in_body = False
        self._cell: list[str] | None = None
        self._marked = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append((dict(attrs).get("class") or "", [], False))
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "span" and self._cell is not None and dict(attrs).get("class") == "gift":
            css_class, cells, _ = self.rows[-1]
            self.rows[-1] = (css_class, cells, len(cells) == 0)  # in the rank cell

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_ranking_page_lists_masked_buyers_and_orders_and_marks_the_winners(
    chain: Chain, closed: Closed
) -> None:
    page = httpx.get(f"{chain.node.api}/promo/{closed.promo}?lang=en", timeout=30)
    assert page.status_code == 200
    assert "Final ranking, committed on chain" in page.text
    parser = RankingRows()
    parser.feed(page.text)
    expected = ranked(closed.promo, closed.orders)
    assert len(parser.rows) == len(expected)
    for (css_class, cells, marked), entry in zip(parser.rows, expected, strict=True):
        winner = entry["rank"] <= 2
        rank_cell, buyer, _paid_at, order_cell = cells
        assert rank_cell.split()[0] == str(entry["rank"]), rank_cell
        assert (marked, css_class) == (winner, "win" if winner else ""), (rank_cell, css_class)
        assert buyer == entry["buyer_mask"] and "***" in buyer
        assert order_cell == masked_order_number(entry["order_no"])
    for order in closed.orders:
        assert order["order_no"] not in page.text
    buyers = ("carol3", "wang_wei", "li.na8", "zhang_san", "alice")
    assert not [name for name in buyers if name in page.text]
    # The tie breaks: 093 before 204 (paid together), 402 before 666 (paid together).
    assert [cells[3] for _, cells, _ in parser.rows] == [
        "2026****0517",
        "2026****0093",
        "2026****0204",
        "2026****0402",
        "2026****0666",
        "2026****0731",
    ]
