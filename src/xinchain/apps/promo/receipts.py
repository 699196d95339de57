"""The promotion record a receipt carries: one entry of a closed promotion's ranking, as
`close` committed it (docs/receipts.md, "Records")."""

from __future__ import annotations

from typing import Any

from xinchain.apps.promo.contract import NAME
from xinchain.records import (
    UINT64_MAX,
    ReceiptKinds,
    RecordFact,
    RecordKind,
    Words,
    fields,
    hex64,
    integer,
    text,
    uint,
)
from xinchain.wording import beijing, both_times, phrase, shown

_check_entry = fields(
    {
        "promo": text,
        "rank": integer(1, UINT64_MAX),
        "order_no": text,
        "paid_ms": uint,
        "buyer_hash": hex64,
        "buyer_mask": text,
    }
)


def _describe_entry(record: dict[str, Any]) -> Words:
    order, promo = phrase(record["order_no"]), phrase(record["promo"])
    paid_english = beijing(record["paid_ms"], milliseconds=True, english=True)
    paid = beijing(record["paid_ms"], milliseconds=True)
    buyer = phrase(record["buyer_mask"])
    rank = record["rank"]
    return Words(
        f"Order {order} is No. {rank} in promotion {promo} (paid {paid_english}, buyer {buyer}).",
        f"订单 {order} 在促销 {promo} 中排名第 {rank}（付款时间 {paid}，买家 {buyer}）。",
    )


def _entry_facts(record: dict[str, Any]) -> tuple[RecordFact, ...]:
    return (
        RecordFact(Words("Promotion", "促销"), shown(record["promo"])),
        RecordFact(Words("Rank", "名次"), str(record["rank"])),
        RecordFact(Words("Order number", "订单号"), shown(record["order_no"])),
        RecordFact(Words("Paid", "付款时间"), both_times(record["paid_ms"])),
        RecordFact(Words("Buyer (as shown)", "买家"), shown(record["buyer_mask"])),
        RecordFact(Words("Buyer hash (keyed)", "买家哈希"), record["buyer_hash"], code=True),
    )


def _entry_subject(record: dict[str, Any]) -> str:
    return f"order {record['order_no']} at rank {record['rank']} of {record['promo']}"


PROMO_RECEIPTS = ReceiptKinds(
    records=(
        RecordKind(
            name="entry",
            contract=NAME,
            method="close",
            is_a=Words("an entry of a promotion ranking", "促销排名条目"),
            does=Words("closes a promotion and commits its ranking", "结束促销并提交排名"),
            check=_check_entry,
            describe=_describe_entry,
            facts=_entry_facts,
            subject=_entry_subject,
        ),
    )
)
