"""The REST API refuses bad input with a 4xx JSON error, and serves good input correctly.

The rule under test (src/xinchain/api/app.py, README "REST API"): bad input gets a 4xx status
and a body ``{"error": {"code", "reason", optional "field"}}`` naming the field and the reason;
never a 500, never a hang.

Scenarios:

* POST /v1/transactions
  - a signed anchor is admitted as new and pending; resubmitting it while pending is accepted
    with "new": false (also when the mempool is full)
  - body: not JSON, not an object, missing "tx", "tx" not a string, larger than the limit
    (by Content-Length, and streamed without one) → 413 / 422
  - "tx": non-hex, odd length, uppercase, with whitespace → 400 naming "tx"
  - "tx" decodes to: no bytes, malformed CBOR, CBOR that is no transaction, a correctly signed
    transaction in a non-canonical encoding, a transaction followed by extra bytes → 400
  - the transaction: forged signature, signed by another key (400, field signature),
    non-member sender (403, field sender), member with an unregistered key (403, field
    public_key), expired (400 expired_transaction) or valid too far ahead (400
    valid_until_too_far), another chain, unknown contract or method (400), a method the
    sender's roles forbid (403), replay of a committed transaction (409)
  - a full mempool → 429 with Retry-After
* GET /v1/transactions/{id}: malformed id (short, long, non-hex, uppercase) → 400 tx_id;
  unknown → 404 without waiting; wait_ms negative, too large, non-integer → 422 naming wait_ms;
  pending → "pending" after waiting wait_ms, no longer; committed → height, index, result
* GET /v1/transactions/{id}/proof: malformed → 400; unknown or pending → 404; committed → proof
* GET /v1/blocks?limit=: limit 0, above the maximum, non-integer → 422 naming limit; an empty
  chain lists no blocks; blocks are listed newest first, at most `limit` of them
* GET /v1/blocks/{height}: 0 → 404, negative → 400, non-integer → 422, beyond the tip → 404,
  beyond 64 bits → 4xx; block 1 → header, tx ids, certificate
* GET /v1/notary/{hash}: malformed → 400, unknown → 404, anchored → its records (one per anchor)
* GET /v1/notary/{hash}/receipt: malformed → 400, unknown → 404, record beyond the list → 404,
  negative record → 422; a single anchor's and each batch member's receipt verify with
  xinchain.receipt.verify_receipt; record 1 proves the second anchoring
* GET /v1/status, /v1/genesis, / (console): tip, genesis, HTML; unknown route → 404 JSON;
  wrong method → 405 JSON with an Allow header
* GET /openapi.json lists every route
* fuzz (hypothesis): random path parameters on every route, random JSON bodies and random CBOR
  values as "tx" → always < 500, and every status >= 400 has error.code and error.reason

Main flows run on both crypto suites; input checks that do not depend on the suite run on
ed25519-sha256 only, to stay fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cbor2
import pytest
from api_harness import SUITE_NAMES, Harness, error_of, open_harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from receipts import verify_receipt

from xinchain.api.app import blocks_listed_max, request_bytes_max, wait_ms_max
from xinchain.types import Transaction

ROUTES = {
    "/v1/status": {"get"},
    "/v1/genesis": {"get"},
    "/v1/transactions": {"post"},
    "/v1/transactions/{tx_id}": {"get"},
    "/v1/transactions/{tx_id}/proof": {"get"},
    "/v1/blocks": {"get"},
    "/v1/blocks/{height}": {"get"},
    "/v1/private/collections": {"get"},
    "/v1/private/{collection}/records/{key}": {"get", "put"},
    "/v1/private/{collection}/hashes/{key}": {"get"},
    "/v1/private/{collection}/receipts/{key}": {"get"},
    "/v1/audit/search": {"get"},
    "/v1/audit/log": {"get"},
    "/v1/identity/dids/{did}": {"get"},
    "/v1/identity/issuers": {"get"},
    "/v1/identity/status/{org}/{name}": {"get"},
    "/v1/identity/verify": {"post"},
    "/v1/identity/gateway": {"get"},
    "/v1/identity/gateway/onboard": {"post"},
    "/v1/identity/gateway/present": {"post"},
    "/v1/identity/gateway/revoke": {"post"},
    "/v1/notary/{document_hash}": {"get"},
    "/v1/notary/{document_hash}/receipt": {"get"},
    "/01/{gtin}/21/{serial}": {"get"},
    "/v1/provenance/items/{gtin}/{serial}": {"get"},
    "/v1/provenance/products/{gtin}": {"get"},
    "/v1/provenance/events/{digest}": {"get"},
    "/v1/provenance/events/{digest}/receipt": {"get"},
    "/v1/provenance/items/{gtin}/{serial}/epcis": {"get"},
    "/v1/provenance/items/{gtin}/{serial}/qr.{kind}": {"get"},
    "/v1/provenance/products/{gtin}/sheet.{kind}": {"get"},
    "/v1/provenance/brands/{org}/items": {"get"},
    "/v1/provenance/keys": {"get"},
    "/v1/provenance/keys/epcis": {"get"},
    "/01/{gtin}/10/{lot}": {"get"},
    **{
        f"/{ai}/{{value}}": {"get"}
        for ai in ("00", "8003", "8004", "8018", "8017", "414", "417", "253", "255", "401", "402")
    },
    "/v1/promos/{promo_id}": {"get"},
    "/v1/promos/{promo_id}/ranking": {"get"},
    "/v1/promos/{promo_id}/rank/{order_no}": {"get"},
    "/v1/promos/{promo_id}/rank/{order_no}/receipt": {"get"},
    "/promo/{promo_id}": {"get"},
    "/v1/copyright/images/hash": {"post"},
    "/v1/copyright/images/search": {"post"},
    "/v1/copyright/images/register": {"post"},
    "/v1/copyright/images/evidence": {"post"},
    "/v1/copyright/search": {"get"},
    "/v1/copyright/index": {"get"},
    "/v1/copyright/works/{sha256}": {"get"},
    "/v1/copyright/works/{sha256}/receipt": {"get"},
    "/v1/copyright/transactions/{tx_id}/evidence": {"get"},
    "/v1/copyright/evidence/{evidence_id}": {"get"},
    "/v1/copyright/evidence/{evidence_id}/receipt": {"get"},
    "/v1/copyright/evidence/{evidence_id}/package": {"get"},
    "/v1/copyright/orgs/{org}/works": {"get"},
    "/v1/copyright/orgs/{org}/evidence": {"get"},
    "/v1/copyright/gateway": {"get"},
}
UNKNOWN_ID = "ab" * 32
MALFORMED_IDS = {
    "short": "ab" * 31,
    "long": "ab" * 32 + "a",
    "non_hex": "g" * 64,
    "uppercase": "AB" * 32,
}


@pytest.fixture(params=SUITE_NAMES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with open_harness(tmp_path, request.param) as opened:
        yield opened


@pytest.fixture
def ed_harness(tmp_path: Path) -> Iterator[Harness]:
    with open_harness(tmp_path, "ed25519-sha256") as opened:
        yield opened


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error


def resign(tx: Transaction, signature: bytes) -> Transaction:
    return Transaction(body=tx.body, signature=signature)


# --- POST /v1/transactions: admission ---------------------------------------------------------


def test_signed_anchor_is_admitted_as_new_and_pending(harness: Harness) -> None:
    tx = harness.anchor_tx([b"invoice 1"])
    response = harness.post_tx(tx)
    assert response.status_code == 202, response.text
    assert response.json() == {"tx_id": harness.tx_id(tx), "status": "pending", "new": True}


def test_resubmitting_a_pending_transaction_is_accepted_as_not_new(harness: Harness) -> None:
    tx = harness.anchor_tx([b"invoice 1"])
    harness.submit(tx)
    response = harness.post_tx(tx)
    assert response.status_code == 202, response.text
    assert response.json() == {"tx_id": harness.tx_id(tx), "status": "pending", "new": False}
    assert len(harness.node.mempool) == 1


# --- POST /v1/transactions: the request body --------------------------------------------------


def test_body_that_is_not_json_is_refused(ed_harness: Harness) -> None:
    response = ed_harness.client.post(
        "/v1/transactions", content=b"tx=00", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "invalid_request")
    # The field names the request body (or is left out), not a character offset into it.
    assert error_of(response).get("field", "body") == "body"


def test_body_that_is_not_an_object_is_refused(ed_harness: Harness) -> None:
    response = ed_harness.client.post("/v1/transactions", json=["00"])
    assert_error(response, 422, "invalid_request")
    # The field names the request body (or is left out), not an empty name.
    assert error_of(response).get("field", "body") == "body"


def test_body_without_tx_is_refused_naming_tx(ed_harness: Harness) -> None:
    response = ed_harness.client.post("/v1/transactions", json={"transaction": "00"})
    assert_error(response, 422, "invalid_request", field="tx")


@pytest.mark.parametrize("value", [5, None, ["00"], {"hex": "00"}], ids=repr)
def test_tx_that_is_not_a_string_is_refused_naming_tx(ed_harness: Harness, value: Any) -> None:
    response = ed_harness.client.post("/v1/transactions", json={"tx": value})
    assert_error(response, 422, "invalid_request", field="tx")


def test_body_larger_than_the_limit_is_refused_with_413(ed_harness: Harness) -> None:
    body = json.dumps({"tx": "00" * (request_bytes_max // 2 + 1)}).encode()
    assert len(body) > request_bytes_max
    response = ed_harness.client.post(
        "/v1/transactions", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "request_too_large")


def test_streamed_body_larger_than_the_limit_is_refused_with_413(ed_harness: Harness) -> None:
    # No Content-Length: the body arrives chunked. The limit must hold all the same, or a
    # client can make the node buffer any amount (app.py: "refused before it is read").
    def chunks() -> Iterator[bytes]:
        yield b'{"tx": "'
        for _ in range(request_bytes_max // 65_536 + 2):
            yield b"00" * 32_768
        yield b'"}'

    response = ed_harness.client.post(
        "/v1/transactions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "request_too_large")


# --- POST /v1/transactions: the hex text ------------------------------------------------------


@pytest.mark.parametrize("text", ["zz", "0x00", "abc", "ab\u00e9f0"], ids=repr)
def test_tx_that_is_not_hex_bytes_is_refused_naming_tx(ed_harness: Harness, text: str) -> None:
    assert_error(ed_harness.post_hex(text), 400, "invalid_transaction", field="tx")


def test_tx_in_uppercase_hex_is_refused_naming_tx(ed_harness: Harness) -> None:
    # The request schema says "canonical CBOR, as lowercase hex", and the API refuses other
    # text with "expected lowercase hex": one transaction has one accepted spelling.
    tx = ed_harness.anchor_tx([b"invoice 1"])
    assert_error(ed_harness.post_hex(tx.encode().hex().upper()), 400, "invalid_transaction", "tx")
    assert len(ed_harness.node.mempool) == 0


def test_tx_hex_with_whitespace_is_refused_naming_tx(ed_harness: Harness) -> None:
    text = ed_harness.anchor_tx([b"invoice 1"]).encode().hex()
    spaced = f"{text[:10]} {text[10:]}"
    assert_error(ed_harness.post_hex(spaced), 400, "invalid_transaction", field="tx")
    assert len(ed_harness.node.mempool) == 0


# --- POST /v1/transactions: the bytes ---------------------------------------------------------


def test_empty_tx_is_refused_naming_tx(ed_harness: Harness) -> None:
    assert_error(ed_harness.post_hex(""), 400, "invalid_transaction", field="tx")


@pytest.mark.parametrize("text", ["ff", "a1", "5f41", "fb3ff0000000000000"], ids=repr)
def test_tx_of_malformed_or_disallowed_cbor_is_refused(ed_harness: Harness, text: str) -> None:
    # break code alone, truncated map, indefinite-length bytes, a float
    assert_error(ed_harness.post_hex(text), 400, "decode_error")


def test_cbor_that_is_no_transaction_is_refused(ed_harness: Harness) -> None:
    text = cbor2.dumps({"body": {}}, canonical=True).hex()
    assert_error(ed_harness.post_hex(text), 400, "decode_error", field="transaction")


def test_correctly_signed_transaction_in_non_canonical_cbor_is_refused(
    ed_harness: Harness,
) -> None:
    tx = ed_harness.anchor_tx([b"invoice 1"])
    value = tx.to_value()
    # Same value, keys in the non-canonical order ("signature" sorts after "body").
    reordered = cbor2.dumps({"signature": value["signature"], "body": value["body"]})
    assert reordered != tx.encode() and cbor2.loads(reordered) == cbor2.loads(tx.encode())
    response = ed_harness.post_hex(reordered.hex())
    assert_error(response, 400, "decode_error")
    assert "canonical" in error_of(response)["reason"]


def test_transaction_followed_by_extra_bytes_is_refused(ed_harness: Harness) -> None:
    tx = ed_harness.anchor_tx([b"invoice 1"])
    assert_error(ed_harness.post_hex(tx.encode().hex() + "00"), 400, "decode_error")


# --- POST /v1/transactions: the transaction ---------------------------------------------------


def test_forged_signature_is_refused_naming_signature(harness: Harness) -> None:
    tx = harness.anchor_tx([b"invoice 1"])
    forged = bytearray(tx.signature)
    forged[-1] ^= 0x01
    response = harness.post_tx(resign(tx, bytes(forged)))
    assert_error(response, 400, "invalid_transaction", field="signature")


def test_signature_by_another_members_key_is_refused_naming_signature(harness: Harness) -> None:
    tx = harness.anchor_tx([b"invoice 1"])
    other = harness.org_key("brand").sign(tx.body.signing_message())
    response = harness.post_tx(resign(tx, other))
    assert_error(response, 400, "invalid_transaction", field="signature")


def test_non_member_sender_is_refused_with_403(harness: Harness) -> None:
    digest = harness.digest(b"invoice 1")
    tx = harness.sign(
        "notary", "anchor", {"hash": digest}, sender="outsider", key=harness.org_key()
    )
    assert_error(harness.post_tx(tx), 403, "unauthorized", field="sender")


def test_member_with_an_unregistered_key_is_refused_with_403(ed_harness: Harness) -> None:
    digest = ed_harness.digest(b"invoice 1")
    tx = ed_harness.sign(
        "notary", "anchor", {"hash": digest}, sender="brand", key=ed_harness.org_key("platform")
    )
    assert_error(ed_harness.post_tx(tx), 403, "unauthorized", field="public_key")


@pytest.mark.parametrize(
    ("sender", "contract", "method"),
    [
        ("brand", "promo", "order"),
        ("customs", "promo", "open"),
        ("forwarder", "provenance", "flag"),
    ],
)
def test_a_call_the_senders_roles_forbid_is_refused_with_403_and_never_pending(
    ed_harness: Harness, sender: str, contract: str, method: str
) -> None:
    tx = ed_harness.sign(contract, method, {}, sender=sender)
    assert_error(ed_harness.post_tx(tx), 403, "unauthorized", field="sender")
    status = ed_harness.client.get(f"/v1/transactions/{ed_harness.tx_id(tx)}")
    assert status.status_code == 404  # neither pending nor in a block


def test_an_unknown_method_is_refused_with_400(ed_harness: Harness) -> None:
    tx = ed_harness.sign("governance", "add_org", {"org": "x"}, sender="brand")
    assert_error(ed_harness.post_tx(tx), 400, "invalid_transaction", field="method")


def test_expired_transaction_is_refused(harness: Harness) -> None:
    tx = harness.anchor_tx([b"invoice 1"], valid_until=0)  # the next block is 1
    assert_error(harness.post_tx(tx), 400, "expired_transaction", field="valid_until")


def test_transaction_valid_too_far_ahead_is_refused_with_its_own_code(ed_harness: Harness) -> None:
    window = ed_harness.genesis.params["tx_validity_blocks_max"]
    tx = ed_harness.anchor_tx([b"invoice 1"], valid_until=1 + window + 1)
    assert_error(ed_harness.post_tx(tx), 400, "valid_until_too_far", field="valid_until")


def test_transaction_for_another_chain_is_refused(ed_harness: Harness) -> None:
    tx = ed_harness.anchor_tx([b"invoice 1"], chain_id="another-chain")
    assert_error(ed_harness.post_tx(tx), 400, "invalid_transaction", field="chain_id")


def test_transaction_for_an_unknown_contract_is_refused(ed_harness: Harness) -> None:
    tx = ed_harness.sign("lottery", "draw", {})
    assert_error(ed_harness.post_tx(tx), 400, "invalid_transaction", field="contract")


def test_replayed_committed_transaction_is_refused_with_409(harness: Harness) -> None:
    tx = harness.anchor_tx([b"invoice 1"])
    harness.submit(tx)
    harness.commit()
    assert_error(harness.post_tx(tx), 409, "replayed_transaction", field="tx_id")
    assert len(harness.node.mempool) == 0


def test_full_mempool_refuses_with_429_and_retry_after(tmp_path: Path) -> None:
    with open_harness(tmp_path, "ed25519-sha256", mempool_txs_max=2) as harness:
        harness.submit(harness.anchor_tx([b"invoice 1"]))
        harness.submit(harness.anchor_tx([b"invoice 2"]))
        response = harness.post_tx(harness.anchor_tx([b"invoice 3"]))
        assert_error(response, 429, "mempool_full")
        assert int(response.headers["retry-after"]) >= 1


def test_full_mempool_accepts_a_resubmission_of_a_pending_transaction(tmp_path: Path) -> None:
    with open_harness(tmp_path, "ed25519-sha256", mempool_txs_max=1) as harness:
        tx = harness.anchor_tx([b"invoice 1"])
        harness.submit(tx)
        response = harness.post_tx(tx)
        assert response.status_code == 202, response.text
        assert response.json()["new"] is False


# --- GET /v1/transactions/{tx_id} -------------------------------------------------------------


@pytest.mark.parametrize("tx_id", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
def test_malformed_transaction_id_is_refused_naming_tx_id(ed_harness: Harness, tx_id: str) -> None:
    assert_error(ed_harness.get(f"/v1/transactions/{tx_id}"), 400, "invalid", field="tx_id")


@pytest.mark.timeout(10)
def test_unknown_transaction_is_404_without_waiting(ed_harness: Harness) -> None:
    started = time.monotonic()
    response = ed_harness.get(f"/v1/transactions/{UNKNOWN_ID}", wait_ms=5_000)
    assert_error(response, 404, "not_found", field="tx_id")
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("wait_ms", [-1, wait_ms_max + 1, "soon", "1.5"], ids=repr)
def test_bad_wait_ms_is_refused_naming_wait_ms(ed_harness: Harness, wait_ms: Any) -> None:
    response = ed_harness.get(f"/v1/transactions/{UNKNOWN_ID}", wait_ms=wait_ms)
    assert_error(response, 422, "invalid_request")
    assert "wait_ms" in error_of(response).get("field", "")


def test_pending_transaction_shows_pending_without_a_place(harness: Harness) -> None:
    tx_id = harness.submit(harness.anchor_tx([b"invoice 1"]))
    response = harness.get(f"/v1/transactions/{tx_id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"tx_id": tx_id, "status": "pending"}


@pytest.mark.timeout(10)
def test_waiting_on_a_pending_transaction_returns_after_wait_ms(ed_harness: Harness) -> None:
    tx_id = ed_harness.submit(ed_harness.anchor_tx([b"invoice 1"]))
    started = time.monotonic()
    response = ed_harness.get(f"/v1/transactions/{tx_id}", wait_ms=300)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    assert 0.25 <= elapsed < 5


def test_committed_transaction_shows_height_index_and_result(harness: Harness) -> None:
    first = harness.submit(harness.anchor_tx([b"invoice 1"]))
    second = harness.submit(harness.anchor_tx([b"invoice 2", b"invoice 3"]))
    harness.commit()
    response = harness.get(f"/v1/transactions/{second}", wait_ms=1)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["status"], answer["height"], answer["index"]) == ("committed", 1, 1)
    result = answer["result"]
    assert (result["tx_id"], result["ok"], result["method"]) == (second, True, "anchor_batch")
    assert result["data"]["size"] == 2
    assert harness.get(f"/v1/transactions/{first}").json()["index"] == 0


# --- GET /v1/transactions/{tx_id}/proof -------------------------------------------------------


@pytest.mark.parametrize("tx_id", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
def test_proof_of_malformed_id_is_refused_naming_tx_id(ed_harness: Harness, tx_id: str) -> None:
    response = ed_harness.get(f"/v1/transactions/{tx_id}/proof")
    assert_error(response, 400, "invalid", field="tx_id")


def test_proof_of_unknown_transaction_is_404(ed_harness: Harness) -> None:
    response = ed_harness.get(f"/v1/transactions/{UNKNOWN_ID}/proof")
    assert_error(response, 404, "not_found", field="tx_id")


def test_proof_of_pending_transaction_is_404(ed_harness: Harness) -> None:
    tx_id = ed_harness.submit(ed_harness.anchor_tx([b"invoice 1"]))
    assert_error(ed_harness.get(f"/v1/transactions/{tx_id}/proof"), 404, "not_found", "tx_id")


def test_proof_of_committed_transaction_carries_result_header_and_certificate(
    harness: Harness,
) -> None:
    tx_id = harness.anchor([b"invoice 1"])
    response = harness.get(f"/v1/transactions/{tx_id}/proof")
    assert response.status_code == 200, response.text
    proof = response.json()
    assert set(proof) == {"result", "result_proof", "header", "certificate", "genesis"}
    assert proof["result"]["tx_id"] == tx_id
    assert proof["result_proof"] == {"index": 0, "size": 1, "path": []}
    assert proof["header"]["height"] == proof["certificate"]["height"] == 1
    assert proof["genesis"] == harness.genesis.to_value()


# --- GET /v1/blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, blocks_listed_max + 1, "all"], ids=repr)
def test_bad_block_listing_limit_is_refused_naming_limit(ed_harness: Harness, limit: Any) -> None:
    response = ed_harness.get("/v1/blocks", limit=limit)
    assert_error(response, 422, "invalid_request")
    assert "limit" in error_of(response).get("field", "")


def test_empty_chain_lists_no_blocks(ed_harness: Harness) -> None:
    response = ed_harness.get("/v1/blocks")
    assert response.status_code == 200, response.text
    assert response.json() == {"height": 0, "blocks": []}


def test_blocks_are_listed_newest_first_up_to_limit(harness: Harness) -> None:
    for number in range(3):
        harness.anchor([f"invoice {number}".encode()])
    listing = harness.get("/v1/blocks", limit=2).json()
    assert listing["height"] == 3
    assert [block["header"]["height"] for block in listing["blocks"]] == [3, 2]
    assert listing["blocks"][0]["hash"] == harness.get("/v1/blocks/3").json()["hash"]


# --- GET /v1/blocks/{height} ------------------------------------------------------------------


def test_block_zero_is_refused_naming_height(ed_harness: Harness) -> None:
    # heights start at 1; 0 is the genesis, which has no block
    assert_error(ed_harness.get("/v1/blocks/0"), 400, "invalid", field="height")


def test_negative_block_height_is_refused_naming_height(ed_harness: Harness) -> None:
    assert_error(ed_harness.get("/v1/blocks/-1"), 400, "invalid", field="height")


@pytest.mark.parametrize("height", ["one", "1.5", "0x1", "1e3"])
def test_non_integer_block_height_is_refused(ed_harness: Harness, height: str) -> None:
    response = ed_harness.get(f"/v1/blocks/{height}")
    assert_error(response, 422, "invalid_request")
    assert "height" in error_of(response).get("field", "")


def test_block_beyond_the_tip_is_404(ed_harness: Harness) -> None:
    ed_harness.anchor([b"invoice 1"])
    assert_error(ed_harness.get("/v1/blocks/2"), 404, "not_found", field="height")


@pytest.mark.parametrize("height", [2**64 - 1, 2**64, 10**30])
def test_block_height_at_or_beyond_64_bits_is_a_4xx(ed_harness: Harness, height: int) -> None:
    response = ed_harness.get(f"/v1/blocks/{height}")
    assert 400 <= response.status_code < 500, response.text
    assert error_of(response).get("field") == "height"


def test_block_one_shows_header_transaction_ids_and_certificate(harness: Harness) -> None:
    first = harness.submit(harness.anchor_tx([b"invoice 1"]))
    second = harness.submit(harness.anchor_tx([b"invoice 2"]))
    harness.commit()
    response = harness.get("/v1/blocks/1")
    assert response.status_code == 200, response.text
    block = response.json()
    assert block["tx_ids"] == [first, second]
    header = block["header"]
    assert (header["height"], header["tx_count"]) == (1, 2)
    assert header["genesis_hash"] == header["parent_hash"] == harness.genesis_hash()
    certificate = block["certificate"]
    assert (certificate["height"], certificate["block_hash"]) == (1, block["hash"])
    assert [entry["validator"] for entry in certificate["signatures"]] == [0]


# --- GET /v1/notary/{hash} --------------------------------------------------------------------


@pytest.mark.parametrize("document_hash", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
def test_malformed_document_hash_is_refused_naming_hash(
    ed_harness: Harness, document_hash: str
) -> None:
    assert_error(ed_harness.get(f"/v1/notary/{document_hash}"), 400, "invalid", field="hash")


def test_never_anchored_hash_is_404(ed_harness: Harness) -> None:
    assert_error(ed_harness.get(f"/v1/notary/{UNKNOWN_ID}"), 404, "not_found", field="hash")


def test_anchored_hash_shows_who_anchored_it_where(harness: Harness) -> None:
    tx_id = harness.anchor([b"invoice 1", b"invoice 2"])
    document_hash = harness.digest(b"invoice 2").hex()
    response = harness.get(f"/v1/notary/{document_hash}")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["hash"] == document_hash
    [record] = answer["records"]
    assert (record["tx_id"], record["height"], record["position"], record["size"]) == (
        tx_id,
        1,
        1,
        2,
    )
    assert record["sender"] == "platform"


def test_hash_anchored_twice_shows_two_records_in_order(ed_harness: Harness) -> None:
    first = ed_harness.anchor([b"invoice 1"])
    second = ed_harness.anchor([b"invoice 1"])
    response = ed_harness.get(f"/v1/notary/{ed_harness.digest(b'invoice 1').hex()}")
    assert [record["tx_id"] for record in response.json()["records"]] == [first, second]


# --- GET /v1/notary/{hash}/receipt ------------------------------------------------------------


@pytest.mark.parametrize("document_hash", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
def test_receipt_of_malformed_hash_is_refused_naming_hash(
    ed_harness: Harness, document_hash: str
) -> None:
    response = ed_harness.get(f"/v1/notary/{document_hash}/receipt")
    assert_error(response, 400, "invalid", field="hash")


def test_receipt_of_never_anchored_hash_is_404(ed_harness: Harness) -> None:
    response = ed_harness.get(f"/v1/notary/{UNKNOWN_ID}/receipt")
    assert_error(response, 404, "not_found", field="hash")


def test_receipt_of_record_beyond_the_list_is_404_naming_record(ed_harness: Harness) -> None:
    ed_harness.anchor([b"invoice 1"])
    document_hash = ed_harness.digest(b"invoice 1").hex()
    response = ed_harness.get(f"/v1/notary/{document_hash}/receipt", record=1)
    assert_error(response, 404, "not_found", field="record")


@pytest.mark.parametrize("record", [-1, "first", 1.5], ids=repr)
def test_receipt_with_bad_record_number_is_refused(ed_harness: Harness, record: Any) -> None:
    ed_harness.anchor([b"invoice 1"])
    document_hash = ed_harness.digest(b"invoice 1").hex()
    response = ed_harness.get(f"/v1/notary/{document_hash}/receipt", record=record)
    assert_error(response, 422, "invalid_request")
    assert "record" in error_of(response).get("field", "")


def test_receipt_of_single_anchor_verifies_for_the_document(harness: Harness) -> None:
    harness.anchor([b"invoice 1"])
    verified = verify_receipt(
        harness.receipt(b"invoice 1"), b"invoice 1", expected_genesis_hash=harness.genesis_hash()
    )
    assert (verified.sender, verified.height, verified.signers) == ("platform", 1, 1)


def test_receipt_of_each_batch_member_verifies_at_its_position(harness: Harness) -> None:
    documents = [b"invoice 1", b"invoice 2", b"invoice 3"]
    harness.anchor(documents)
    for position, document in enumerate(documents):
        receipt = harness.receipt(document)
        assert receipt["anchor"]["index"] == position
        assert verify_receipt(receipt, document).document_hash == harness.digest(document).hex()


def test_receipt_of_second_record_proves_the_second_anchoring(ed_harness: Harness) -> None:
    ed_harness.anchor([b"invoice 1"])
    second = ed_harness.anchor([b"invoice 1"])
    receipt = ed_harness.receipt(b"invoice 1", record=1)
    assert receipt["result"]["tx_id"] == second
    assert verify_receipt(receipt, b"invoice 1").height == 2


# --- status, genesis, unknown routes, OpenAPI -------------------------------------------------


def test_status_reports_the_tip_after_a_commit(harness: Harness) -> None:
    assert harness.get("/v1/status").json()["height"] == 0
    harness.anchor([b"invoice 1"])
    status = harness.get("/v1/status").json()
    assert (status["height"], status["suite"], status["mempool_txs"]) == (1, harness.suite.name, 0)
    assert status["block_hash"] == harness.get("/v1/blocks/1").json()["hash"]


def test_genesis_route_serves_the_homes_genesis(ed_harness: Harness) -> None:
    response = ed_harness.get("/v1/genesis")
    assert response.status_code == 200, response.text
    assert response.json() == json.loads(ed_harness.home.genesis_path.read_text())


def test_console_page_is_served_as_html(ed_harness: Harness) -> None:
    response = ed_harness.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_unknown_route_is_404_json(ed_harness: Harness) -> None:
    assert_error(ed_harness.get("/v1/nothing-here"), 404, "http_error")


def test_wrong_method_is_405_json_naming_the_allowed_methods(ed_harness: Harness) -> None:
    response = ed_harness.client.delete("/v1/status")
    assert_error(response, 405, "http_error")
    assert response.headers["allow"] == "GET"
    response = ed_harness.client.get("/v1/transactions")
    assert_error(response, 405, "http_error")
    assert response.headers["allow"] == "POST"


def test_openapi_lists_every_route(ed_harness: Harness) -> None:
    paths = ed_harness.get("/openapi.json").json()["paths"]
    assert {path: set(methods) for path, methods in paths.items()} == ROUTES


# --- fuzz -------------------------------------------------------------------------------------

PATH_TEMPLATES = [*(path for path in ROUTES if "{" in path), "/v1/blocks?limit={limit}"]
path_values = st.one_of(
    st.text(max_size=80),
    st.integers().map(str),
    st.binary(max_size=40).map(bytes.hex),
    st.sampled_from(["", ".", "..", "%", "?", "#", "/", "\x00", UNKNOWN_ID, *MALFORMED_IDS]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=70) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Transaction-shaped values reach past the decoder into the transaction's own checks.
transaction_values = st.fixed_dictionaries(
    {
        "body": st.fixed_dictionaries(
            {
                name: cbor_values
                for name in (
                    "chain_id",
                    "sender",
                    "public_key",
                    "contract",
                    "method",
                    "args",
                    "nonce",
                    "valid_until",
                )
            }
        ),
        "signature": cbor_values,
    }
)
fuzz_settings = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, (response.request.url, response.text)
    if response.status_code >= 400:
        error_of(response)


@pytest.mark.timeout(60)
@fuzz_settings
@given(
    template=st.sampled_from(PATH_TEMPLATES),
    value=path_values,
    query=st.dictionaries(st.sampled_from(["wait_ms", "record", "limit"]), path_values, max_size=2),
)
def test_random_path_parameters_never_cause_a_server_error(
    ed_harness: Harness, template: str, value: str, query: dict[str, str]
) -> None:
    path = template.split("{")[0] + quote(value, safe="") + template.split("}")[1]
    response = ed_harness.client.get(path, params=query)
    assert_no_server_error(response)


@pytest.mark.timeout(60)
@fuzz_settings
@given(body=json_values | st.fixed_dictionaries({"tx": json_values}))
def test_random_json_bodies_never_cause_a_server_error(ed_harness: Harness, body: Any) -> None:
    response = ed_harness.client.post(
        "/v1/transactions",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert_no_server_error(response)


@pytest.mark.slow  # hundreds of generated transactions
@pytest.mark.timeout(60)
@fuzz_settings
@given(value=cbor_values | transaction_values)
def test_random_cbor_transactions_are_refused_with_a_4xx(ed_harness: Harness, value: Any) -> None:
    for canonical in (True, False):
        response = ed_harness.post_hex(cbor2.dumps(value, canonical=canonical).hex())
        assert 400 <= response.status_code < 500, response.text
        error_of(response)
