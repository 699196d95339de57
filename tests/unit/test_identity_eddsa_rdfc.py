"""eddsa-rdfc-2022, decided by the W3C vc-di-eddsa test vectors (TestVectors/eddsa-rdfc-2022):
the RDF canonical forms (RDFC-1.0) of the document and of the proof configuration, their hashes,
the combined hash and the signature equal the vector's files; the signed vector verifies;
re-signing gives the identical proofValue; a changed claim is refused."""

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
    multikey_public,
    sign,
    verify,
)
from xinchain.apps.identity.didkey import resolve
from xinchain.apps.identity.rdfc import RDFC, rdfc

VECTORS = Path(__file__).parents[1] / "data" / "w3c" / "vc-di-eddsa"
SUITE = VECTORS / "eddsa-rdfc-2022"


def text(name: str) -> str:
    return (SUITE / name).read_text()


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def key() -> SigningKey:
    pair = load(VECTORS / "keyPair.json")
    public = pair["publicKeyMultibase"]
    return SigningKey.from_multibase(pair["privateKeyMultibase"], f"did:key:{public}#{public}")


def finder(method_id: str, purpose: str) -> bytes:
    resolved = resolve(method_id)
    assert method_id in resolved.document[purpose]
    method = resolved.verification_method(method_id)
    assert method is not None
    return multikey_public(method)


def test_each_intermediate_value_equals_the_vectors() -> None:
    unsigned = load(VECTORS / "unsigned.json")
    config = load(SUITE / "proofConfigDataInt.json")
    assert rdfc(unsigned).decode() == text("canonDocDataInt.txt")
    assert rdfc(config).decode() == text("proofCanonDataInt.txt")
    assert hashlib.sha256(rdfc(unsigned)).hexdigest() == text("docHashDataInt.txt").strip()
    assert hashlib.sha256(rdfc(config)).hexdigest() == text("proofHashDataInt.txt").strip()
    assert hash_data(unsigned, config, rdfc).hex() == text("combinedHashDataInt.txt").strip()


def test_the_signed_vector_verifies_and_re_signing_gives_the_same_proof() -> None:
    signed = load(SUITE / "signedDataInt.json")
    verify(signed, finder)
    again = sign(
        load(VECTORS / "unsigned.json"), key(), created=signed["proof"]["created"], cryptosuite=RDFC
    )
    assert again == signed
    assert again["proof"]["proofValue"] == text("sigBTC58DataInt.txt").strip()
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["alumniOf"] = "Another School"
    with pytest.raises(ProofError, match="does not verify"):
        verify(tampered, finder)
