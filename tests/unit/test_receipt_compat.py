"""Receipts issued before receipts were hardened still verify; other formats are refused with
a message naming the format and how to get a new receipt.

Scenarios:

* every receipt in tests/data/receipts-2026-11 (issued by commit 2fa7d28, one of each kind on
  both suites) verifies pinned to its chain, by xinchain and by the verifier written from the
  docs alone
* a receipt whose format is another version is refused, naming the version found, the one
  checked, and where a new receipt comes from
"""

from __future__ import annotations

import json
from pathlib import Path

import docs_verifier
import pytest
from receipts import verify_receipt

from xinchain.errors import ReceiptInvalid
from xinchain.receipt import load_receipt_json

ISSUED = Path(__file__).resolve().parents[1] / "data" / "receipts-2026-11"
RECEIPTS = sorted(ISSUED.glob("*.receipt.json"))


def _pinned(path: Path) -> str:
    suite = path.name.split(".")[0]
    return (ISSUED / f"{suite}.genesis-hash").read_text().strip()


def _document(path: Path) -> bytes | None:
    document = path.with_name(path.name.replace(".receipt.json", ".document"))
    return document.read_bytes() if document.exists() else None


def test_every_kind_on_both_suites_is_kept() -> None:
    assert len(RECEIPTS) == 12


@pytest.mark.parametrize("path", RECEIPTS, ids=lambda path: path.name)
def test_a_receipt_issued_before_still_verifies(path: Path) -> None:
    text = path.read_bytes()
    verified = verify_receipt(
        load_receipt_json(text), _document(path), expected_genesis_hash=_pinned(path)
    )
    assert verified.pinned
    assert docs_verifier.verify(text, _document(path), _pinned(path)).pinned


def test_another_format_is_refused_with_the_way_to_a_new_receipt() -> None:
    path = RECEIPTS[0]
    receipt = json.loads(path.read_text())
    receipt["format"] = "xinchain-receipt/0"
    with pytest.raises(ReceiptInvalid) as refused:
        verify_receipt(receipt, _document(path))
    reason = refused.value.reason
    assert "'xinchain-receipt/0'" in reason and "'xinchain-receipt/1'" in reason
    assert "/v1/transactions/{id}/proof" in reason
