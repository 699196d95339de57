"""Issuing and verifying credentials and presentations against a chain's DID documents, issuer
registry and status lists (docs/did-method.md).

`Trust` is what a verifier consults, nothing else: DID documents (did:xin from the chain's
state, did:key computed offline), which org may issue which type, and status lists. A node
builds it from its committed state (`view.chain_trust`); an offline verifier from a snapshot
of the same records. Every refusal names its reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from xinchain.apps.identity import didkey, didweb, rdfc, sm2suite, status
from xinchain.apps.identity.dataintegrity import (
    ProofError,
    SigningKey,
    multikey_public,
    sign,
    verify,
)
from xinchain.apps.identity.vcmodel import ModelError, check_credential, check_presentation
from xinchain.errors import XinchainError

# The cryptosuites a verifier accepts besides eddsa-jcs-2022 (registered on import).
CRYPTOSUITES = (rdfc.RDFC, sm2suite.SM2_SUITE)
# The proofs a credential may carry. eddsa-rdfc-2022 is verified (rdfc.py), but these checks
# read the credential's JSON keys, which an RDF-signed credential can rename without changing
# its graph: it is not accepted until they run on the RDF form.
CREDENTIAL_SUITES = ("eddsa-jcs-2022", sm2suite.SM2_SUITE)
# Types every credential carries, which need no issuer authorisation.
BASE_TYPES = frozenset({"VerifiableCredential"})


class Refused(XinchainError):
    """A credential or presentation that must not be accepted, and why."""

    code = "credential_refused"


@dataclass(frozen=True)
class DidRecord:
    """A DID document as a verifier sees it."""

    document: dict[str, Any]
    registrar: str = ""  # the org that registered a did:xin ("" for did:key)
    deactivated: bool = False


@dataclass
class Trust:
    """What a verifier trusts. `resolve_xin(did)` → a did:xin's record or None;
    `issuers` = {type: [orgs]}; `status_list(org, list)` → (purpose, encodedList) or None.

    `as_of` is when the records were read: None for a node's own committed state (current by
    construction), the snapshot's block time for an offline verifier. A status older than
    `status_age_max` is one the verifier does not trust, and it refuses the credential."""

    resolve_xin: Callable[[str], DidRecord | None]
    issuers: dict[str, list[str]]
    status_list: Callable[[str, str], tuple[str, str] | None]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    as_of: datetime | None = None
    status_age_max: timedelta = field(default=timedelta(minutes=10))
    # did:web documents handed in with what is verified (a verifier fetches none).
    web_documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve(self, did: str) -> DidRecord:
        if did.startswith("did:key:"):
            try:
                return DidRecord(didkey.resolve(did).document)
            except didkey.ResolutionError as exc:
                raise Refused(f"{did} does not resolve: {exc.error}: {exc.reason}") from None
        if did.startswith("did:web:"):
            if did not in self.web_documents:
                raise Refused(
                    f"no document was handed in for {did}; a verifier fetches none "
                    f"(it lives at {didweb.document_url(did)})"
                )
            try:
                return DidRecord(didweb.check_document(did, self.web_documents[did]))
            except didweb.DidWebError as exc:
                raise Refused(exc.reason, field=exc.field) from None
        if did.startswith("did:xin:"):
            record = self.resolve_xin(did)
            if record is None:
                raise Refused(f"{did} is not registered on this chain")
            return record
        raise Refused(f"{did.split(':')[:2]} is not a DID method this verifier reads")

    def key_finder(self, controller: str | None = None) -> Callable[[str, str], bytes]:
        def find(method_id: str, purpose: str) -> bytes:
            did = method_id.split("#", 1)[0]
            if controller is not None and did != controller:
                raise ProofError(
                    f"the proof is by a key of {did}, not of {controller}",
                    field="proof.verificationMethod",
                )
            record = self.resolve(did)
            if record.deactivated:
                raise ProofError(f"{did} is deactivated", field="proof.verificationMethod")
            if method_id not in record.document.get(purpose, []):
                raise ProofError(
                    f"{method_id} is not a key of {did}'s {purpose}",
                    field="proof.verificationMethod",
                )
            method = next(
                (m for m in record.document.get("verificationMethod", []) if m["id"] == method_id),
                None,
            )
            if method is None:
                raise ProofError(
                    f"{did} has no method {method_id}", field="proof.verificationMethod"
                )
            return multikey_public(method)

        return find


def issuer_id(credential: dict[str, Any]) -> str:
    issuer = credential.get("issuer")
    return str(issuer.get("id") if isinstance(issuer, dict) else issuer)


def issue(credential: dict[str, Any], key: SigningKey, created: str) -> dict[str, Any]:
    """The credential, checked against the data model, with an eddsa-jcs-2022 proof."""
    try:
        check_credential(credential)
    except ModelError as exc:
        raise Refused(f"not a valid credential: {exc.reason}", field=exc.field) from None
    return sign(credential, key, created=created)


def verify_credential(
    credential: dict[str, Any], trust: Trust, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Accept `credential` or raise Refused: the data model, the proof by a key of the issuer's
    current DID document, the issuer's authority for each type, the validity period, and its
    status; and, when `required`, that it is of each of those types."""
    try:
        check_credential(credential)
    except ModelError as exc:
        raise Refused(f"not a valid credential: {exc.reason}", field=exc.field) from None
    types = credential["type"] if isinstance(credential["type"], list) else [credential["type"]]
    missing = [name for name in required if name not in types]
    if missing:
        raise Refused(f"the credential is not a {', '.join(missing)}", field="type")
    proof = credential.get("proof")
    suite = proof.get("cryptosuite") if isinstance(proof, dict) else None
    if suite not in CREDENTIAL_SUITES:
        raise Refused(
            f"credentials are accepted with {' or '.join(CREDENTIAL_SUITES)} proofs, found "
            f"{suite!r}: under eddsa-rdfc-2022 a signed graph can be rewritten with other JSON "
            "keys, which these checks read",
            field="proof.cryptosuite",
        )
    issuer = issuer_id(credential)
    try:
        verify(credential, trust.key_finder(issuer))
    except ProofError as exc:
        raise Refused(f"the proof does not hold: {exc.reason}", field=exc.field) from None
    record = trust.resolve(issuer)
    # An org's authority is carried by the org's own DID (did:xin:<chain>:<org>) alone, not by
    # every DID the org registered (its merchants' among them).
    org = record.registrar if issuer.rsplit(":", 1)[-1] == record.registrar else ""
    for credential_type in types:
        if credential_type in BASE_TYPES:
            continue
        allowed = trust.issuers.get(credential_type, [])
        if not org or org not in allowed:
            raise Refused(
                f"{issuer} ({'org ' + org if org else 'no member org'}) is not authorised to issue "
                f"{credential_type}; governance authorises {allowed or 'no org'}",
                field="issuer",
            )
    now = trust.now()
    for name, late in (("validFrom", False), ("validUntil", True)):
        if name in credential:
            moment = datetime.fromisoformat(credential[name])
            if (moment < now) if late else (moment > now):
                raise Refused(
                    f"the credential is {'expired' if late else 'not yet valid'}: {name} "
                    f"{credential[name]}",
                    field=name,
                )
    for entry in _as_list(credential.get("credentialStatus", [])):
        _check_status(entry, record, trust)
    return {
        "issuer": issuer,
        "types": credential["type"],
        "subject": credential["credentialSubject"],
    }


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _check_status(entry: dict[str, Any], issuer: DidRecord, trust: Trust) -> None:
    if entry.get("type") != status.ENTRY_TYPE:
        raise Refused(
            f"status of type {entry.get('type')!r} is not one this verifier reads",
            field="credentialStatus",
        )
    try:
        did, list_name = status.parse_status_url(entry.get("statusListCredential"))
        index = int(entry.get("statusListIndex", ""))
    except (status.StatusError, ValueError) as exc:
        raise Refused(f"unreadable status entry: {exc}", field="credentialStatus") from None
    if trust.as_of is not None and trust.now() - trust.as_of > trust.status_age_max:
        raise Refused(
            f"the status lists were read at {trust.as_of:%Y-%m-%dT%H:%M:%SZ}, more than "
            f"{trust.status_age_max} ago: a verifier refuses without a status it trusts",
            field="credentialStatus",
        )
    owner = trust.resolve(did)
    if not owner.registrar or owner.registrar != issuer.registrar:
        raise Refused("the status list is not the issuer's", field="credentialStatus")
    found = trust.status_list(owner.registrar, list_name)
    if found is None:
        raise Refused(
            f"no status list {list_name!r} of {owner.registrar} is known: without a status it "
            "trusts, a verifier refuses",
            field="credentialStatus",
        )
    purpose, encoded = found
    if entry.get("statusPurpose") != purpose:
        raise Refused(f"the list is a {purpose} list", field="credentialStatus")
    try:
        revoked = status.is_set(status.decode(encoded), index)
    except status.StatusError as exc:
        raise Refused(exc.reason, field="credentialStatus") from None
    if revoked:
        word = "revoked" if purpose == "revocation" else "suspended"
        raise Refused(
            f"the credential is {word} (list {list_name}, index {index})", field="credentialStatus"
        )


def present(
    credentials: list[dict[str, Any]],
    holder: str,
    key: SigningKey,
    *,
    challenge: str,
    domain: str,
    created: str,
) -> dict[str, Any]:
    presentation = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "holder": holder,
        "verifiableCredential": copy.deepcopy(credentials),
    }
    return sign(
        presentation,
        key,
        created=created,
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
    )


def verify_presentation(
    presentation: dict[str, Any],
    trust: Trust,
    *,
    challenge: str,
    domain: str,
    required: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Accept a presentation bound to `challenge` and `domain`, by its holder, of credentials
    about that holder; each credential verified. Refused otherwise."""
    try:
        check_presentation(presentation)
    except ModelError as exc:
        raise Refused(f"not a valid presentation: {exc.reason}", field=exc.field) from None
    holder = presentation.get("holder")
    holder_id = holder.get("id") if isinstance(holder, dict) else holder
    if not isinstance(holder_id, str):
        raise Refused("the presentation names no holder", field="holder")
    try:
        verify(
            presentation,
            trust.key_finder(holder_id),
            expected_purpose="authentication",
            challenge=challenge,
            domain=domain,
        )
    except ProofError as exc:
        raise Refused(
            f"the presentation's proof does not hold: {exc.reason}", field=exc.field
        ) from None
    accepted = []
    for credential in _as_list(presentation.get("verifiableCredential", [])):
        subjects = _as_list(credential.get("credentialSubject"))
        if not any(isinstance(s, dict) and s.get("id") == holder_id for s in subjects):
            raise Refused(
                "a credential is not about the holder: its subject is not the presentation's "
                "holder",
                field="verifiableCredential",
            )
        accepted.append(verify_credential(credential, trust, required))
    if required and not accepted:
        raise Refused(
            f"the presentation holds no {', '.join(required)}", field="verifiableCredential"
        )
    return accepted
