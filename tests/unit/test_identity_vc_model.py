"""The VC Data Model 2.0, decided by the W3C test suite's own input fixtures, unchanged
(tests/data/w3c/vc-data-model-2.0, SOURCE.md): all 65 `-ok` files are accepted, all 49 `-fail`
files and the 3 `-fail-or-inject` files refused, each naming a field; the issuer filled in as
the suite fills it in before issuing, and the validity placeholders as its testTemporality
fills them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from xinchain.apps.identity.vcmodel import ModelError, check_credential, check_presentation

FIXTURES = Path(__file__).parents[1] / "data" / "w3c" / "vc-data-model-2.0"
ISSUER = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
# The suite's testTemporality fills these placeholders with a year before and after now.
PLACEHOLDERS = {"PAST DATE": "2025-12-04T00:00:00Z", "FUTURE DATE": "2027-12-04T00:00:00Z"}


def fixtures(suffix: str) -> list[str]:
    names = [
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.rglob("*.json")
        if path.name.endswith(suffix)
    ]
    return sorted(names)


def with_issuer(credential: dict[str, Any]) -> dict[str, Any]:
    """The suite's createRequestBody: fill in the issuer unless it is explicitly null."""
    filled = copy.deepcopy(credential)
    issuer = filled.get("issuer")
    if isinstance(issuer, dict):
        if not ("id" in issuer and issuer["id"] is None):
            issuer["id"] = issuer.get("id") or ISSUER
    elif not ("issuer" in filled and filled["issuer"] is None):
        filled["issuer"] = filled.get("issuer") or ISSUER
    for name in ("validFrom", "validUntil"):
        if filled.get(name) in PLACEHOLDERS:
            filled[name] = PLACEHOLDERS[filled[name]]
    return filled


def check(name: str) -> None:
    document = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if Path(name).name.startswith("presentation-"):
        check_presentation(document)
    else:
        check_credential(with_issuer(document))


def test_the_fixture_counts_are_the_suites() -> None:
    assert (len(fixtures("-ok.json")), len(fixtures("-fail.json"))) == (65, 49)
    assert len(fixtures("-fail-or-inject.json")) == 3


@pytest.mark.parametrize("name", fixtures("-ok.json"))
def test_accepted(name: str) -> None:
    check(name)


@pytest.mark.parametrize("name", fixtures("-fail.json") + fixtures("-fail-or-inject.json"))
def test_refused(name: str) -> None:
    with pytest.raises(ModelError) as refused:
        check(name)
    assert refused.value.field, refused.value.reason
