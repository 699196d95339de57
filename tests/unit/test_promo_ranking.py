"""The promotion ranking rule and the masks the public page shows.

Scenarios:
- payment time first; at one payment time numeric order numbers rank as numbers (9 before
  10), leading zeros aside, and before non-numeric ones, which rank as text;
- order numbers are masked in the middle, short ones included.
"""

from __future__ import annotations

from xinchain.apps.promo.contract import ranking_key
from xinchain.apps.promo.view import mask_order_number


def _order(order_no: str, paid_ms: int = 1) -> dict[str, object]:
    return {"order_no": order_no, "paid_ms": paid_ms}


def test_payment_time_decides_first() -> None:
    early, late = _order("99", paid_ms=1), _order("1", paid_ms=2)
    assert sorted([late, early], key=ranking_key) == [early, late]


def test_numeric_order_numbers_rank_as_numbers() -> None:
    orders = [_order(n) for n in ("10", "9", "0011", "100", "A7", "B1")]
    ranked = [order["order_no"] for order in sorted(orders, key=ranking_key)]
    assert ranked == ["9", "10", "0011", "100", "A7", "B1"]


def test_order_numbers_are_masked_in_the_middle() -> None:
    assert mask_order_number("14543705171204") == "1454****1204"
    assert mask_order_number("1234") == "1**4"
    assert mask_order_number("12") == "**"
    assert mask_order_number("7") == "*"
