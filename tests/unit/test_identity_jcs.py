"""RFC 8785 (JSON Canonicalization Scheme), decided by the RFC author's test data: every input
file canonicalizes to the exact bytes of its output file (numbers, Unicode, escapes, key
order by UTF-16 code units)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xinchain.apps.identity.dataintegrity import jcs

DATA = Path(__file__).parents[1] / "data" / "rfc8785"


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "input").glob("*.json")))
def test_each_input_canonicalizes_to_its_output(name: str) -> None:
    value = json.loads((DATA / "input" / name).read_text(encoding="utf-8"))
    expected = (DATA / "output" / name).read_bytes()
    assert jcs(value) == expected
