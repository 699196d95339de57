"""What a receipt can prove, as each app declares it: the seam between the receipt verifier
(core) and the apps.

A receipt proves either a file (a document hash anchored by an `AnchorMethod`) or one record
that an app's contract method builds itself from what it checked (a `RecordKind`). Apps list
theirs in their `AppSpec`; the registry gathers them into one `ReceiptKinds`, which the CLI
hands to `xinchain.receipt.verify_receipt` and the report reads its words from. The verifier
knows no kind of its own: a receipt whose method or record no app declared is refused.

The field checks below are the building blocks of a record kind's exact form
(docs/receipts.md, "Records"); each raises `ReceiptInvalid` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xinchain.errors import ConfigError, ReceiptInvalid

FieldCheck = Callable[[Any, str], None]
UINT64_MAX = 2**64 - 1
_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_HEX32 = re.compile(r"^[0-9a-f]{64}$")


# --- what an app declares -----------------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """One statement in both languages."""

    english: str
    chinese: str


@dataclass(frozen=True)
class RecordFact:
    """One labelled value of a record that a reader checks it by (the report lists them)."""

    label: Words
    value: str
    code: bool = False  # a hash or an id: monospace, broken anywhere


@dataclass(frozen=True)
class AnchorMethod:
    """A contract method whose successful result anchors document hashes: a receipt naming it
    proves a file."""

    contract: str
    method: str
    does: Words  # what the method does, in a few words


@dataclass(frozen=True)
class RecordKind:
    """A record a receipt can carry (its field name is `name`), proven only by `method` of
    `contract`, which builds the record itself from what it checked.

    * `check(record, where)`: the record's exact form, every field and its type, and any rule
      across fields; raises `ReceiptInvalid` naming the field.
    * `party`: the field that must name the result's sender ("" when the record names none).
    * `describe(record)`: what the record says, one sentence each in English and Chinese.
    * `facts(record)`: its ids, hashes and times, in full, for the report.
    * `subject(record)`: a few words for `xinchain verify`'s "valid:" line.
    `describe`, `facts` and `subject` are given only a record `check` accepted.
    """

    name: str
    contract: str
    method: str
    is_a: Words  # "a registered photo"
    does: Words  # what the method does
    check: FieldCheck
    describe: Callable[[dict[str, Any]], Words]
    facts: Callable[[dict[str, Any]], tuple[RecordFact, ...]]
    subject: Callable[[dict[str, Any]], str]
    party: str = ""


@dataclass(frozen=True)
class ReceiptKinds:
    """Every anchor method and record kind the verifier accepts."""

    anchors: tuple[AnchorMethod, ...] = ()
    records: tuple[RecordKind, ...] = ()

    @classmethod
    def gather(cls, parts: Iterable[ReceiptKinds], reserved: Iterable[str] = ()) -> ReceiptKinds:
        """One set from the apps' own; refuses two declarations of one method or record name,
        or a record named like a field every receipt has (`reserved`)."""
        anchors: list[AnchorMethod] = []
        records: list[RecordKind] = []
        methods: set[tuple[str, str]] = set()
        names: set[str] = set(reserved)
        for part in parts:
            for anchor in part.anchors:
                pair = (anchor.contract, anchor.method)
                if pair in methods:
                    raise ConfigError(f"{'.'.join(pair)} is declared by two receipt kinds")
                methods.add(pair)
                anchors.append(anchor)
            for record in part.records:
                pair = (record.contract, record.method)
                if pair in methods:
                    raise ConfigError(f"{'.'.join(pair)} is declared by two receipt kinds")
                if record.name in names:
                    raise ConfigError(
                        f"record kind {record.name!r} is declared twice or names a receipt field"
                    )
                methods.add(pair)
                names.add(record.name)
                records.append(record)
        return cls(tuple(anchors), tuple(records))

    def record(self, name: str) -> RecordKind | None:
        return next((kind for kind in self.records if kind.name == name), None)

    def record_for(self, contract: str, method: str) -> RecordKind | None:
        return next((k for k in self.records if (k.contract, k.method) == (contract, method)), None)

    def anchor(self, contract: str, method: str) -> AnchorMethod | None:
        return next((a for a in self.anchors if (a.contract, a.method) == (contract, method)), None)

    def does(self, contract: str, method: str) -> Words | None:
        """What a method a receipt can name does, if it is one."""
        found = self.anchor(contract, method) or self.record_for(contract, method)
        return found.does if found is not None else None


# --- field checks -------------------------------------------------------------------------------


def refuse(where: str, expected: str, value: object) -> ReceiptInvalid:
    """The error for a field that is not what was expected, with the value shown short."""
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ReceiptInvalid(f"expected {expected}, found {shown}", field=where)


def text(value: object, where: str) -> None:
    if not isinstance(value, str):
        raise refuse(where, "text", value)


def identifier(value: object, where: str) -> None:
    """An org id."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise refuse(where, "an org id (1-64 of a-z 0-9 _ . -, starting with a-z 0-9)", value)


def hex64(value: object, where: str) -> None:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise refuse(where, "64 lowercase hex digits", value)


def hex64_or_empty(value: object, where: str) -> None:
    if value != "":
        hex64(value, where)


def integer(lowest: int, highest: int) -> FieldCheck:
    def check(value: object, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse(where, f"an integer from {lowest} to {highest}", value)
        if not lowest <= value <= highest:
            raise refuse(where, f"an integer from {lowest} to {highest}", value)

    return check


uint = integer(0, UINT64_MAX)


def one_of(choices: frozenset[str]) -> FieldCheck:
    def check(value: object, where: str) -> None:
        if not isinstance(value, str) or value not in choices:
            raise refuse(where, f"one of {sorted(choices)}", value)

    return check


def list_of(item_check: FieldCheck) -> FieldCheck:
    def check(value: object, where: str) -> None:
        if not isinstance(value, list):
            raise refuse(where, "an array", value)
        for index, item in enumerate(value):
            item_check(item, f"{where}[{index}]")

    return check


def fields(
    schema: Mapping[str, FieldCheck], optional: Mapping[str, FieldCheck] | None = None
) -> FieldCheck:
    """An object with exactly these fields, each checked, and any of the `optional` ones."""
    extra_allowed = dict(optional or {})

    def check(value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise refuse(where, "an object", value)
        present_optional = set(value) & set(extra_allowed)
        if set(value) - present_optional != set(schema):
            found = set(value) - present_optional
            missing, extra = sorted(set(schema) - found), sorted(found - set(schema))
            allowed = f" (and optionally {sorted(extra_allowed)})" if extra_allowed else ""
            raise ReceiptInvalid(
                f"expected exactly the fields {sorted(schema)}{allowed}: missing {missing}, "
                f"unexpected {extra}",
                field=where,
            )
        for name, field_check in schema.items():
            field_check(value[name], f"{where}.{name}")
        for name in sorted(present_optional):
            extra_allowed[name](value[name], f"{where}.{name}")

    return check
