"""The promo contract: "first N buyers get a gift", ranked by the chain, not by the merchant.

* The merchant opens a promotion: a window [starts_ms, ends_ms), the number of winners N and
  the gift.
* The payment platform — never the merchant — anchors each paid order: order number, payment
  time (ms), a salted hash of the buyer and the buyer's masked name (`c***3`, chosen by the
  platform; no personal data goes on chain).
* The ranking is payment time ascending, then order number ascending. At or after the window's
  end the promotion is closed: the chain sorts the orders, writes each order's rank, and
  commits to the ranked list with an RFC 9162 root over its entries; the top N are final.
  The close transaction's result is that root, so each order gets a receipt proving "order X
  is at rank i of the committed ranking".

Guard rails, each a refusal: an order outside the window; a payment time earlier than the
block time minus `payment_skew_ms` (or later than the block time plus it); a duplicate order
number; an order anchored by the merchant's own org; any order or change after close.

State (key space ``promo/``): ``<id>`` (the promotion), ``<id>/order/<no>``, ``<id>/at/<i>``
(order numbers in arrival order), ``<id>/rank/<no>`` (after close).
"""

from __future__ import annotations

import re
from typing import Any

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.errors import ContractError
from xinchain.merkle import MerkleTree

NAME = "promo"
# How far a payment time may lie from the block that anchors it. Payment platforms anchor
# within seconds; five minutes absorbs batching and clock drift, and no more: an order cannot
# be back-dated to jump the queue.
payment_skew_ms = 5 * 60 * 1000
# Orders per anchoring transaction: a busy minute of a promotion in one transaction.
orders_per_tx_max = 1_000
# Orders per promotion. A close sorts and commits them all in one transaction, which every
# validator executes within a consensus round: 50,000 take a few seconds on a 2-core machine,
# 200,000 take longer than the round timeouts and stall the chain for minutes.
orders_per_promo_max = 50_000
winners_max = 100_000
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


def entry_digest(hasher: Any, entry: dict[str, Any]) -> bytes:
    return bytes(hasher(codec.encode(entry)))


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
        context.write(NAME, promo, record)
        return {"promo": promo}

    def order(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"promo", "orders"})
        promo = self._promotion(context, args["promo"])
        if context.sender == promo["merchant"]:
            raise ContractError(
                f"org {context.sender!r} is the merchant of promotion {promo['promo']!r} and "
                "may not anchor its orders; the payment platform does",
                field="sender",
            )
        orders = args["orders"]
        if not isinstance(orders, list) or not 1 <= len(orders) <= orders_per_tx_max:
            raise ContractError(
                f"expected a list of 1 to {orders_per_tx_max} orders", field="args.orders"
            )
        if promo["orders"] + len(orders) > orders_per_promo_max:
            raise ContractError(f"a promotion holds at most {orders_per_promo_max} orders")
        for index, order in enumerate(orders):
            self._anchor(context, promo, _order(order, f"orders[{index}]"), index)
        context.write(NAME, promo["promo"], promo)
        return {"promo": promo["promo"], "orders": promo["orders"]}

    def close(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"promo"})
        promo = self._promotion(context, args["promo"])
        if context.sender != promo["merchant"] and "payment" not in context.sender_roles:
            raise ContractError(
                f"org {context.sender!r} may not close promotion {promo['promo']!r}: its "
                "merchant or a payment platform closes it",
                field="sender",
            )
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

    # --- rules ---------------------------------------------------------------------------------

    def _promotion(self, context: CallContext, value: object) -> dict[str, Any]:
        promo = context.read(NAME, _identifier(value))
        if promo is None:
            raise ContractError(f"no promotion {value!r}", field="args.promo")
        if promo["closed"]:
            raise ContractError(f"promotion {value!r} is closed; nothing changes after close")
        return dict(promo)

    def _anchor(
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
