"""did:web documents handed in offline: the document's place by the method's rule, a
presentation by a did:web holder verified with its handed-in document, and refusals when no
document, or another DID's document, is handed in."""

from __future__ import annotations

import re
from typing import Any

import nacl.signing
import pytest

from xinchain.apps.identity.credentials import (
    Refused,
    Trust,
    present,
    verify_presentation,
)
from xinchain.apps.identity.dataintegrity import SigningKey
from xinchain.apps.identity.didweb import DidWebError, document_url
from xinchain.apps.identity.multiformats import ED25519_PUB, multikey_encode

HOLDER = "did:web:shop.example.com:merchants:m1"


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
        ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
        ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
    ],
)
def test_the_document_lives_where_the_method_says(did: str, url: str) -> None:
    assert document_url(did) == url


def test_a_malformed_did_web_is_refused() -> None:
    with pytest.raises(DidWebError):
        document_url("did:web:")
    with pytest.raises(DidWebError):
        document_url("did:web:exa mple.com")


def holder_document(seed: bytes) -> dict[str, Any]:
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    method = f"{HOLDER}#key-1"
    return {
        "id": HOLDER,
        "verificationMethod": [
            {
                "id": method,
                "type": "Multikey",
                "controller": HOLDER,
                "publicKeyMultibase": multikey_encode(ED25519_PUB, public),
            }
        ],
        "authentication": [method],
    }


def trust(documents: dict[str, dict[str, Any]]) -> Trust:
    return Trust(
        resolve_xin=lambda did: None,
        issuers={},
        status_list=lambda org, name: None,
        web_documents=documents,
    )


def test_a_did_web_holder_presents_with_its_handed_in_document() -> None:
    seed = bytes([7]) * 32
    shown = present(
        [],
        HOLDER,
        SigningKey(seed, f"{HOLDER}#key-1"),
        challenge="c",
        domain="d",
        created="2026-12-04T10:00:00Z",
    )
    assert (
        verify_presentation(
            shown, trust({HOLDER: holder_document(seed)}), challenge="c", domain="d"
        )
        == []
    )
    with pytest.raises(Refused, match="no document was handed in"):
        verify_presentation(shown, trust({}), challenge="c", domain="d")
    someone_else = {**holder_document(seed), "id": "did:web:other.example"}
    with pytest.raises(Refused, match=re.escape(f"not {HOLDER}'s")):
        verify_presentation(shown, trust({HOLDER: someone_else}), challenge="c", domain="d")
