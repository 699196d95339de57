"""The promo contract: "first N buyers get a gift", ranked by the chain, not by the merchant.

* The merchant opens a promotion: a window [starts_ms, ends_ms), the number of winners N and
  the gift.
* The payment platform — never the merchant — anchors each paid order: order number, payment
  time (ms), a salted hash of the buyer and the buyer's masked name (`c***3`, chosen by the
  platform; no personal data goes on chain).
* The ranking is payment time ascending, then order number ascending (numeric order numbers as
  numbers). Each order is kept under its sort key (`sort_key`), so the state holds the orders
  in ranked order as they arrive.
* The payment platform promises to anchor every paid order within `payment_skew_ms` of its
  payment. So once block time passes a moment t + skew, no order paid before t can still come:
  the ranking up to t is final. The chain *settles* that prefix in rank order, a bounded number
  of orders a block: each settled order gets its rank, and the committed ranking's RFC 9162
  tree grows by it (a frontier of 64-entry blocks; each full block's root is kept, so a rank
  receipt's path is one block rebuilt plus the kept roots).
* Close is allowed from the window's end plus the skew (the grace period: an order paid in the
  last second may still be on its way). Each close settles what is left, a bounded number of
  orders a block, and the close that settles the last order commits the root; its result
  {root, size} is what every rank receipt proves against. A close that is not yet the last
  answers {promo, ranked, of}: call close again (the CLI does) until it commits.

Refused, the whole transaction: a payment time outside the window (whenever it arrives), or
more than the skew ahead of the block time; a duplicate order number; an order anchored by the
merchant's own org. An order paid inside the window but anchored more than the skew after its
payment *arrived too late to rank*: it is not ranked, the promotion counts it (`late`) and keeps
it under ``late/<no>`` with the reason, and the other orders of its transaction are anchored.

Rules (`CallContext.rules`): a promotion opened under chain rules 1 keeps the behaviour it had
then (close sorts all orders in one transaction at the window's end, at most 50,000 orders, a
late order refuses its whole transaction), so old blocks execute as they were committed.

State (key space ``promo/``): ``<id>`` (the promotion), ``<id>/order/<no>`` (its sort key),
``<id>/by/<sort key>`` (the order), ``<id>/late/<no>``, ``<id>/block/<j>`` (the j-th block of
the committed ranking: its root, first sort key and size), ``!work`` (orders settled in the
current block, all promotions). Rules 1: ``<id>/order/<no>`` (the order), ``<id>/at/<i>`` (order
numbers in arrival order), ``<id>/rank/<no>`` (after close).
"""

from __future__ import annotations

import re
from typing import Any

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.errors import ContractError
from xinchain.merkle import MerkleFrontier, MerkleTree

NAME = "promo"
# How long after a payment the payment platform anchors the order, at most: it anchors within
# seconds, and five minutes absorb batching, retries and clock drift. It bounds both ways: a
# payment time more than this before the block time arrived too late to rank (no back-dating
# to jump the queue), one more than this after it is refused (a wrong clock). It is also the
# grace period after the window before anyone may close.
payment_skew_ms = 5 * 60 * 1000
# Orders per anchoring transaction: a busy minute of a promotion in one transaction.
orders_per_tx_max = 1_000
# Orders ranked in one promotion. Anchoring and settling cost the same per order at any size;
# ten million is a ceiling on the state one promotion may take.
orders_per_promo_max = 10_000_000
# Rules 1: a close sorted and committed every order in one transaction, which every validator
# executes within a consensus round, so a promotion held at most 50,000.
orders_per_promo_max_rules_1 = 50_000
winners_max = 100_000
# Entries of the committed ranking in one block: a full block's root is kept in state, so a
# rank receipt rebuilds one block's tree (about a millisecond for 64) and takes the path above
# it from the kept roots (15,625 for a million orders).
ranking_block_entries = 64
# Orders settled in one block, all promotions together: about 0.1 s of execution on every
# validator, so that a block of close steps commits in its first round.
settle_per_block_max = 8_192
# An anchoring transaction settles up to this many orders for each it anchors, once the
# settling point has moved on by `settle_interval_ms`: settling keeps up with arrivals and the
# close has little left to do.
settle_per_order = 2
settle_interval_ms = 1_000
# Payment times are written as 15 digits in sort keys (to the year 33658).
paid_ms_max = 10**15 - 1
_WORK = "!work"
_ORDER_NO = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def ranking_entry(promo: str, rank: int, order: dict[str, Any]) -> dict[str, Any]:
    """The leaf of the committed ranking for one order (its digest is what the root covers)."""
    return {
        "promo": promo,
        "rank": rank,
        "order_no": order["order_no"],
        "paid_ms": order["paid_ms"],
        "buyer_hash": order["buyer_hash"],
        "buyer_mask": order["buyer_mask"],
    }


def ranking_key(order: dict[str, Any]) -> tuple[int, int, int, str, str]:
    """Payment time, then order number, smaller first: numeric order numbers compare as
    numbers (9 before 10), others as text, and numeric ones come before the others."""
    number = order["order_no"]
    if number.isdigit():
        value = number.lstrip("0")
        return order["paid_ms"], 0, len(value), value, number
    return order["paid_ms"], 1, 0, number, number


def sort_key(paid_ms: int, order_no: str) -> str:
    """`ranking_key` as text whose byte order is the ranking: 15 digits of payment time; then
    0, the length of the number without leading zeros in 2 digits, that number, '!' and the
    order number as written; or 1, the order number and '!' (below every character an order
    number may hold, so that a number ranks before the longer ones it begins)."""
    if order_no.isdigit():
        value = order_no.lstrip("0")
        return f"{paid_ms:015d}0{len(value):02d}{value}!{order_no}"
    return f"{paid_ms:015d}1{order_no}!"


def entry_digest(hasher: Any, entry: dict[str, Any]) -> bytes:
    return bytes(hasher(codec.encode(entry)))


def block_key(promo: str, index: int) -> str:
    return f"{promo}/block/{index:09d}"


def rules_of(promo: dict[str, Any]) -> int:
    """The chain rules a promotion was opened under (records of rules 1 do not say)."""
    return int(promo.get("rules", 1))


class Promo(Contract):
    name = NAME

    def methods(self) -> dict[str, Handler]:
        return {"open": self.open, "order": self.order, "close": self.close}

    def roles(self) -> dict[str, frozenset[str]]:
        return {"open": frozenset({"merchant"}), "order": frozenset({"payment"})}

    def open(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"promo", "title", "gift", "starts_ms", "ends_ms", "winners"})
        promo = _identifier(args["promo"])
        if context.read(NAME, promo) is not None:
            raise ContractError(f"promotion {promo!r} already exists", field="args.promo")
        for field in ("title", "gift"):
            if not isinstance(args[field], str) or not 1 <= len(args[field]) <= 200:
                raise ContractError("expected text of 1-200 characters", field=f"args.{field}")
        starts, ends = _count(args["starts_ms"], "starts_ms"), _count(args["ends_ms"], "ends_ms")
        if ends <= starts:
            raise ContractError("the window must end after it starts", field="args.ends_ms")
        winners = _count(args["winners"], "winners")
        if not 1 <= winners <= winners_max:
            raise ContractError(f"expected 1 to {winners_max} winners", field="args.winners")
        record = {
            "promo": promo,
            "title": args["title"],
            "gift": args["gift"],
            "starts_ms": starts,
            "ends_ms": ends,
            "winners": winners,
            "merchant": context.sender,
            "orders": 0,
            "closed": False,
            "root": "",
            "close_tx": "",
        }
        if context.rules >= 2:
            if ends > paid_ms_max:
                raise ContractError(f"expected at most {paid_ms_max}", field="args.ends_ms")
            record.update(
                rules=2,
                skew_ms=payment_skew_ms,
                late=0,
                ranked=0,
                settled_below=starts,
                cursor="",
                block_first="",
                blocks=0,
                block_peaks=[],
                peaks=[],
            )
        context.write(NAME, promo, record)
        return {"promo": promo}

    def order(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"promo", "orders"})
        promo = self._record(context, args["promo"])
        if rules_of(promo) == 1:
            return self._order_rules_1(context, promo, args["orders"])
        self._not_merchant(context, promo)
        orders = _orders(args["orders"])
        late: list[dict[str, Any]] = []
        for index, order in enumerate(orders):
            reason = self._anchor(context, promo, order, f"orders[{index}]")
            if reason:
                late.append({"order_no": order["order_no"], "reason": reason})
        if promo["orders"] > orders_per_promo_max:
            raise ContractError(f"a promotion holds at most {orders_per_promo_max} orders")
        if not promo["closed"]:
            self._settle(context, promo, settle_per_order * len(orders), closing=False)
        context.write(NAME, promo["promo"], promo)
        return {"promo": promo["promo"], "orders": promo["orders"], "late": late}

    def close(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"promo"})
        promo = self._promotion(context, args["promo"])
        if context.sender != promo["merchant"] and "payment" not in context.sender_roles:
            raise ContractError(
                f"org {context.sender!r} may not close promotion {promo['promo']!r}: its "
                "merchant or a payment platform closes it",
                field="sender",
            )
        if rules_of(promo) == 1:
            return self._close_rules_1(context, promo)
        opens_ms = promo["ends_ms"] + promo["skew_ms"]
        if context.time_ms < opens_ms:
            raise ContractError(
                f"the window ended at {promo['ends_ms']} ms and an order paid before then may be "
                f"anchored up to {promo['skew_ms']} ms later: close from {opens_ms} ms on; "
                f"block time is {context.time_ms}",
                field="args.promo",
            )
        self._settle(context, promo, settle_per_block_max, closing=True)
        name = promo["promo"]
        if promo["ranked"] < promo["orders"]:
            context.write(NAME, name, promo)
            return {"promo": name, "ranked": promo["ranked"], "of": promo["orders"]}
        block = self._block_frontier(context, promo)
        peaks = self._peaks(context, promo)
        if block.size:
            self._keep_block(context, promo, block, peaks)
        root = peaks.root().hex()
        promo.update(closed=True, root=root, close_tx=context.tx_id, block_peaks=[], peaks=[])
        context.write(NAME, name, promo)
        return {"root": root, "size": promo["ranked"]}

    # --- rules ---------------------------------------------------------------------------------

    def _record(self, context: CallContext, value: object) -> dict[str, Any]:
        promo = context.read(NAME, _identifier(value))
        if promo is None:
            raise ContractError(f"no promotion {value!r}", field="args.promo")
        return dict(promo)

    def _promotion(self, context: CallContext, value: object) -> dict[str, Any]:
        promo = self._record(context, value)
        if promo["closed"]:
            raise ContractError(f"promotion {value!r} is closed; nothing changes after close")
        return promo

    def _not_merchant(self, context: CallContext, promo: dict[str, Any]) -> None:
        if context.sender == promo["merchant"]:
            raise ContractError(
                f"org {context.sender!r} is the merchant of promotion {promo['promo']!r} and "
                "may not anchor its orders; the payment platform does",
                field="sender",
            )

    def _anchor(
        self, context: CallContext, promo: dict[str, Any], order: dict[str, Any], where: str
    ) -> str:
        """Anchor one order, or record it as too late to rank and say why ("" if anchored)."""
        number, paid, now = order["order_no"], order["paid_ms"], context.time_ms
        skew = promo["skew_ms"]
        if not promo["starts_ms"] <= paid < promo["ends_ms"]:
            raise ContractError(
                f"order {number} paid at {paid} ms, outside the window "
                f"[{promo['starts_ms']}, {promo['ends_ms']}): it cannot rank, whenever it "
                "is anchored",
                field=f"{where}.paid_ms",
            )
        if paid > now + skew:
            raise ContractError(
                f"order {number} paid at {paid} ms, more than {skew} ms after the block time "
                f"{now}: the payment platform's clock is wrong",
                field=f"{where}.paid_ms",
            )
        name = promo["promo"]
        key = f"{name}/order/{number}"
        if context.read(NAME, key) is not None or context.read(NAME, f"{name}/late/{number}"):
            raise ContractError(f"order {number} is already anchored", field=f"{where}.order_no")
        if paid < now - skew:
            reason = (
                f"arrived too late to rank: paid at {paid} ms and anchored at {now} ms, "
                f"{now - paid} ms later; the payment platform anchors within {skew} ms"
            )
            context.write(
                NAME, f"{name}/late/{number}", {**order, "time_ms": now, "reason": reason}
            )
            promo["late"] += 1
            return reason
        sort = sort_key(paid, number)
        context.write(NAME, key, sort)
        context.write(
            NAME, f"{name}/by/{sort}", {**order, "by": context.sender, "height": context.height}
        )
        promo["orders"] += 1
        return ""

    def _settle(
        self, context: CallContext, promo: dict[str, Any], budget: int, *, closing: bool
    ) -> None:
        """Give the next orders of the ranking their ranks: those paid before block time less
        the skew (all of them once the grace is over), in rank order, at most `budget` and what
        is left of this block's `settle_per_block_max`."""
        below = (
            promo["ends_ms"]
            if closing
            else min(context.time_ms - promo["skew_ms"], promo["ends_ms"])
        )
        if not closing and below < promo["settled_below"] + settle_interval_ms:
            return
        height, used = context.read(NAME, _WORK) or [context.height, 0]
        if height != context.height:
            used = 0
        allowed = min(budget, settle_per_block_max - used)
        if allowed <= 0:
            return
        name = promo["promo"]
        start = f"{name}/by/{promo['cursor']}\x00" if promo["cursor"] else f"{name}/by/"
        found = context.scan(NAME, start, f"{name}/by/{below:015d}", allowed)
        if len(found) < allowed:
            promo["settled_below"] = below
        if not found:
            return
        context.write(NAME, _WORK, [context.height, used + len(found)])
        block = self._block_frontier(context, promo)
        peaks = self._peaks(context, promo)
        hasher = context.suite.hash
        for key, order in found:
            sort = key[len(name) + 4 :]
            promo["ranked"] += 1
            if block.size == 0:
                promo["block_first"] = sort
            block.append(entry_digest(hasher, ranking_entry(name, promo["ranked"], order)))
            if block.size == ranking_block_entries:
                self._keep_block(context, promo, block, peaks)
                block = MerkleFrontier(hasher)
            promo["cursor"] = sort
        promo["block_peaks"] = [peak.hex() for peak in block.peaks]
        promo["peaks"] = [peak.hex() for peak in peaks.peaks]

    def _block_frontier(self, context: CallContext, promo: dict[str, Any]) -> MerkleFrontier:
        size = promo["ranked"] - promo["blocks"] * ranking_block_entries
        peaks = [bytes.fromhex(peak) for peak in promo["block_peaks"]]
        return MerkleFrontier(context.suite.hash, size, peaks)

    def _peaks(self, context: CallContext, promo: dict[str, Any]) -> MerkleFrontier:
        peaks = [bytes.fromhex(peak) for peak in promo["peaks"]]
        return MerkleFrontier(context.suite.hash, promo["blocks"], peaks)

    def _keep_block(
        self,
        context: CallContext,
        promo: dict[str, Any],
        block: MerkleFrontier,
        peaks: MerkleFrontier,
    ) -> None:
        root = block.root()
        context.write(
            NAME,
            block_key(promo["promo"], promo["blocks"]),
            {"root": root.hex(), "first": promo["block_first"], "size": block.size},
        )
        peaks.append_hash(root)
        promo["blocks"] += 1

    # --- rules 1 (promotions opened before chain rules 2) --------------------------------------

    def _order_rules_1(
        self, context: CallContext, promo: dict[str, Any], orders: object
    ) -> dict[str, Any]:
        if promo["closed"]:
            raise ContractError(
                f"promotion {promo['promo']!r} is closed; nothing changes after close"
            )
        self._not_merchant(context, promo)
        if not isinstance(orders, list) or not 1 <= len(orders) <= orders_per_tx_max:
            raise ContractError(
                f"expected a list of 1 to {orders_per_tx_max} orders", field="args.orders"
            )
        if promo["orders"] + len(orders) > orders_per_promo_max_rules_1:
            raise ContractError(f"a promotion holds at most {orders_per_promo_max_rules_1} orders")
        for index, order in enumerate(orders):
            self._anchor_rules_1(context, promo, _order(order, f"orders[{index}]"), index)
        context.write(NAME, promo["promo"], promo)
        return {"promo": promo["promo"], "orders": promo["orders"]}

    def _close_rules_1(self, context: CallContext, promo: dict[str, Any]) -> dict[str, Any]:
        if context.time_ms < promo["ends_ms"]:
            raise ContractError(
                f"the window ends at {promo['ends_ms']} ms; block time is {context.time_ms}",
                field="args.promo",
            )
        name = promo["promo"]
        orders = [
            context.read(NAME, f"{name}/order/{context.read(NAME, f'{name}/at/{i}')}")
            for i in range(promo["orders"])
        ]
        orders.sort(key=ranking_key)
        digests = []
        for rank, order in enumerate(orders, start=1):
            context.write(NAME, f"{name}/rank/{order['order_no']}", rank)
            digests.append(entry_digest(context.suite.hash, ranking_entry(name, rank, order)))
        root = MerkleTree(context.suite.hash, digests).root().hex()
        promo.update(closed=True, root=root, close_tx=context.tx_id)
        context.write(NAME, name, promo)
        return {"root": root, "size": len(digests)}

    def _anchor_rules_1(
        self, context: CallContext, promo: dict[str, Any], order: dict[str, Any], index: int
    ) -> None:
        where = f"orders[{index}]"
        paid = order["paid_ms"]
        if not promo["starts_ms"] <= paid < promo["ends_ms"]:
            raise ContractError(
                f"order {order['order_no']} paid at {paid} ms, outside the window "
                f"[{promo['starts_ms']}, {promo['ends_ms']})",
                field=f"{where}.paid_ms",
            )
        if paid < context.time_ms - payment_skew_ms or paid > context.time_ms + payment_skew_ms:
            raise ContractError(
                f"order {order['order_no']} paid at {paid} ms, more than {payment_skew_ms} ms "
                f"from the block time {context.time_ms}",
                field=f"{where}.paid_ms",
            )
        key = f"{promo['promo']}/order/{order['order_no']}"
        if context.read(NAME, key) is not None:
            raise ContractError(
                f"order {order['order_no']} is already anchored", field=f"{where}.order_no"
            )
        context.write(NAME, key, {**order, "by": context.sender, "height": context.height})
        context.write(NAME, f"{promo['promo']}/at/{promo['orders']}", order["order_no"])
        promo["orders"] += 1


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not _ORDER_NO.fullmatch(value):
        raise ContractError("expected a promotion id of 1-64 letters, digits, _ or -")
    return value


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContractError("expected a non-negative integer", field=f"args.{field}")
    return value


def _orders(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= orders_per_tx_max:
        raise ContractError(
            f"expected a list of 1 to {orders_per_tx_max} orders", field="args.orders"
        )
    orders = [_order(order, f"orders[{index}]") for index, order in enumerate(value)]
    return orders


def _order(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {
        "order_no",
        "paid_ms",
        "buyer_hash",
        "buyer_mask",
    }:
        raise ContractError("expected {order_no, paid_ms, buyer_hash, buyer_mask}", field=where)
    if not isinstance(value["order_no"], str) or not _ORDER_NO.fullmatch(value["order_no"]):
        raise ContractError("expected 1-64 letters, digits, _ or -", field=f"{where}.order_no")
    if not isinstance(value["buyer_hash"], str) or not _HEX64.fullmatch(value["buyer_hash"]):
        raise ContractError("expected a salted hash as 64 hex digits", field=f"{where}.buyer_hash")
    mask = value["buyer_mask"]
    if not isinstance(mask, str) or not 1 <= len(mask) <= 16 or "*" not in mask:
        raise ContractError("expected a masked name such as c***3", field=f"{where}.buyer_mask")
    return {
        "order_no": value["order_no"],
        "paid_ms": _count(value["paid_ms"], f"{where}.paid_ms"),
        "buyer_hash": value["buyer_hash"],
        "buyer_mask": mask,
    }
