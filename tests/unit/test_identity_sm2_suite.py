"""xin-sm2-jcs-2026, xinchain's own SM2 cryptosuite (docs/did-method.md): a credential signed
with an SM2 key of a did:xin document verifies through the chain; the signature is SM2 over the
two SM3 hashes, checked with an independent SM2 implementation (gmssl); a changed claim, a key
of another curve and a stolen proof are refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from gmssl import func, sm2, sm3  # type: ignore[import-untyped]

from xinchain.apps.identity.credentials import DidRecord, Refused, Trust, verify_credential
from xinchain.apps.identity.dataintegrity import SigningKey, jcs, sign
from xinchain.apps.identity.multiformats import (
    ED25519_PUB,
    SM2_PUB,
    base58btc_decode,
    multikey_decode,
    multikey_encode,
)
from xinchain.apps.identity.sm2suite import SM2_SUITE, new_key, uncompressed
from xinchain.apps.identity.status import empty, encode

ISSUER = "did:xin:test-chain:org0"  # the org's own DID carries its authority
SUBJECT = "did:xin:test-chain:merchant"


def document(did: str, multikey: str) -> dict[str, Any]:
    method = f"{did}#key-1"
    return {
        "id": did,
        "verificationMethod": [
            {"id": method, "type": "Multikey", "controller": did, "publicKeyMultibase": multikey}
        ],
        "assertionMethod": [method],
        "authentication": [method],
        "capabilityInvocation": [method],
    }


def trust(documents: dict[str, dict[str, Any]]) -> Trust:
    return Trust(
        resolve_xin=lambda did: DidRecord(documents[did], "org0") if did in documents else None,
        issuers={"MerchantCredential": ["org0"]},
        status_list=lambda org, name: ("revocation", encode(empty())),
    )


def credential() -> dict[str, Any]:
    return {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            {
                "MerchantCredential": "https://xinchain.example/ns#MerchantCredential",
                "shopName": "https://schema.org/name",
            },
        ],
        "type": ["VerifiableCredential", "MerchantCredential"],
        "issuer": ISSUER,
        "credentialSubject": {"id": SUBJECT, "shopName": "国密商店"},
    }


def signed() -> tuple[dict[str, Any], dict[str, Any], str]:
    scalar, multikey = new_key()
    key = SigningKey(scalar, f"{ISSUER}#key-1")
    issued = sign(credential(), key, created="2026-12-04T10:00:00Z", cryptosuite=SM2_SUITE)
    return issued, {ISSUER: document(ISSUER, multikey)}, multikey


def test_an_sm2_credential_verifies_and_an_independent_sm2_agrees() -> None:
    issued, documents, multikey = signed()
    assert issued["proof"]["cryptosuite"] == SM2_SUITE
    verify_credential(issued, trust(documents))
    # gmssl, another SM2 implementation, checks the signature over SM3(config) || SM3(doc).
    proof = issued["proof"]
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    unsigned = {k: v for k, v in issued.items() if k != "proof"}
    data = bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(jcs(config)))) + bytes.fromhex(
        sm3.sm3_hash(func.bytes_to_list(jcs(unsigned)))
    )
    public = uncompressed(multikey_decode(multikey, "key", (SM2_PUB,))[1])
    assert public is not None
    der = base58btc_decode(proof["proofValue"], "proofValue")
    r, s = _der_integers(der)
    checker = sm2.CryptSM2(private_key="", public_key=public[1:].hex())
    assert checker.verify_with_sm3(f"{r:064x}{s:064x}", data)


def _der_integers(der: bytes) -> tuple[int, int]:
    position, values = 2, []
    for _ in range(2):
        length = der[position + 1]
        values.append(int.from_bytes(der[position + 2 : position + 2 + length], "big"))
        position += 2 + length
    return values[0], values[1]


def test_changes_and_other_keys_are_refused() -> None:
    issued, documents, _ = signed()
    tampered = copy.deepcopy(issued)
    tampered["credentialSubject"]["shopName"] = "别的商店"
    with pytest.raises(Refused, match="does not verify"):
        verify_credential(tampered, trust(documents))
    ed_key = multikey_encode(ED25519_PUB, bytes(32))
    with pytest.raises(Refused, match="does not verify"):
        verify_credential(issued, trust({ISSUER: document(ISSUER, ed_key)}))
    other, _, _ = signed()  # a proof by a different SM2 key of the same method id
    with pytest.raises(Refused, match="does not verify"):
        verify_credential(other, trust(documents))
