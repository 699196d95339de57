"""eddsa-jcs-2022, decided by the W3C vc-di-eddsa test vectors (TestVectors/eddsa-jcs-2022):

- the canonical document and proof configuration (RFC 8785) and their SHA-256 hashes, the
  combined hash, and the signature, each equal to the vector's file
- the vector's signed credential verifies, through the did:key of its verification method
- re-signing the unsigned credential with the vector's key and `created` gives the identical
  proofValue
- a changed claim, a proof by another key, a proof purpose or a signature of the wrong form are
  refused naming why
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from xinchain.apps.identity.dataintegrity import (
    ProofError,
    SigningKey,
    hash_data,
    jcs,
    multikey_public,
    sign,
    verify,
)
from xinchain.apps.identity.didkey import resolve

VECTORS = Path(__file__).parents[1] / "data" / "w3c" / "vc-di-eddsa"
JCS = VECTORS / "eddsa-jcs-2022"


def text(name: str) -> str:
    return (JCS / name).read_text().strip()


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def did_key_finder(method_id: str, purpose: str) -> bytes:
    resolved = resolve(method_id)
    if method_id not in resolved.document.get(purpose, []):
        raise ProofError(f"{method_id} is not listed under {purpose}")
    method = resolved.verification_method(method_id)
    assert method is not None
    return multikey_public(method)


def key() -> SigningKey:
    pair = load(VECTORS / "keyPair.json")
    public = pair["publicKeyMultibase"]
    return SigningKey.from_multibase(pair["privateKeyMultibase"], f"did:key:{public}#{public}")


def test_each_intermediate_value_equals_the_vectors() -> None:
    unsigned = load(VECTORS / "unsigned.json")
    config = load(JCS / "proofConfigJCS.json")
    assert jcs(unsigned).decode() == text("canonDocJCS.txt")
    assert jcs(config).decode() == text("proofCanonJCS.txt")
    assert hashlib.sha256(jcs(unsigned)).hexdigest() == text("docHashJCS.txt")
    assert hashlib.sha256(jcs(config)).hexdigest() == text("proofHashJCS.txt")
    assert hash_data(unsigned, config).hex() == text("combinedHashJCS.txt")
    signed = sign(unsigned, key(), created=config["created"])
    assert signed["proof"]["proofValue"] == text("sigBTC58JCS.txt")


def test_the_signed_vector_verifies_and_re_signing_gives_the_same_proof_value() -> None:
    signed = load(JCS / "signedJCS.json")
    verified = verify(signed, did_key_finder)
    assert verified.verification_method == key().verification_method
    unsigned = load(VECTORS / "unsigned.json")
    again = sign(unsigned, key(), created=signed["proof"]["created"])
    assert again == signed


def test_changes_are_refused_naming_why() -> None:
    signed = load(JCS / "signedJCS.json")
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["alumniOf"] = "Another School"
    with pytest.raises(ProofError, match="does not verify"):
        verify(tampered, did_key_finder)
    other = SigningKey(bytes(32), key().verification_method)  # claims the vector's method
    forged = sign(load(VECTORS / "unsigned.json"), other, created="2024-01-01T00:00:00Z")
    with pytest.raises(ProofError, match="does not verify"):
        verify(forged, did_key_finder)
    with pytest.raises(ProofError, match="purpose"):
        verify(signed, did_key_finder, expected_purpose="authentication")
    short = copy.deepcopy(signed)
    short["proof"]["proofValue"] = short["proof"]["proofValue"][:-4]
    with pytest.raises(ProofError, match="64 bytes"):
        verify(short, did_key_finder)
    not_base58 = copy.deepcopy(signed)
    not_base58["proof"]["proofValue"] = "u" + not_base58["proof"]["proofValue"][1:]
    with pytest.raises(ProofError, match="base58btc"):
        verify(not_base58, did_key_finder)
