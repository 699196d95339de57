"""Data Integrity proofs with the EdDSA cryptosuites (W3C Data Integrity EdDSA Cryptosuites
v1.0): `eddsa-jcs-2022` (section 3.3), JSON Canonicalization (RFC 8785, the `rfc8785`
library) of the document and of the proof's configuration, SHA-256 of each, and an Ed25519
signature over the two hashes (the configuration's first), written as multibase base58btc;
and `eddsa-rdfc-2022` (section 3.2) the same over RDF Dataset Canonicalization, registered by
`rdfc.py` (it needs JSON-LD, which a contract never loads).

`sign` makes the proof; `verify` checks one, given a way to find the verification method's
public key (a resolver: did:key offline, did:xin from the chain). Each refusal names the rule.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing
import rfc8785

from xinchain.apps.identity.multiformats import (
    ED25519_PRIV,
    ED25519_PUB,
    SM2_PUB,
    MultiformatError,
    base58btc_decode,
    base58btc_encode,
    multikey_decode,
)
from xinchain.errors import XinchainError

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
_DATETIME = re.compile(
    r"^-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


class ProofError(XinchainError):
    code = "proof_invalid"


# (verification method id, proof purpose) → the Ed25519 public key, or ProofError: the
# method's controller document must list it under that purpose.
KeyFinder = Callable[[str, str], bytes]


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key that signs as one verification method."""

    seed: bytes
    verification_method: str

    @classmethod
    def from_multibase(cls, private_multibase: str, verification_method: str) -> SigningKey:
        _, seed = multikey_decode(private_multibase, "privateKeyMultibase", (ED25519_PRIV,))
        return cls(seed, verification_method)

    @property
    def public(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)


def jcs(value: Any) -> bytes:
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ProofError(f"the document cannot be canonicalized (RFC 8785): {exc}") from None


Canonicalize = Callable[[dict[str, Any]], bytes]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ed25519_sign(private: bytes, data: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(private).sign(data).signature)


def _ed25519_verify(public: bytes, data: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Cryptosuite:
    """A Data Integrity cryptosuite: how documents are canonicalized and hashed, how the two
    hashes are signed and checked, and whether the proof it attaches carries the document's
    @context (eddsa-jcs-2022 does, eddsa-rdfc-2022 does not: its proof configuration takes the
    document's when hashed)."""

    name: str
    canonicalize: Canonicalize
    context_in_proof: bool
    hash: Callable[[bytes], bytes] = _sha256
    sign: Callable[[bytes, bytes], bytes] = _ed25519_sign
    verify: Callable[[bytes, bytes, bytes], bool] = _ed25519_verify


SUITES: dict[str, Cryptosuite] = {}


def register(suite: Cryptosuite) -> Cryptosuite:
    SUITES[suite.name] = suite
    return suite


def hash_data(
    document: dict[str, Any],
    proof_config: dict[str, Any],
    canonicalize: Canonicalize = jcs,
    hash: Callable[[bytes], bytes] = _sha256,
) -> bytes:
    """The hash (SHA-256 unless told) of the canonical proof configuration, then of the
    canonical document."""
    return hash(canonicalize(proof_config)) + hash(canonicalize(document))


def sign(
    document: dict[str, Any],
    key: SigningKey,
    *,
    created: str,
    proof_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
    cryptosuite: str = CRYPTOSUITE,
) -> dict[str, Any]:
    """`document` with a proof added (the document is not changed)."""
    if "proof" in document:
        raise ProofError("the document already carries a proof", field="proof")
    suite = SUITES[cryptosuite]
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": cryptosuite,
        "created": created,
        "verificationMethod": key.verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        config["challenge"] = challenge
    if domain is not None:
        config["domain"] = domain
    hashed = dict(config)
    if "@context" in document:
        hashed["@context"] = copy.deepcopy(document["@context"])
    data = hash_data(document, hashed, suite.canonicalize, suite.hash)
    signature = suite.sign(key.seed, data)
    attached = hashed if suite.context_in_proof else config
    return {
        **copy.deepcopy(document),
        "proof": {**attached, "proofValue": base58btc_encode(signature)},
    }


@dataclass(frozen=True)
class VerifiedProof:
    verification_method: str
    proof_purpose: str
    created: str
    challenge: str | None
    domain: str | None


def verify(
    secured: dict[str, Any],
    find_key: KeyFinder,
    *,
    expected_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
) -> VerifiedProof:
    """Check the document's one `eddsa-jcs-2022` proof; the proof's facts, or ProofError
    naming the rule that fails."""
    if not isinstance(secured, dict):
        raise ProofError("expected a JSON object")
    proof = secured.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise ProofError("expected one proof; proof sets are not accepted", field="proof")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("the document carries no proof", field="proof")
    suite = SUITES.get(str(proof.get("cryptosuite")))
    if proof.get("type") != PROOF_TYPE or suite is None:
        raise ProofError(
            f"expected a {PROOF_TYPE} of cryptosuite {' or '.join(sorted(SUITES))}, found "
            f"{proof.get('type')!r} / {proof.get('cryptosuite')!r}",
            field="proof.cryptosuite",
        )
    for name in ("verificationMethod", "proofPurpose", "proofValue"):
        if not isinstance(proof.get(name), str) or not proof[name]:
            raise ProofError(f"the proof has no {name}", field=f"proof.{name}")
    created = proof.get("created")
    if created is not None and (not isinstance(created, str) or not _DATETIME.fullmatch(created)):
        raise ProofError("created is not an XML Schema dateTimeStamp", field="proof.created")
    if proof["proofPurpose"] != expected_purpose:
        raise ProofError(
            f"the proof's purpose is {proof['proofPurpose']!r}; {expected_purpose!r} was expected",
            field="proof.proofPurpose",
        )
    if challenge is not None and proof.get("challenge") != challenge:
        raise ProofError(
            f"the proof answers challenge {proof.get('challenge')!r}, not {challenge!r}",
            field="proof.challenge",
        )
    if domain is not None and proof.get("domain") != domain:
        raise ProofError(
            f"the proof is bound to domain {proof.get('domain')!r}, not {domain!r}",
            field="proof.domain",
        )
    document = {name: value for name, value in secured.items() if name != "proof"}
    config = {name: value for name, value in proof.items() if name != "proofValue"}
    if not suite.context_in_proof and "@context" in document:
        config["@context"] = document["@context"]
    elif "@context" in config:
        document_context = document.get("@context")
        contexts = (
            config["@context"] if isinstance(config["@context"], list) else [config["@context"]]
        )
        listed = document_context if isinstance(document_context, list) else [document_context]
        if listed[: len(contexts)] != contexts:
            raise ProofError(
                "the document's @context does not begin with the proof's @context",
                field="proof.@context",
            )
        document["@context"] = config["@context"]
    try:
        signature = base58btc_decode(proof["proofValue"], "proof.proofValue")
    except MultiformatError as exc:
        raise ProofError(exc.reason, field=exc.field) from None
    if suite.sign is _ed25519_sign and len(signature) != 64:
        raise ProofError("an Ed25519 signature is 64 bytes", field="proof.proofValue")
    public = find_key(proof["verificationMethod"], proof["proofPurpose"])
    if not suite.verify(
        public, hash_data(document, config, suite.canonicalize, suite.hash), signature
    ):
        raise ProofError(
            "the signature does not verify: the document or the proof was changed, or another "
            "key signed it",
            field="proof.proofValue",
        ) from None
    return VerifiedProof(
        proof["verificationMethod"],
        proof["proofPurpose"],
        created or "",
        proof.get("challenge"),
        proof.get("domain"),
    )


register(Cryptosuite(CRYPTOSUITE, jcs, context_in_proof=True))


def multikey_public(method: dict[str, Any]) -> bytes:
    """The key of a verification method written as Multikey: Ed25519 (32 bytes), or SM2 (33
    bytes, compressed) for the national suite's cryptosuite."""
    if method.get("type") != "Multikey":
        raise ProofError(
            f"verification method {method.get('id')!r} is a {method.get('type')!r}; a Multikey "
            "was expected"
        )
    try:
        return multikey_decode(
            method.get("publicKeyMultibase"), "publicKeyMultibase", (ED25519_PUB, SM2_PUB)
        )[1]
    except MultiformatError as exc:
        raise ProofError(exc.reason, field=exc.field) from None
