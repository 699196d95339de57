"""The copyright contract on an in-process chain, under both crypto suites.

Orgs: org0 is a platform (it vouches for sellers), org1 a brand, org2 a plain member, org3 a
regulator.

registration
- a batch of works answers the RFC 9162 root over H(CBOR(record)) of each, in order, and its
  size; each record names the image's SHA-256, PDQ, quality, crops, title, org, seller and the
  block time; the works are numbered in registration order (count, at/<n>) and listed under the
  registering org
- a platform registers a work for a seller it names; the record says which platform vouched
- the first registration of an image stands: the same SHA-256 again (by anyone, or twice in one
  batch) is refused, naming the first owner, and nothing is written
- refused, naming the field: an org that is not a platform naming a seller; a malformed seller
  id; SHA-256 or PDQ not 64 lowercase hex digits; quality outside 0-100 or a bool; more than 25
  crops; a malformed crop; an empty, over-long or non-printable title; missing or extra fields;
  an empty batch or one over the limit

evidence
- the owner org records evidence: the contract computes the distance from the copy's PDQ to the
  nearest of the work's stored hashes (its PDQ and its crops); the evidence id is H(CBOR(record));
  it is listed under the work, under the recorder, and under its transaction
- without a copy PDQ the distance is -1
- a regulator records evidence for any work; another org is refused, naming who may
- the platform that vouched for a seller records evidence for the seller's work
- refused: an unknown work; a URL that is not http(s); no files, a file listed twice, a file
  name with a path in it; a capture time after the block time beyond the skew; a malformed copy
  PDQ; a note over 500 characters
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from chain_helpers import SUITE_NAMES, Chain, make_consortium

from xinchain import codec
from xinchain.apps.copyright.contract import capture_skew_ms, crop_hashes_max, works_per_tx_max
from xinchain.apps.copyright.features import LocalFeatures
from xinchain.contracts.governance import RULES_4_GENESIS_MS
from xinchain.merkle import MerkleTree
from xinchain.types import TxResult

ROLES = {
    "org0": ["platform"],
    "org1": ["brand"],
    "org2": ["member"],
    "org3": ["regulator"],
}


@pytest.fixture(params=SUITE_NAMES)
def chain(request: pytest.FixtureRequest) -> Chain:
    return Chain(make_consortium(request.param, org_count=4, roles=ROLES))


def hex_of(number: int) -> str:
    return number.to_bytes(32, "big").hex()


def spread(text: str) -> str:
    """A 256-bit value about 128 bits from any other such value."""
    return hashlib.sha256(text.encode()).hexdigest()


def a_work(number: int, **changes: Any) -> dict[str, Any]:
    work = {
        "sha256": hex_of(number),
        "pdq": spread(f"pdq {number}"),
        "quality": 90,
        "crops": [spread(f"crop {number} {k}") for k in range(25)],
        "title": f"photo {number}",
        "seller": "",
    }
    work.update(changes)
    return work


def register(chain: Chain, works: list[dict[str, Any]], sender: str = "org1") -> TxResult:
    return chain.call(sender, "copyright", "register", {"works": works})


def refused(chain: Chain, sender: str, method: str, args: dict[str, Any]) -> TxResult:
    block = chain.commit_txs([chain.sign(sender, "copyright", method, args)])
    result = block.results[0]
    assert not result.ok, "the contract accepted the call"
    assert block.execution.writes == {}
    return result


def state(chain: Chain, key: str) -> Any:
    return chain.app.read_state("copyright", key)


def evidence_args(of_work: str, **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "work": of_work,
        "url": "https://shop.example/item/1",
        "files": [{"name": "copy.jpg", "sha256": hex_of(99)}],
        "captured_ms": 1_700_000_000_000,
        "copy_pdq": "",
        "note": "",
    }
    args.update(changes)
    return args


# --- registration ------------------------------------------------------------------------------


def test_a_batch_answers_the_root_over_its_records_and_numbers_the_works(chain: Chain) -> None:
    result = register(chain, [a_work(1), a_work(2)])

    assert result.ok, result.error
    records = [state(chain, f"work/{hex_of(n)}")["record"] for n in (1, 2)]
    digests = [chain.suite.hash(codec.encode(record)) for record in records]
    assert result.data == {"root": MerkleTree(chain.suite.hash, digests).root().hex(), "size": 2}
    height = chain.app.tip().height
    assert records[0] == {
        **a_work(1),
        "org": "org1",
        "time_ms": chain.app.block(height).header.time_ms,  # type: ignore[union-attr]
    }
    assert state(chain, "count") == 2
    assert [state(chain, f"at/{n}") for n in (0, 1)] == [hex_of(1), hex_of(2)]
    assert state(chain, "owner/org1/000000000001") == hex_of(2)


def test_a_platform_registers_for_a_seller_it_names(chain: Chain) -> None:
    assert register(chain, [a_work(1, seller="shop-42")], sender="org0").ok

    record = state(chain, f"work/{hex_of(1)}")["record"]
    assert (record["org"], record["seller"]) == ("org0", "shop-42")


def test_from_rules_4_a_seller_may_be_named_by_its_did() -> None:
    """Merchants are DIDs (docs/did-method.md): a platform may name the seller by its did:xin
    on this chain; under older rules the same registration is refused as it was then."""
    new_chain = Chain(
        make_consortium("ed25519-sha256", org_count=4, roles=ROLES, time_ms=RULES_4_GENESIS_MS)
    )
    did = f"did:xin:{new_chain.consortium.genesis.chain_id}:merchant-7d2f"
    assert register(new_chain, [a_work(1, seller=did)], sender="org0").ok
    assert state(new_chain, f"work/{hex_of(1)}")["record"]["seller"] == did
    other_chain = register(
        new_chain, [a_work(2, seller="did:xin:another-chain:merchant-7d2f")], sender="org0"
    )
    assert not other_chain.ok and "or the seller's DID" in other_chain.error
    old_chain = Chain(
        make_consortium("ed25519-sha256", org_count=4, roles=ROLES, time_ms=RULES_4_GENESIS_MS - 1)
    )
    old = register(
        old_chain,
        [a_work(1, seller=f"did:xin:{old_chain.consortium.genesis.chain_id}:m")],
        sender="org0",
    )
    assert not old.ok
    assert old.error.endswith(
        "expected a seller id of 1-64 letters, digits or _.@- (empty when the sending org owns "
        "the work)"
    )


@pytest.mark.parametrize("again_by", ["org1", "org2"])
def test_the_first_registration_stands(chain: Chain, again_by: str) -> None:
    assert register(chain, [a_work(1)]).ok

    result = refused(chain, again_by, "register", {"works": [a_work(1, title="mine")]})

    assert "already registered" in result.error and "'org1'" in result.error
    assert state(chain, f"work/{hex_of(1)}")["record"]["title"] == "photo 1"


def test_the_same_image_twice_in_one_batch_is_refused(chain: Chain) -> None:
    result = refused(chain, "org1", "register", {"works": [a_work(1), a_work(1)]})
    assert "args.works[1].sha256" in result.error


@pytest.mark.parametrize(
    ("sender", "work", "field"),
    [
        ("org1", a_work(1, seller="shop-42"), "seller"),
        ("org0", a_work(1, seller="shop 42"), "seller"),
        ("org1", a_work(1, sha256="AB" * 32), "sha256"),
        ("org1", a_work(1, sha256=hex_of(1)[:62]), "sha256"),
        ("org1", a_work(1, pdq=b"\x00" * 32), "pdq"),
        ("org1", a_work(1, quality=101), "quality"),
        ("org1", a_work(1, quality=-1), "quality"),
        ("org1", a_work(1, quality=True), "quality"),
        ("org1", a_work(1, crops=[hex_of(5)] * (crop_hashes_max + 1)), "crops"),
        ("org1", a_work(1, crops=["x" * 64]), "crops[0]"),
        ("org1", a_work(1, title=""), "title"),
        ("org1", a_work(1, title="t" * 201), "title"),
        ("org1", a_work(1, title="line\nbreak"), "title"),
        ("org1", {k: v for k, v in a_work(1).items() if k != "title"}, "args.works[0]"),
        ("org1", {**a_work(1), "owner": "me"}, "args.works[0]"),
    ],
)
def test_malformed_works_are_refused_naming_the_field(
    chain: Chain, sender: str, work: dict[str, Any], field: str
) -> None:
    result = refused(chain, sender, "register", {"works": [work]})
    assert field in result.error


def _features(points: int = 3) -> str:
    """Local features as a client encodes them: `points` points in a 512 x 384 frame."""
    positions = np.array([[10.5 + n, 20.25 * n] for n in range(points)], dtype=np.float32)
    descriptors = np.arange(points * 32, dtype=np.uint8).reshape(points, 32)
    return LocalFeatures(512, 384, positions, descriptors).encode()


def test_a_work_may_carry_its_local_features_and_keeps_them(chain: Chain) -> None:
    with_features = a_work(1, features=_features())
    assert register(chain, [with_features, a_work(2)]).ok
    assert state(chain, f"work/{hex_of(1)}")["record"]["features"] == _features()
    assert "features" not in state(chain, f"work/{hex_of(2)}")["record"]


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        (17, "base64 text"),
        ("", "format 1"),
        ("not base64!", "standard base64"),
        (_features()[:-4], "points of 36 bytes"),
        # The same bytes spelt with the last character's unused bits set: not canonical.
        (_features()[:-2] + chr(ord(_features()[-2]) + 1) + "=", "canonical base64"),
    ],
)
def test_local_features_that_are_not_what_a_client_encodes_are_refused(
    chain: Chain, features: object, expected: str
) -> None:
    result = refused(chain, "org1", "register", {"works": [a_work(1, features=features)]})
    assert "args.works[0].features" in result.error
    assert expected in result.error


def test_batch_sizes_are_bounded(chain: Chain) -> None:
    refused(chain, "org1", "register", {"works": []})
    too_many = [a_work(n) for n in range(1, works_per_tx_max + 2)]
    result = refused(chain, "org1", "register", {"works": too_many})
    assert f"1 to {works_per_tx_max}" in result.error


# --- evidence ----------------------------------------------------------------------------------


def test_evidence_may_say_how_many_of_the_works_points_the_copy_shows(chain: Chain) -> None:
    assert register(chain, [a_work(1, features=_features(5)), a_work(2)]).ok
    result = chain.call("org1", "copyright", "evidence", evidence_args(hex_of(1), inliers=4))
    assert result.ok, result.error
    evidence_id = state(chain, "of/" + hex_of(1) + "/00000000")
    record = state(chain, f"evidence/{evidence_id}")["record"]
    assert (record["inliers"], record["points"]) == (4, 5)
    plain = chain.call("org1", "copyright", "evidence", evidence_args(hex_of(2)))
    assert plain.ok, plain.error
    plain_id = state(chain, "of/" + hex_of(2) + "/00000000")
    assert "inliers" not in state(chain, f"evidence/{plain_id}")["record"]


@pytest.mark.parametrize(
    ("work", "inliers", "expected"),
    [
        (1, 6, "from 0 to the work's 5"),
        (1, -1, "from 0 to the work's 5"),
        (1, True, "from 0 to the work's 5"),
        (1, "4", "from 0 to the work's 5"),
        (1, None, "from 0 to the work's 5"),
        (2, 3, "registered no local features"),
    ],
)
def test_impossible_inliers_are_refused(
    chain: Chain, work: int, inliers: object, expected: str
) -> None:
    assert register(chain, [a_work(1, features=_features(5)), a_work(2)]).ok
    result = refused(chain, "org1", "evidence", evidence_args(hex_of(work), inliers=inliers))
    assert "args.inliers" in result.error and expected in result.error


def test_the_owner_records_evidence_and_the_chain_computes_the_distance(chain: Chain) -> None:
    work = a_work(1)
    assert register(chain, [work]).ok
    crop = int(work["crops"][3], 16)
    copy_pdq = (crop ^ 0b1011).to_bytes(32, "big").hex()  # three bits from one crop's hash

    result = chain.call(
        "org1", "copyright", "evidence", evidence_args(hex_of(1), copy_pdq=copy_pdq)
    )

    assert result.ok, result.error
    evidence_id = state(chain, "of/" + hex_of(1) + "/00000000")
    stored = state(chain, f"evidence/{evidence_id}")
    record = stored["record"]
    assert record["distance"] == 3
    assert record["recorder"] == "org1"
    digest = chain.suite.hash(codec.encode(record))
    assert evidence_id == digest.hex()
    assert result.data == {"root": MerkleTree(chain.suite.hash, [digest]).root().hex(), "size": 1}
    assert state(chain, "by/org1/000000000000") == evidence_id
    assert state(chain, f"tx/{stored['tx_id']}") == evidence_id


def test_without_a_copy_hash_the_distance_is_minus_one(chain: Chain) -> None:
    assert register(chain, [a_work(1)]).ok
    assert chain.call("org1", "copyright", "evidence", evidence_args(hex_of(1))).ok
    evidence_id = state(chain, "of/" + hex_of(1) + "/00000000")
    assert state(chain, f"evidence/{evidence_id}")["record"]["distance"] == -1


def test_who_may_record_evidence(chain: Chain) -> None:
    assert register(chain, [a_work(1)]).ok
    assert register(chain, [a_work(2, seller="shop-42")], sender="org0").ok

    assert chain.call("org3", "copyright", "evidence", evidence_args(hex_of(1))).ok
    assert chain.call("org0", "copyright", "evidence", evidence_args(hex_of(2))).ok
    result = refused(chain, "org2", "evidence", evidence_args(hex_of(1)))
    assert "owner org 'org1', a regulator or a court" in result.error


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"work": hex_of(404)}, "args.work"),
        ({"url": "ftp://shop.example/x"}, "args.url"),
        ({"url": "https://shop.example/a b"}, "args.url"),
        ({"files": []}, "args.files"),
        ({"files": [{"name": "a.jpg", "sha256": hex_of(1)}] * 2}, "args.files[1].name"),
        ({"files": [{"name": "../a.jpg", "sha256": hex_of(1)}]}, "args.files[0].name"),
        ({"files": [{"name": "a.jpg", "sha256": "zz"}]}, "args.files[0].sha256"),
        ({"captured_ms": 1_700_000_000_000 + 10**9}, "args.captured_ms"),
        ({"copy_pdq": "12"}, "args.copy_pdq"),
        ({"note": "n" * 501}, "args.note"),
    ],
)
def test_malformed_evidence_is_refused(chain: Chain, changes: dict[str, Any], field: str) -> None:
    assert register(chain, [a_work(1)]).ok
    result = refused(chain, "org1", "evidence", evidence_args(hex_of(1), **changes))
    assert field in result.error


def test_a_capture_time_within_the_skew_is_accepted(chain: Chain) -> None:
    assert register(chain, [a_work(1)]).ok
    block_time = chain.app.tip().time_ms + 1_000
    args = evidence_args(hex_of(1), captured_ms=block_time + capture_skew_ms)
    assert chain.call("org1", "copyright", "evidence", args).ok
