"""The receipt verifier as `xinchain verify` runs it: with the record kinds and anchor methods
of this build's apps (the registry's RECEIPT_KINDS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xinchain import receipt as core
from xinchain.apps.registry import RECEIPT_KINDS


def verify_receipt(
    value: dict[str, Any],
    document: bytes | None,
    *,
    expected_genesis_hash: str | None = None,
    trusted_chains: Mapping[str, str] | None = None,
) -> core.VerifiedReceipt:
    return core.verify_receipt(
        value,
        document,
        kinds=RECEIPT_KINDS,
        expected_genesis_hash=expected_genesis_hash,
        trusted_chains=trusted_chains,
    )


def inspect_receipt(
    value: dict[str, Any],
    document: bytes | None,
    *,
    expected_genesis_hash: str | None = None,
    trusted_chains: Mapping[str, str] | None = None,
) -> core.Verification:
    return core.inspect_receipt(
        value,
        document,
        kinds=RECEIPT_KINDS,
        expected_genesis_hash=expected_genesis_hash,
        trusted_chains=trusted_chains,
    )


def check_record(kind: str, record: object) -> None:
    """Raise ReceiptInvalid unless `record` has exactly the form of its kind."""
    declared = RECEIPT_KINDS.record(kind)
    assert declared is not None, f"no app declares record kind {kind!r}"
    declared.check(record, kind)


def describe_record(kind: str, record: dict[str, Any]) -> tuple[str, str]:
    """What the report says a record says: (English, Chinese)."""
    declared = RECEIPT_KINDS.record(kind)
    assert declared is not None, f"no app declares record kind {kind!r}"
    said = declared.describe(record)
    return said.english, said.chinese
