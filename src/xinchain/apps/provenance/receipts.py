"""The provenance record a receipt carries: one GS1 EPCIS event as `record_events` stored it
(docs/receipts.md, "Records")."""

from __future__ import annotations

from typing import Any

from xinchain.apps.provenance.contract import EVENT_TYPES, NAME
from xinchain.records import (
    ReceiptKinds,
    RecordFact,
    RecordKind,
    Words,
    fields,
    list_of,
    one_of,
    text,
    uint,
)
from xinchain.wording import beijing, both_times, count, listed, phrase, phrase_items_max, shown

_check_event = fields(
    {
        "event_id": text,
        "type": one_of(frozenset(EVENT_TYPES)),
        "action": text,
        "biz_step": text,
        "disposition": text,
        "event_time_us": uint,
        "epcs": list_of(text),
        "parent_id": text,
        "read_point": text,
        "biz_location": text,
        "customs_declaration": text,
        "json": text,
    }
)


def _describe_event(record: dict[str, Any]) -> Words:
    epcs = [phrase(epc) for epc in record["epcs"]]
    listed_epcs = ", ".join(epcs[:phrase_items_max])
    more = len(epcs) - phrase_items_max
    what = ", ".join(
        phrase(record[name]) for name in ("action", "biz_step", "disposition") if record[name]
    )
    milliseconds = record["event_time_us"] // 1000
    english = [f"GS1 EPCIS {phrase(record['type'])}"]
    chinese = [f"GS1 EPCIS 事件 {phrase(record['type'])}"]
    if what:
        english.append(f" ({what})")
        chinese.append(f"（{what}）")
    english.append(f" at {beijing(milliseconds, milliseconds=True, english=True)}")
    chinese.append(f"，发生于 {beijing(milliseconds, milliseconds=True)}")
    if record["read_point"]:
        english.append(f" at read point {phrase(record['read_point'])}")
        chinese.append(f"，读取点 {phrase(record['read_point'])}")
    elif record["biz_location"]:
        english.append(f" at business location {phrase(record['biz_location'])}")
        chinese.append(f"，业务地点 {phrase(record['biz_location'])}")
    if epcs:
        english.append(f" for {count(len(epcs), 'item')}: {listed_epcs}")
        chinese.append(f"，涉及 {len(epcs)} 个物品：{listed_epcs}")
    if more > 0:
        english.append(f" and {more} more")
        chinese.append(f" 等（另 {more} 个）")
    return Words("".join(english) + ".", "".join(chinese) + "。")


_OPTIONAL = (
    ("parent_id", Words("Parent id", "上级包装")),
    ("read_point", Words("Read point", "读取点")),
    ("biz_location", Words("Business location", "业务地点")),
    ("customs_declaration", Words("Customs declaration", "报关单号")),
)


def _event_facts(record: dict[str, Any]) -> tuple[RecordFact, ...]:
    facts = [
        RecordFact(Words("Event id", "事件编号"), shown(record["event_id"]) or "—"),
        RecordFact(Words("Event time", "事件时间"), both_times(record["event_time_us"] // 1000)),
        RecordFact(Words("Items (EPC)", "物品 EPC"), listed([shown(e) for e in record["epcs"]])),
    ]
    facts += [RecordFact(label, shown(record[name])) for name, label in _OPTIONAL if record[name]]
    return tuple(facts)


def _event_subject(record: dict[str, Any]) -> str:
    return f"event {record['biz_step']} {record['event_id']}".strip()


PROVENANCE_RECEIPTS = ReceiptKinds(
    records=(
        RecordKind(
            name="event",
            contract=NAME,
            method="record_events",
            is_a=Words("a GS1 EPCIS supply-chain event", "GS1 EPCIS 溯源事件"),
            does=Words("records supply-chain events", "记录溯源事件"),
            check=_check_event,
            describe=_describe_event,
            facts=_event_facts,
            subject=_event_subject,
        ),
    )
)
