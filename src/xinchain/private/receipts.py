"""The private record a receipt carries: `{collection, key, salt, value, writer}`, whose SHA-256
of canonical CBOR is the commitment a `private.put` committed (docs/private-data.md,
"Receipts"). Handing the receipt to someone reveals this one record and nothing else of the
block; the verifier checks it against the commitment like any other record."""

from __future__ import annotations

import json
import re
from typing import Any

from xinchain import codec
from xinchain.contracts.private import KEY_PATTERN, NAME
from xinchain.errors import ReceiptInvalid
from xinchain.records import (
    ReceiptKinds,
    RecordFact,
    RecordKind,
    Words,
    fields,
    hex64,
    identifier,
    refuse,
)
from xinchain.wording import phrase, shown

_KEY = re.compile(KEY_PATTERN)
value_chars_shown_max = 200


def _key(value: object, where: str) -> None:
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise refuse(where, "a key of 1-200 characters from A-Z a-z 0-9 _ . : / -", value)


def _value(value: object, where: str) -> None:
    if not isinstance(value, dict) or not codec.is_text_model(value):
        raise ReceiptInvalid(
            "expected a JSON object of text, integers, booleans, null, lists and objects",
            field=where,
        )


_check_record = fields(
    {"collection": identifier, "key": _key, "salt": hex64, "value": _value, "writer": identifier}
)


def _shown_value(record: dict[str, Any]) -> str:
    text = json.dumps(record["value"], ensure_ascii=False, sort_keys=True)
    if len(text) > value_chars_shown_max:
        text = text[: value_chars_shown_max - 1] + "…"
    return text


def _describe(record: dict[str, Any]) -> Words:
    key, collection, writer = phrase(record["key"]), phrase(record["collection"]), record["writer"]
    value = _shown_value(record)
    return Words(
        f"Org {writer} wrote record {key} of private collection {collection}: {value}.",
        f"机构 {writer} 在隐私数据集合 {collection} 中写入记录 {key}：{value}。",
    )


def _facts(record: dict[str, Any]) -> tuple[RecordFact, ...]:
    return (
        RecordFact(Words("Collection", "集合"), record["collection"]),
        RecordFact(Words("Key", "键"), shown(record["key"])),
        RecordFact(Words("Writer", "写入机构"), record["writer"]),
        RecordFact(Words("Value", "内容"), _shown_value(record)),
        RecordFact(Words("Salt", "盐值"), record["salt"], code=True),
    )


def _subject(record: dict[str, Any]) -> str:
    return f"private record {record['key']} of {record['collection']}"


PRIVATE_RECEIPTS = ReceiptKinds(
    records=(
        RecordKind(
            name="private_record",
            contract=NAME,
            method="put",
            is_a=Words("a private record", "一条隐私数据记录"),
            does=Words(
                "commits a private record sealed to a collection's readers",
                "提交一条加密给集合读者的隐私数据记录",
            ),
            check=_check_record,
            describe=_describe,
            facts=_facts,
            subject=_subject,
            party="writer",
        ),
    )
)
