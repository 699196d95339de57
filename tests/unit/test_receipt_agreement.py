"""`xinchain verify` and a verifier written from docs/receipts.md alone agree on every change.

The second verifier is tests/support/docs_verifier.py: written by someone who read only the
documentation (not src/, not the older spec test), importing nothing from xinchain. The
receipts are genuine ones a node served over its REST API (receipt_kinds.py): files (a single
anchor, every member of a batch), a provenance event, two ranking entries, a registered work
and a piece of evidence, on both suites.

Scenarios, for every receipt on both suites:

* the genuine receipt is accepted by both, pinned (its genesis hash, in upper case too) and
  unpinned (both say it is not pinned); pinned to another hash it is refused by both
* every value mutation, text mutation and forgery of receipt_mutations.py gets the same
  verdict from both, neither crashes, and every one of them is refused
* every other JSON layout of the same values is accepted by both
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docs_verifier
import pytest
from api_harness import SUITE_NAMES, open_harness
from receipt_kinds import Issued, issue_every_kind
from receipt_mutations import forgeries, layouts, text_mutations, value_mutations
from receipts import verify_receipt

from xinchain.errors import XinchainError
from xinchain.receipt import load_receipt_json


@dataclass(frozen=True)
class Chain:
    suite_name: str
    genesis_hash: str
    issued: dict[str, Issued]


@pytest.fixture(scope="module", params=SUITE_NAMES)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    with open_harness(tmp_path_factory.mktemp("kinds"), request.param) as harness:
        yield Chain(request.param, harness.genesis_hash(), issue_every_kind(harness))


Verdict = Callable[[bytes, "bytes | None", "str | None"], str]


def by_xinchain(text: bytes, document: bytes | None, pinned: str | None) -> str:
    try:
        verified = verify_receipt(load_receipt_json(text), document, expected_genesis_hash=pinned)
    except XinchainError:
        return "invalid"
    except Exception as exc:  # a crash is a finding, never a verdict
        return f"crash: {type(exc).__name__}: {exc}"
    return "valid" if verified.pinned else "valid, not pinned"


def by_docs(text: bytes, document: bytes | None, pinned: str | None) -> str:
    try:
        accepted = docs_verifier.verify(text, document, pinned)
    except docs_verifier.Refused:
        return "invalid"
    except Exception as exc:
        return f"crash: {type(exc).__name__}: {exc}"
    return "valid" if accepted.pinned else "valid, not pinned"


def _encoded(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


def _cases(item: Issued) -> Iterator[tuple[str, bytes]]:
    text = _encoded(item.receipt)
    for name, mutated in value_mutations(item.receipt):
        yield name, _encoded(mutated)
    edits = list(text_mutations(json.dumps(item.receipt, indent=1).encode()))
    assert len(edits) == 15, [name for name, _ in edits]  # every edit found its place
    yield from edits
    for name, forged in forgeries(item.receipt):
        yield name, _encoded(forged)
    if item.document is not None:
        yield "file changed", text  # judged against a changed file below


NAMES = ["single", "batch-0", "batch-1", "batch-2", "event", "entry-1000", "entry-1001", "work",
         "work-features", "evidence", "evidence-features"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_both_accept_the_genuine_receipt_pinned_or_not(chain: Chain, name: str) -> None:
    item = chain.issued[name]
    text = _encoded(item.receipt)
    for verdict in (by_xinchain, by_docs):
        assert verdict(text, item.document, None) == "valid, not pinned"
        assert verdict(text, item.document, chain.genesis_hash) == "valid"
        assert verdict(text, item.document, chain.genesis_hash.upper()) == "valid"
        assert verdict(text, item.document, "ab" * 32) == "invalid"


@pytest.mark.slow  # about 40 s for all receipts: a few thousand verifications by each verifier
@pytest.mark.parametrize("name", NAMES)
def test_both_judge_every_change_alike_and_refuse_it(chain: Chain, name: str) -> None:
    item = chain.issued[name]
    disagreements, accepted, tried = [], [], 0
    for case, text in _cases(item):
        document = item.document
        if case == "file changed":
            assert document is not None
            document = document + b"."
        tried += 1
        for pinned in (None, chain.genesis_hash):
            mine, theirs = by_xinchain(text, document, pinned), by_docs(text, document, pinned)
            if mine != theirs:
                disagreements.append(f"{case} (pinned={pinned is not None}): xinchain {mine}, "
                                     f"docs verifier {theirs}")  # fmt: skip
            elif mine != "invalid":
                accepted.append(f"{case}: {mine}")
    assert tried > 150, tried  # the walk reached the whole receipt
    assert not disagreements, "\n".join(disagreements)
    assert not accepted, "\n".join(accepted)


@pytest.mark.parametrize("name", NAMES)
def test_both_accept_every_layout_of_the_same_values(chain: Chain, name: str) -> None:
    item = chain.issued[name]
    for layout, text in layouts(item.receipt):
        for verdict in (by_xinchain, by_docs):
            assert verdict(text, item.document, chain.genesis_hash) == "valid", layout


def test_the_docs_verifier_was_written_without_xinchain() -> None:
    source = Path(docs_verifier.__file__).read_text(encoding="utf-8")
    assert "import xinchain" not in source and "from xinchain" not in source
    assert docs_verifier.SPEC_QUESTIONS, "the author's questions are part of the deliverable"
