"""The notice record a receipt carries, and what the report says of it."""

from __future__ import annotations

from typing import Any

from xinchain.apps.notice.contract import NAME, notice_chars_max

from xinchain.records import (
    ReceiptKinds,
    RecordFact,
    RecordKind,
    Words,
    fields,
    identifier,
    refuse,
    text,
    uint,
)
from xinchain.wording import both_times, phrase, shown

_check = fields({"text": text, "org": identifier, "time_ms": uint})


def _check_notice(record: object, where: str) -> None:
    _check(record, where)
    assert isinstance(record, dict)
    if not 1 <= len(record["text"]) <= notice_chars_max:
        raise refuse(f"{where}.text", f"1 to {notice_chars_max} characters", record["text"])


def _describe(record: dict[str, Any]) -> Words:
    org, said = phrase(record["org"]), phrase(record["text"])
    return Words(f"Org {org} posted the notice: {said}", f"机构 {org} 发布公告：{said}")


def _facts(record: dict[str, Any]) -> tuple[RecordFact, ...]:
    return (
        RecordFact(Words("Notice", "公告"), shown(record["text"])),
        RecordFact(Words("Posted by", "发布机构"), shown(record["org"])),
        RecordFact(Words("Posted", "发布时间"), both_times(record["time_ms"])),
    )


NOTICE_RECEIPTS = ReceiptKinds(
    records=(
        RecordKind(
            name="notice",
            contract=NAME,
            method="post",
            is_a=Words("a public notice", "公告"),
            does=Words("posts a public notice", "发布公告"),
            check=_check_notice,
            describe=_describe,
            facts=_facts,
            subject=lambda record: f"notice by {record['org']}",
            party="org",
        ),
    )
)
