"""The promo contract and its read model, in process, on chains of both rules.

Scenarios (chain rules 2, a chain whose genesis is dated after rules 2 began):
- an order paid 1 s before the window's end and anchored 4 minutes after it ranks; one paid
  1 s after the end is refused with the reason, before and after the end; close before the
  grace ends is refused, naming when it may close;
- an order anchored more than the skew after its payment is not ranked: its transaction's
  other orders are, the answer names it with the reason, the promotion counts it as late, and
  a rank lookup says it arrived too late;
- 300 orders with ties in payment time, numeric and text order numbers, anchored in shuffled
  batches, closed in steps of at most the per-block budget (small here, so several steps and
  several 4-entry blocks): the committed root is that of an independent sort; every order's
  rank, page and rank path agree with that sort; orders settle while the window is still open;
- a close step per block at most does work: a second close in the same block answers the same
  progress;
- on a chain of rules 1 a promotion keeps the old behaviour (close at the window's end, a late
  order refuses its transaction); governance raises the rules, and a promotion opened after
  that follows rules 2, while one opened before keeps rules 1;
- 40 promotions at once, orders interleaved, closed together: the per-block budget is shared
  and never exceeded, and each commits the root of its own independent sort;
- `sort_key` orders exactly as `ranking_key`, for random order numbers;
- a range read sees the block's and the transaction's own writes and deletes.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from chain_helpers import Chain, make_consortium

from xinchain.apps.promo import contract as promo_contract
from xinchain.apps.promo import view as promo_view
from xinchain.apps.promo.contract import (
    entry_digest,
    payment_skew_ms,
    ranking_entry,
    ranking_key,
    sort_key,
)
from xinchain.contracts.governance import CHAIN_RULES, RULES_2_GENESIS_MS
from xinchain.errors import NotFound
from xinchain.execution.state import Overlay
from xinchain.merkle import LEAF_PREFIX, MerkleTree, root_from_inclusion
from xinchain.storage import MemoryStore, Table

MERCHANT, PAYMENT = "org0", "org1"
ROLES = {MERCHANT: ["merchant"], PAYMENT: ["payment"], "org2": ["member"]}
WINDOW_MS = 60_000


def chain(time_ms: int = RULES_2_GENESIS_MS) -> Chain:
    return Chain(make_consortium("ed25519-sha256", roles=ROLES, time_ms=time_ms))


def now(c: Chain) -> int:
    """The time of the next block."""
    return c.consortium.genesis.time_ms + c.next_height() * 1_000 + c.clock_offset_ms


def open_promo(c: Chain, promo: str, starts_ms: int, ends_ms: int) -> None:
    args = {"promo": promo, "title": "T", "gift": "G", "starts_ms": starts_ms}
    result = c.call(MERCHANT, "promo", "open", {**args, "ends_ms": ends_ms, "winners": 3})
    assert result.ok, result.error


def order(number: str, paid_ms: int) -> dict[str, Any]:
    return {"order_no": number, "paid_ms": paid_ms, "buyer_hash": "ab" * 32, "buyer_mask": "c***3"}


def anchor(c: Chain, promo: str, *orders: dict[str, Any]) -> Any:
    return c.call(PAYMENT, "promo", "order", {"promo": promo, "orders": list(orders)})


def close_all(c: Chain, promo: str) -> tuple[dict[str, Any], int]:
    steps = 0
    while True:
        result = c.call(MERCHANT, "promo", "close", {"promo": promo})
        assert result.ok, result.error
        steps += 1
        if "root" in result.data:
            return result.data, steps


def move_to(c: Chain, moment_ms: int) -> None:
    """The next block is dated `moment_ms`."""
    c.clock_offset_ms += moment_ms - now(c)


def test_a_late_anchored_order_paid_in_time_ranks_and_close_waits_for_the_grace() -> None:
    c = chain()
    starts = now(c)
    ends = starts + WINDOW_MS
    open_promo(c, "p", starts, ends)
    assert anchor(c, "p", order("1", starts + 10)).ok
    after = anchor(c, "p", order("9", ends + 1_000))
    assert not after.ok and "outside the window" in after.error and "whenever" in after.error
    move_to(c, ends + 4 * 60_000)
    result = anchor(c, "p", order("2", ends - 1_000))
    assert result.ok and result.data["late"] == [], result.error
    after = anchor(c, "p", order("9", ends + 1_000))
    assert not after.ok and "outside the window" in after.error
    early = c.call(MERCHANT, "promo", "close", {"promo": "p"})
    assert not early.ok and f"close from {ends + payment_skew_ms} ms on" in early.error
    move_to(c, ends + payment_skew_ms)
    late = anchor(c, "p", order("3", ends - 500), order("4", ends - 400))
    assert late.ok and [entry["order_no"] for entry in late.data["late"]] == ["3", "4"]
    assert "arrived too late to rank" in late.data["late"][0]["reason"]
    data, _ = close_all(c, "p")
    assert data["size"] == 2
    record = promo_view.promotion(c.app.chain, "p")
    assert record["closed"] and record["late"] == 2 and record["orders"] == 2
    ranked = promo_view.ranking(c.app.chain, "p")
    assert [entry["order_no"] for entry in ranked.page(0, 10)] == ["1", "2"]
    assert ranked.position("3") is None
    late_record = ranked.late("3")
    assert late_record is not None and "arrived too late" in late_record["reason"]
    # late orders are still counted after close, and refused twice
    assert anchor(c, "p", order("5", ends - 300)).ok
    assert promo_view.promotion(c.app.chain, "p")["late"] == 3
    again = anchor(c, "p", order("5", ends - 300))
    assert not again.ok and "already anchored" in again.error


def random_number(chooser: random.Random) -> str:
    if chooser.random() < 0.7:
        return "0" * chooser.randrange(2) + str(chooser.randrange(1, 10 ** chooser.randrange(1, 8)))
    alphabet = string.ascii_letters + string.digits + "_-"
    return "".join(chooser.choice(alphabet) for _ in range(chooser.randrange(1, 10)))


def independent(promo: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = sorted(orders, key=lambda o: ranking_key(o))
    return [ranking_entry(promo, rank, o) for rank, o in enumerate(ordered, 1)]


def test_a_ranking_closed_in_steps_is_the_independent_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promo_contract, "ranking_block_entries", 4)
    monkeypatch.setattr(promo_view, "ranking_block_entries", 4)
    monkeypatch.setattr(promo_contract, "settle_per_block_max", 37)
    chooser = random.Random(17)
    c = chain()
    starts = now(c) - 1_000
    ends = starts + 20 * 60_000
    open_promo(c, "big", starts, ends)
    numbers: set[str] = set()
    orders: list[dict[str, Any]] = []
    for _ in range(12):  # a batch a block, each paid within the last few seconds, many ties
        batch = []
        for _ in range(25):
            number = random_number(chooser)
            while number in numbers:
                number = random_number(chooser)
            numbers.add(number)
            batch.append(order(number, now(c) - chooser.choice([0, 0, 5, 700, 2_000])))
        chooser.shuffle(batch)
        assert anchor(c, "big", *batch).ok
        orders += batch
        c.clock_offset_ms += 60_000  # a minute a batch: the first ones settle in the window
    record = promo_view.promotion(c.app.chain, "big")
    assert 0 < record["ranked"] < record["orders"] == 300, record["ranked"]
    expected = independent("big", orders)
    ranked = promo_view.ranking(c.app.chain, "big")
    assert ranked.page(0, 300) == expected  # provisional, settled part and tail together
    move_to(c, ends + payment_skew_ms)
    data, steps = close_all(c, "big")
    assert steps >= 2
    hasher = c.suite.hash
    digests = [entry_digest(hasher, entry) for entry in expected]
    assert data == {"root": MerkleTree(hasher, digests).root().hex(), "size": 300}
    ranked = promo_view.ranking(c.app.chain, "big")
    for offset in (0, 3, 4, 150, 297):
        assert ranked.page(offset, 5) == expected[offset : offset + 5]
    root = bytes.fromhex(data["root"])
    for index, entry in enumerate(expected):
        assert ranked.position(entry["order_no"]) == index
        found = ranked.proof(entry["order_no"])
        assert found is not None and found.entry == entry
        assert root_from_inclusion(hasher, hasher(LEAF_PREFIX + found.digest), found.proof) == root
    assert ranked.position("no-such") is None


def test_one_settling_step_a_block_is_all_the_budget_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(promo_contract, "settle_per_block_max", 10)
    c = chain()
    starts = now(c)
    open_promo(c, "q", starts, starts + 5_000)
    assert anchor(c, "q", *[order(str(n), starts + n) for n in range(1, 31)]).ok
    move_to(c, starts + 5_000 + payment_skew_ms)
    txs = [c.sign(MERCHANT, "promo", "close", {"promo": "q"}) for _ in range(2)]
    block = c.commit_txs(txs)
    assert [r.data for r in block.results] == [{"promo": "q", "ranked": 10, "of": 30}] * 2


def test_rules_1_promotions_keep_their_behaviour_until_and_after_the_rules_are_raised() -> None:
    c = chain(time_ms=RULES_2_GENESIS_MS - 86_400_000)
    starts = now(c)
    open_promo(c, "old", starts, starts + 10_000)
    assert anchor(c, "old", order("1", starts + 5)).ok
    move_to(c, starts + 10_000 + payment_skew_ms + 1_000)
    late = anchor(c, "old", order("2", starts + 6))
    assert not late.ok and "more than 300000 ms from the block time" in late.error
    raise_rules(c)
    open_promo(c, "new", now(c), now(c) + 10_000)
    record = promo_view.promotion(c.app.chain, "new")
    assert record["rules"] == 2
    assert "rules" not in promo_view.promotion(c.app.chain, "old")
    closed = c.call(MERCHANT, "promo", "close", {"promo": "old"})
    assert closed.ok and set(closed.data) == {"root", "size"}
    ranked = promo_view.ranking(c.app.chain, "old")
    found = ranked.proof("1")
    assert found is not None and found.entry["rank"] == 1
    early = c.call(MERCHANT, "promo", "close", {"promo": "new"})
    assert not early.ok and "close from" in early.error


def raise_rules(c: Chain) -> None:
    action = {"kind": "set_rules", "rules": 2}
    proposed = c.call(MERCHANT, "governance", "propose", {"action": action})
    assert proposed.ok, proposed.error
    approved = c.call(PAYMENT, "governance", "approve", {"proposal": proposed.data["proposal"]})
    assert approved.ok and approved.data["executed"], approved
    again = c.call(MERCHANT, "governance", "propose", {"action": action})
    assert not again.ok and "already holds rules 2" in again.error
    for wrong in (CHAIN_RULES + 1, 0, True, "2"):
        refused = c.call(MERCHANT, "governance", "propose", {"action": {**action, "rules": wrong}})
        assert not refused.ok and "action.rules" in refused.error, refused.error


def test_sort_keys_order_as_the_ranking_rule() -> None:
    chooser = random.Random(5)
    orders = [order(random_number(chooser), chooser.randrange(3)) for _ in range(3_000)]
    unique = list({o["order_no"]: o for o in orders}.values())
    by_rule = sorted(unique, key=ranking_key)
    by_key = sorted(unique, key=lambda o: sort_key(o["paid_ms"], o["order_no"]).encode())
    assert by_key == by_rule


def test_a_range_read_sees_the_writes_above_it() -> None:
    store = MemoryStore()
    with store.atomic_batch() as batch:
        for key in (b"a", b"b", b"c", b"d"):
            batch.put(Table.STATE, key, key.upper())

    class Committed:
        def get(self, key: bytes) -> bytes | None:
            return store.get(Table.STATE, key)

        def scan(self, start: bytes, end: bytes) -> Any:
            return store.scan_range(Table.STATE, start, end)

    block = Overlay(Committed())
    block.put(b"bb", b"BB")
    block.delete(b"c")
    tx = Overlay(block)
    tx.put(b"a", b"A2")
    tx.put(b"e", b"E")
    tx.delete(b"bb")
    assert list(tx.scan(b"a", b"e")) == [(b"a", b"A2"), (b"b", b"B"), (b"d", b"D")]
    assert list(block.scan(b"b", b"z")) == [(b"b", b"B"), (b"bb", b"BB"), (b"d", b"D")]


def test_a_receipt_is_refused_before_close() -> None:
    c = chain()
    starts = now(c)
    open_promo(c, "r", starts, starts + 60_000)
    assert anchor(c, "r", order("1", starts)).ok
    assert promo_view.ranking(c.app.chain, "r").proof("1") is None
    with pytest.raises(NotFound):
        promo_view.promotion(c.app.chain, "nothing")


def test_many_promotions_at_once_share_the_block_budget_and_each_closes_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 promotions, their orders interleaved in blocks of several promotions each, all closed
    together: a block's settling is shared among them (never over the budget), and every
    promotion commits the root of its own independent sort."""
    monkeypatch.setattr(promo_contract, "settle_per_block_max", 50)
    chooser = random.Random(40)
    c = chain()
    starts = now(c) - 1_000
    ends = starts + 120_000
    promos = [f"shop{n:02d}" for n in range(40)]
    for promo in promos:
        open_promo(c, promo, starts, ends)
    anchored: dict[str, list[dict[str, Any]]] = {promo: [] for promo in promos}
    for round_number in range(3):
        txs = []
        for promo in chooser.sample(promos, 20):
            batch = [
                order(f"{round_number}{n:03d}", now(c) - chooser.randrange(1_500))
                for n in range(chooser.randrange(1, 9))
            ]
            anchored[promo] += batch
            txs.append(c.sign(PAYMENT, "promo", "order", {"promo": promo, "orders": batch}))
        assert all(result.ok for result in c.commit_txs(txs).results)
    move_to(c, ends + payment_skew_ms)
    roots: dict[str, dict[str, Any]] = {}
    while len(roots) < len(promos):
        open_ones = [promo for promo in promos if promo not in roots]
        txs = [c.sign(MERCHANT, "promo", "close", {"promo": p}) for p in open_ones]
        block = c.commit_txs(txs)
        for promo, result in zip(open_ones, block.results, strict=True):
            assert result.ok, result.error
            if "root" in result.data:
                roots[promo] = result.data
        work = c.app.read_state("promo", "!work")
        settled = work[1] if work[0] == block.height else 0
        assert settled <= 50
    hasher = c.suite.hash
    for promo in promos:
        expected = independent(promo, anchored[promo])
        digests = [entry_digest(hasher, entry) for entry in expected]
        assert roots[promo] == {
            "root": MerkleTree(hasher, digests).root().hex(),
            "size": len(expected),
        }
