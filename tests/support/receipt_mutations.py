"""Ways to change a genuine receipt, for tests that compare verifiers on them.

Three families, each named so a failing test says which change the verifiers disagree on:

* `value_mutations`: every node of the JSON tree changed one way at a time: a value changed
  within its type, given another type, made a fraction, pushed past 64 bits, made negative,
  uppercased, made unencodable, nulled; each key deleted, each object given an extra key; each
  list shortened, lengthened, reversed;
* `text_mutations`: the file's bytes: a duplicate key, a byte order mark, Latin-1, an integer
  of 2^64, `-0`, an exponent, trailing data, a top-level array, deep nesting;
* `forgeries`: the record moved to another kind, dropped, or added to a receipt that proves a
  file;
* `layouts`: the same values in another JSON layout, which both verifiers must accept.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

JsonPath = tuple[str | int, ...]
RECORD_KINDS = ("event", "entry", "work", "evidence")
_LOWER_HEX = set("0123456789abcdef")
LONE_SURROGATE = "\ud800"


def _walk(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def _lookup(tree: Any, path: JsonPath) -> Any:
    for step in path:
        tree = tree[step]
    return tree


def _replaced(receipt: dict[str, Any], path: JsonPath, value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(receipt)
    _lookup(mutated, path[:-1])[path[-1]] = value
    return mutated


def _replacements(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, bool):
        yield "negated", not value
        yield "as integer", int(value)
        yield "as text", "true" if value else "false"
    elif isinstance(value, int):
        yield "plus one", value + 1
        if value > 0:
            yield "minus one", value - 1
        yield "negative", -value - 1
        yield "as text", str(value)
        yield "as fraction", value + 0.5
        yield "beyond 64 bits", value + 2**64
        if value in (0, 1):
            yield "as boolean", bool(value)
    elif isinstance(value, str):
        if value and set(value) <= _LOWER_HEX:
            yield "first hex digit changed", _flip(value, 0)
            yield "last hex digit changed", _flip(value, -1)
            if set(value) & set("abcdef"):
                yield "uppercased", value.upper()
            yield "one digit longer", value + "0"
            yield "one byte shorter", value[:-2]
        else:
            yield "text changed", value + "x"
            if value:
                yield "emptied", ""
        yield "unencodable text", value + LONE_SURROGATE
        yield "as integer", 7
    elif isinstance(value, list):
        yield "as object", {}
    elif isinstance(value, dict):
        yield "as array", []
    yield "null", None


def _flip(text: str, position: int) -> str:
    index = position % len(text)
    digit = "0123456789abcdef"[("0123456789abcdef".index(text[index]) + 1) % 16]
    return text[:index] + digit + text[index + 1 :]


def value_mutations(receipt: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, value in _walk(receipt):
        where = ".".join(str(step) for step in path) or "receipt"
        if path:
            for label, replacement in _replacements(value):
                yield f"{where}: {label}", _replaced(receipt, path, replacement)
        if isinstance(value, dict):
            for key in value:
                mutated = copy.deepcopy(receipt)
                del _lookup(mutated, path)[key]
                yield f"{where}: key {key!r} deleted", mutated
            mutated = copy.deepcopy(receipt)
            _lookup(mutated, path)["extra"] = 0
            yield f"{where}: key 'extra' added", mutated
        if isinstance(value, list) and value:
            mutated = copy.deepcopy(receipt)
            _lookup(mutated, path).pop()
            yield f"{where}: last item removed", mutated
            mutated = copy.deepcopy(receipt)
            _lookup(mutated, path).append(copy.deepcopy(value[-1]))
            yield f"{where}: last item repeated", mutated
            if len(value) > 1 and value != value[::-1]:
                yield f"{where}: reversed", _replaced(receipt, path, value[::-1])


def text_mutations(text: bytes) -> Iterator[tuple[str, bytes]]:
    """Edits of the file's bytes; each one yielded changes the text (an edit that finds nothing
    to change is left out rather than passed off as a mutation)."""

    def at_round(replacement: bytes) -> bytes:
        return re.sub(rb'"round": [0-9]+', b'"round": ' + replacement, text, count=1)

    edits = [
        ("duplicate key", text.replace(b'"ok": true', b'"ok": false, "ok": true', 1)),
        ("duplicate top-level key", text.replace(b"{", b'{"format": "x", ', 1)),
        ("byte order mark", b"\xef\xbb\xbf" + text),
        ("latin-1 byte in a string", text.replace(b'"sender": "', b'"sender": "\xe9', 1)),
        ("integer of 2^64", at_round(b"18446744073709551616")),
        ("negative integer", at_round(b"-1")),
        ("minus zero", at_round(b"-0")),
        ("exponent", at_round(b"0e0")),
        ("fraction", at_round(b"0.0")),
        ("NaN", at_round(b"NaN")),
        ("trailing data", text + b" {}"),
        ("top-level array", b"[" + text + b"]"),
        ("deep nesting", at_round(b"[" * 40 + b"]" * 40)),
        ("escaped lone surrogate", text.replace(b'"sender": "', b'"sender": "\\ud800', 1)),
        ("not JSON", text[:-2]),
    ]
    for name, edited in edits:
        if edited != text:
            yield name, edited


def forgeries(receipt: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    carried = [kind for kind in RECORD_KINDS if kind in receipt]
    if carried:
        kind = carried[0]
        record = receipt[kind]
        for other in RECORD_KINDS:
            if other != kind:
                relabelled = {k: v for k, v in receipt.items() if k != kind}
                relabelled[other] = record
                yield f"{kind} relabelled as {other}", relabelled
        yield f"{kind} dropped", {k: v for k, v in receipt.items() if k != kind}
        yield (
            f"a second record ({kind} twice)",
            {**receipt, "entry" if kind != "entry" else "event": record},
        )
        for contract, method in (("notary", "anchor"), ("notary", "anchor_batch")):
            result = {**receipt["result"], "contract": contract, "method": method}
            yield f"{kind} under {contract}.{method}", {**receipt, "result": result}
    else:
        for kind in RECORD_KINDS:
            yield f"file receipt given a {kind}", {**receipt, kind: {"rank": 1}}
        for contract, method in (("promo", "close"), ("copyright", "register")):
            result = {**receipt["result"], "contract": contract, "method": method}
            yield f"file under {contract}.{method}", {**receipt, "result": result}
    yield "format 2", {**receipt, "format": "xinchain-receipt/2"}


def layouts(receipt: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    yield "compact", json.dumps(receipt, separators=(",", ":")).encode()
    yield "indented, keys sorted", json.dumps(receipt, indent=4, sort_keys=True).encode()
    yield "ASCII escapes", json.dumps(receipt, ensure_ascii=True).encode()
    yield "keys reversed", json.dumps(_reverse_keys(receipt), ensure_ascii=False).encode()
    yield "CRLF and tabs", json.dumps(receipt, indent="\t").replace("\n", "\r\n").encode()


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reverse_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(item) for item in value]
    return value
