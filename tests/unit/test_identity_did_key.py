"""did:key, decided by the method's own vectors and the did:key test suite's cases.

- every vector of did-method-key's `ed25519-x25519.json`: the DID from the seed's Ed25519 key,
  and the whole DID document, in the representation the vector is written in
  (Ed25519VerificationKey2018 or JsonWebKey2020, with the derived X25519 key), equal to it
- the Multikey representation: one Ed25519 Multikey method and the derived X25519 one, and the
  relationships pointing at them
- the did:key test suite's cases, each with the DID Resolution error the suite expects:
  another scheme, another method, a version that is not a positive integer, a multibase value
  without 'z', `did:key:@`, a key of the wrong length, an invalid DID URL, an unknown public
  key format; and a multicodec that is no Ed25519 key, and characters outside base58btc
"""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest

from xinchain.apps.identity.didkey import (
    ED25519_2018,
    JWK_2020,
    MULTIKEY,
    ResolutionError,
    did_key_of,
    resolve,
)
from xinchain.apps.identity.multiformats import X25519_PUB, multikey_encode

VECTORS = Path(__file__).parents[1] / "data" / "w3c" / "did-method-key-ed25519-x25519.json"
# tests/mock.data.js of the did:key test suite.
SUITE_DID = "did:key:z6MktKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b"
SUITE_KEY_AGREEMENT = (
    "did:key:z6MktKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b"
    "#z6LSfHfAMAopsuBxaBzvp51GXrPf38Az13j2fmwqadbwwrzJ"
)
SUITE_SHORT_KEY = "did:key:zTjsVPtY"


def vectors() -> dict[str, dict[str, object]]:
    return dict(json.loads(VECTORS.read_text()))


@pytest.mark.parametrize("did", sorted(vectors()))
def test_each_vector_resolves_to_its_document(did: str) -> None:
    vector = vectors()[did]
    seed = bytes.fromhex(str(vector["seed"]))
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    assert did_key_of(public) == did
    document = vector["didDocument"]
    assert isinstance(document, dict)
    written_as = document["verificationMethod"][0]["type"]
    assert written_as in (ED25519_2018, JWK_2020)
    assert resolve(did, public_key_format=written_as).document == document


def test_the_multikey_representation() -> None:
    resolved = resolve(SUITE_DID)
    document = resolved.document
    assert document["@context"] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    signing, agreement = document["verificationMethod"]
    assert signing["type"] == agreement["type"] == MULTIKEY
    assert signing["id"] == SUITE_DID + "#" + SUITE_DID.split(":")[-1]
    assert agreement["id"] == SUITE_KEY_AGREEMENT
    for relation in ("authentication", "assertionMethod", "capabilityInvocation"):
        assert document[relation] == [signing["id"]]
    assert document["keyAgreement"] == [SUITE_KEY_AGREEMENT]
    assert agreement["publicKeyMultibase"] == SUITE_KEY_AGREEMENT.split("#")[1]
    assert resolve(SUITE_DID + "#" + SUITE_KEY_AGREEMENT.split("#")[1]).fragment


def _parts(did: str) -> list[str]:
    return did.split(":")


@pytest.mark.parametrize(
    ("did_url", "error"),
    [
        (SUITE_DID.replace("did:", "notDid:", 1), "invalidDid"),
        (f"did:experimental:{':'.join(_parts(SUITE_DID)[2:])}", "methodNotSupported"),
        (f"did:key:-4:{_parts(SUITE_DID)[2]}", "invalidDid"),
        (f"did:key:{_parts(SUITE_DID)[2][1:]}", "invalidDid"),
        ("did:key:@", "invalidDid"),
        (SUITE_SHORT_KEY, "invalidPublicKeyLength"),
        (f"{SUITE_DID}/^bar^/?query=`#{_parts(SUITE_DID)[2]}", "invalidDidUrl"),
        (f"did:key:z{'1' * 10}", "unsupportedPublicKeyType"),  # multicodec 0x00, no key
        ("did:key:zQ0OIl", "invalidDid"),  # 0, O, I and l are not base58btc
        (f"did:key:{multikey_encode(X25519_PUB, bytes(32))}", "unsupportedPublicKeyType"),
    ],
)
def test_the_suite_cases_are_refused_with_their_error(did_url: str, error: str) -> None:
    with pytest.raises(ResolutionError) as refused:
        resolve(did_url)
    assert refused.value.error == error, refused.value.reason


def test_an_unknown_public_key_format_is_refused() -> None:
    with pytest.raises(ResolutionError) as refused:
        resolve(SUITE_DID, public_key_format="unknown")
    assert refused.value.error == "unsupportedPublicKeyType"
