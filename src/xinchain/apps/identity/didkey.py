"""did:key resolution (W3C CCG did:key method, Ed25519 keys), offline: a did:key is its own
DID document. Errors carry the DID Resolution error names (`invalidDid`,
`methodNotSupported`, `invalidPublicKeyLength`, `invalidDidUrl`, `unsupportedPublicKeyType`,
`invalidPublicKey`), as the did:key test suite expects them.

Two representations of the document:

* `Multikey` (the default, the method's current one): `@context` DID v1 and Multikey v1, one
  `Multikey` verification method, the X25519 key agreement key derived from the Ed25519 key
  when `enable_encryption_key_derivation`;
* `Ed25519VerificationKey2018` with an `X25519KeyAgreementKey2019` key, and `JsonWebKey2020`,
  as the method's published test vectors were written.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import base58
import nacl.bindings
import nacl.exceptions
import nacl.signing

from xinchain.apps.identity.multiformats import (
    ED25519_PUB,
    X25519_PUB,
    MultiformatError,
    base58btc_decode,
    multikey_encode,
)

MULTIKEY = "Multikey"
ED25519_2018 = "Ed25519VerificationKey2018"
JWK_2020 = "JsonWebKey2020"
DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
_CONTEXTS_2018 = [
    DID_CONTEXT,
    "https://w3id.org/security/suites/ed25519-2018/v1",
    "https://w3id.org/security/suites/x25519-2019/v1",
]
# did:key:[version:]z<base58btc>, and a DID URL's path, query and fragment characters
# (RFC 3986 pchar, '/', '?').
_DID_KEY = re.compile(r"^did:key:(?:(?P<version>[^:]+):)?(?P<id>[^:/?#]+)$")
_URL_PART = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$")


class ResolutionError(Exception):
    """A DID Resolution error: `error` is its registered name."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


@dataclass(frozen=True)
class Resolved:
    did: str
    document: dict[str, Any]
    public_key: bytes  # the Ed25519 key
    fragment: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def verification_method(self, method_id: str) -> dict[str, Any] | None:
        for method in self.document.get("verificationMethod", []):
            if method["id"] == method_id:
                return dict(method)
        return None


def split_did_url(did_url: str) -> tuple[str, str, str, str]:
    """(did, path, query, fragment) of a DID URL."""
    rest, _, fragment = did_url.partition("#")
    rest, _, query = rest.partition("?")
    did, slash, path = rest.partition("/")
    return did, slash + path if slash else "", query, fragment


def resolve(
    did_url: str,
    *,
    public_key_format: str = MULTIKEY,
    enable_encryption_key_derivation: bool = True,
) -> Resolved:
    """The DID document a did:key (or a DID URL of one) names; `ResolutionError` otherwise."""
    if not isinstance(did_url, str):
        raise ResolutionError("invalidDid", "expected a DID as text")
    did, path, query, fragment = split_did_url(did_url)
    parts = did.split(":")
    if len(parts) < 3 or parts[0] != "did":
        raise ResolutionError("invalidDid", f"{did!r} does not begin with 'did:'")
    if parts[1] != "key":
        raise ResolutionError(
            "methodNotSupported", f"method {parts[1]!r} is not did:key (this resolves did:key)"
        )
    if any(not _URL_PART.fullmatch(part) for part in (path, query, fragment)) or path:
        raise ResolutionError(
            "invalidDidUrl", f"{did_url!r} is not a DID URL of a did:key (path, query, fragment)"
        )
    found = _DID_KEY.fullmatch(did)
    if found is None:
        raise ResolutionError("invalidDid", f"{did!r} is not did:key:[version:]<multibase>")
    version = found.group("version")
    if version is not None and (not version.isdigit() or int(version) < 1):
        raise ResolutionError("invalidDid", f"version {version!r} is not a positive integer")
    identifier = found.group("id")
    if not identifier.startswith("z"):
        raise ResolutionError(
            "invalidDid", "the multibase value must be base58btc, beginning with 'z'"
        )
    try:
        raw = base58btc_decode(identifier, "did")
    except MultiformatError as exc:
        raise ResolutionError("invalidDid", exc.reason) from None
    if raw[:2] != ED25519_PUB:
        raise ResolutionError(
            "invalidDid" if len(raw) < 2 else "unsupportedPublicKeyType",
            "expected an Ed25519 public key (multicodec ed25519-pub, 0xed)",
        )
    key = raw[2:]
    if len(key) != 32:
        raise ResolutionError(
            "invalidPublicKeyLength", f"an Ed25519 public key is 32 bytes, found {len(key)}"
        )
    try:
        nacl.signing.VerifyKey(key)
        x25519 = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise ResolutionError("invalidPublicKey", "not a point of Ed25519") from None
    did_text = f"did:key:{identifier}"
    if public_key_format == MULTIKEY:
        document = _multikey_document(
            did_text, identifier, x25519, enable_encryption_key_derivation
        )
    elif public_key_format == ED25519_2018:
        document = _document_2018(did_text, identifier, key, x25519)
    elif public_key_format == JWK_2020:
        document = _document_jwk(did_text, identifier, key, x25519)
    else:
        raise ResolutionError(
            "unsupportedPublicKeyType",
            f"public key format {public_key_format!r} is not one this resolver writes "
            f"({MULTIKEY}, {ED25519_2018}, {JWK_2020})",
        )
    if fragment:
        wanted = f"{did_text}#{fragment}"
        if not any(m["id"] == wanted for m in document["verificationMethod"]):
            raise ResolutionError("notFound", f"{did_text} has no verification method #{fragment}")
    return Resolved(did_text, document, key, fragment, {"contentType": "application/did+ld+json"})


def _relationships(method_id: str) -> dict[str, list[str]]:
    return {
        name: [method_id]
        for name in (
            "authentication",
            "assertionMethod",
            "capabilityInvocation",
            "capabilityDelegation",
        )
    }


def _multikey_document(
    did: str, identifier: str, x25519: bytes, derive_agreement: bool
) -> dict[str, Any]:
    method_id = f"{did}#{identifier}"
    methods: list[dict[str, Any]] = [
        {"id": method_id, "type": MULTIKEY, "controller": did, "publicKeyMultibase": identifier}
    ]
    document: dict[str, Any] = {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        **_relationships(method_id),
    }
    if derive_agreement:
        agreement = multikey_encode(X25519_PUB, x25519)
        methods.append(
            {
                "id": f"{did}#{agreement}",
                "type": MULTIKEY,
                "controller": did,
                "publicKeyMultibase": agreement,
            }
        )
        document["keyAgreement"] = [f"{did}#{agreement}"]
    return document


def _document_2018(did: str, identifier: str, key: bytes, x25519: bytes) -> dict[str, Any]:
    method_id = f"{did}#{identifier}"
    agreement = multikey_encode(X25519_PUB, x25519)
    return {
        "@context": list(_CONTEXTS_2018),
        "id": did,
        "verificationMethod": [
            {
                "id": method_id,
                "type": ED25519_2018,
                "controller": did,
                "publicKeyBase58": base58.b58encode(key).decode(),
            },
            {
                "id": f"{did}#{agreement}",
                "type": "X25519KeyAgreementKey2019",
                "controller": did,
                "publicKeyBase58": base58.b58encode(x25519).decode(),
            },
        ],
        **_relationships(method_id),
        "keyAgreement": [f"{did}#{agreement}"],
    }


def _document_jwk(did: str, identifier: str, key: bytes, x25519: bytes) -> dict[str, Any]:
    method_id = f"{did}#{identifier}"
    agreement = multikey_encode(X25519_PUB, x25519)
    return {
        "@context": [DID_CONTEXT, "https://w3id.org/security/suites/jws-2020/v1"],
        "id": did,
        "verificationMethod": [
            {
                "id": method_id,
                "type": JWK_2020,
                "controller": did,
                "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": _base64url(key)},
            },
            {
                "id": f"{did}#{agreement}",
                "type": JWK_2020,
                "controller": did,
                "publicKeyJwk": {"kty": "OKP", "crv": "X25519", "x": _base64url(x25519)},
            },
        ],
        **_relationships(method_id),
        "keyAgreement": [f"{did}#{agreement}"],
    }


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def did_key_of(public_key: bytes) -> str:
    """The did:key of an Ed25519 public key."""
    return f"did:key:{multikey_encode(ED25519_PUB, public_key)}"
