"""Merchant identity in process: did:xin documents on chain, the issuer registry, status lists,
and a MerchantCredential issued by platform A and verified by platform B from the chain alone.

- a member org registers DIDs (its own, a merchant's); documents are checked (id, Multikey
  keys, relationships, a capabilityInvocation key); a DID is registered once
- an update or a deactivation needs a proof by the current capabilityInvocation key over the
  DID's current version: another key, a replayed proof or a stale version are refused
- the issuer registry is a governance setting
- accepted: a credential issued by an authorised issuer, presented by its subject with B's
  challenge and domain
- refused, each naming why: a tampered claim, a proof by a key not in the issuer's document, an
  issuer not authorised for the type, an expired validUntil, a revoked and a suspended
  credential (from the block that publishes the list), no status list, a presentation with the
  wrong challenge or domain, a presentation by someone other than the subject, a deactivated
  issuer DID
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import nacl.signing
import pytest
from chain_helpers import Chain, make_consortium

from xinchain.apps.identity import status
from xinchain.apps.identity.contract import did_of
from xinchain.apps.identity.credentials import (
    Refused,
    issue,
    present,
    verify_credential,
    verify_presentation,
)
from xinchain.apps.identity.dataintegrity import SigningKey, sign
from xinchain.apps.identity.multiformats import ED25519_PUB, multikey_encode
from xinchain.apps.identity.view import chain_trust, resolve
from xinchain.contracts.governance import approvals_needed

PLATFORM_A, PLATFORM_B, BRAND = "org0", "org1", "org2"
NOW = "2026-12-04T10:00:00Z"


class Party:
    def __init__(self, c: Chain, identifier: str, seed: int) -> None:
        self.did = did_of(c.consortium.genesis.chain_id, identifier)
        self.id = identifier
        self.seed = bytes([seed]) * 32
        public = bytes(nacl.signing.SigningKey(self.seed).verify_key)
        self.multikey = multikey_encode(ED25519_PUB, public)
        self.method = f"{self.did}#key-1"

    def document(self, method: str | None = None, multikey: str | None = None) -> dict[str, Any]:
        method = method or self.method
        return {
            "id": self.did,
            "verificationMethod": [
                {
                    "id": method,
                    "type": "Multikey",
                    "controller": self.did,
                    "publicKeyMultibase": multikey or self.multikey,
                }
            ],
            "authentication": [method],
            "assertionMethod": [method],
            "capabilityInvocation": [method],
        }

    def key(self) -> SigningKey:
        return SigningKey(self.seed, self.method)


def chain() -> Chain:
    return Chain(make_consortium("ed25519-sha256", org_count=3))


def govern(c: Chain, action: dict[str, Any]) -> None:
    result = c.call("org0", "governance", "propose", {"action": action})
    assert result.ok, result.error
    for org in ("org1", "org2")[: approvals_needed(3) - 1]:
        result = c.call(org, "governance", "approve", {"proposal": result.data["proposal"]})
    assert result.ok and result.data["executed"], result


def setup() -> tuple[Chain, Party, Party]:
    c = chain()
    issuer = Party(c, PLATFORM_A, 1)  # the org's own DID carries its authority
    merchant = Party(c, "merchant-7d2f", 2)
    for party in (issuer, merchant):
        done = c.call(
            PLATFORM_A, "identity", "did_create", {"id": party.id, "document": party.document()}
        )
        assert done.ok, done.error
    govern(
        c,
        {
            "kind": "set_config",
            "contract": "identity",
            "key": "issuers",
            "value": {"MerchantCredential": [PLATFORM_A]},
        },
    )
    for name, purpose in (("revoked", "revocation"), ("suspended", "suspension")):
        published = c.call(
            PLATFORM_A,
            "identity",
            "status_publish",
            {
                "list": name,
                "purpose": purpose,
                "encoded": status.encode(status.empty()),
                "previous": 0,
            },
        )
        assert published.ok, published.error
    return c, issuer, merchant


def credential(issuer: Party, merchant: Party, index: int = 7, **extra: Any) -> dict[str, Any]:
    return {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            {
                "MerchantCredential": "https://xinchain.example/ns#MerchantCredential",
                "shopName": "https://schema.org/name",
            },
        ],
        "type": ["VerifiableCredential", "MerchantCredential"],
        "issuer": issuer.did,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": merchant.did, "shopName": "Hangzhou Formula Store"},
        "credentialStatus": [
            {
                "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation",
                "statusListIndex": str(index),
                "statusListCredential": status.status_url(issuer.did, "revoked"),
            },
            {
                "type": "BitstringStatusListEntry",
                "statusPurpose": "suspension",
                "statusListIndex": str(index),
                "statusListCredential": status.status_url(issuer.did, "suspended"),
            },
        ],
        **extra,
    }


def trust(c: Chain) -> Any:
    t = chain_trust(c.app.chain)
    t.now = lambda: datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    return t


def test_a_merchant_onboards_at_b_from_the_chain_alone() -> None:
    c, issuer, merchant = setup()
    issued = issue(credential(issuer, merchant), issuer.key(), NOW)
    accepted = verify_credential(issued, trust(c))
    assert accepted["issuer"] == issuer.did
    shown = present(
        [issued],
        merchant.did,
        merchant.key(),
        challenge="b-7731",
        domain="platform-b.example",
        created=NOW,
    )
    found = verify_presentation(shown, trust(c), challenge="b-7731", domain="platform-b.example")
    assert [f["subject"]["shopName"] for f in found] == ["Hangzhou Formula Store"]
    resolved = resolve(c.app.chain, merchant.did)
    assert resolved["didDocument"]["id"] == merchant.did
    assert resolved["didDocumentMetadata"]["registrar"] == PLATFORM_A


def refused(action: Any, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        action()


def test_every_refusal_names_its_reason() -> None:
    c, issuer, merchant = setup()
    issued = issue(credential(issuer, merchant), issuer.key(), NOW)
    tampered = copy.deepcopy(issued)
    tampered["credentialSubject"]["shopName"] = "Another Store"
    refused(lambda: verify_credential(tampered, trust(c)), "does not verify")
    stranger = SigningKey(bytes([9]) * 32, f"{issuer.did}#key-9")
    refused(
        lambda: verify_credential(issue(credential(issuer, merchant), stranger, NOW), trust(c)),
        "is not a key of",
    )
    brand = Party(c, "brand-issuer", 3)
    assert c.call(
        BRAND, "identity", "did_create", {"id": brand.id, "document": brand.document()}
    ).ok
    by_brand = issue(
        {**credential(issuer, merchant), "issuer": brand.did, "credentialStatus": []},
        brand.key(),
        NOW,
    )
    refused(
        lambda: verify_credential(by_brand, trust(c)), "not authorised to issue MerchantCredential"
    )
    expired = issue(
        credential(issuer, merchant, validUntil="2026-06-01T00:00:00Z"), issuer.key(), NOW
    )
    refused(lambda: verify_credential(expired, trust(c)), "expired")
    shown = present(
        [issued],
        merchant.did,
        merchant.key(),
        challenge="b-7731",
        domain="platform-b.example",
        created=NOW,
    )
    refused(
        lambda: verify_presentation(
            shown, trust(c), challenge="b-9999", domain="platform-b.example"
        ),
        "challenge",
    )
    refused(
        lambda: verify_presentation(shown, trust(c), challenge="b-7731", domain="evil.example"),
        "domain",
    )
    by_other = present(
        [issued],
        brand.did,
        brand.key(),
        challenge="b-7731",
        domain="platform-b.example",
        created=NOW,
    )
    refused(
        lambda: verify_presentation(
            by_other, trust(c), challenge="b-7731", domain="platform-b.example"
        ),
        "not about the holder",
    )
    no_list = issue(credential(issuer, merchant), issuer.key(), NOW)
    no_list["credentialStatus"] = [
        {
            **no_list["credentialStatus"][0],
            "statusListCredential": status.status_url(issuer.did, "missing"),
        }
    ]
    refused(lambda: verify_credential(no_list, trust(c)), "does not verify|no status list")


@pytest.mark.parametrize(
    ("name", "purpose", "word"),
    [("revoked", "revocation", "revoked"), ("suspended", "suspension", "suspended")],
)
def test_a_status_bit_refuses_from_the_block_that_publishes_it(
    name: str, purpose: str, word: str
) -> None:
    c, issuer, merchant = setup()
    issued = issue(credential(issuer, merchant, index=42), issuer.key(), NOW)
    verify_credential(issued, trust(c))
    bits = status.empty()
    status.set_bit(bits, 42, True)
    written = c.app.chain.read_state("identity", f"status/{PLATFORM_A}/{name}")["height"]
    stale = c.call(
        PLATFORM_A,
        "identity",
        "status_publish",
        {"list": name, "purpose": purpose, "encoded": status.encode(bits), "previous": 0},
    )
    assert not stale.ok and "read it again" in stale.error  # a change on top of a stale read
    assert c.call(
        PLATFORM_A,
        "identity",
        "status_publish",
        {"list": name, "purpose": purpose, "encoded": status.encode(bits), "previous": written},
    ).ok
    refused(lambda: verify_credential(issued, trust(c)), f"is {word}")
    other = issue(credential(issuer, merchant, index=43), issuer.key(), NOW)
    verify_credential(other, trust(c))


def test_changing_a_did_needs_its_current_key() -> None:
    c, issuer, merchant = setup()
    record = c.app.chain.read_state("identity", f"did/{merchant.id}")
    rotated = Party(c, merchant.id, 5)
    rotated.method = f"{merchant.did}#key-2"
    new_document = rotated.document()
    statement = {"did": merchant.did, "document": new_document, "version": record["version"]}
    by_new_key = sign(
        statement,
        SigningKey(rotated.seed, rotated.method),
        created=NOW,
        proof_purpose="capabilityInvocation",
    )["proof"]
    refusal = c.call(
        PLATFORM_A,
        "identity",
        "did_update",
        {"did": merchant.did, "document": new_document, "proof": by_new_key},
    )
    assert not refusal.ok and "not a capabilityInvocation key" in refusal.error
    proof = sign(statement, merchant.key(), created=NOW, proof_purpose="capabilityInvocation")[
        "proof"
    ]
    done = c.call(
        BRAND,
        "identity",
        "did_update",
        {"did": merchant.did, "document": new_document, "proof": proof},
    )
    assert done.ok, done.error
    replayed = c.call(
        BRAND,
        "identity",
        "did_update",
        {"did": merchant.did, "document": new_document, "proof": proof},
    )
    assert not replayed.ok and "not a capabilityInvocation key" in replayed.error
    # A proof by the new key over the version before the update (a stale one) does not hold.
    stale_by_new = sign(
        statement,
        SigningKey(rotated.seed, rotated.method),
        created=NOW,
        proof_purpose="capabilityInvocation",
    )["proof"]
    stale = c.call(
        BRAND,
        "identity",
        "did_update",
        {"did": merchant.did, "document": new_document, "proof": stale_by_new},
    )
    assert not stale.ok and "does not verify" in stale.error
    # The merchant's old key no longer signs for it; the new one does.
    issued = issue(credential(issuer, merchant), issuer.key(), NOW)
    old = present([issued], merchant.did, merchant.key(), challenge="x", domain="b", created=NOW)
    refused(
        lambda: verify_presentation(old, trust(c), challenge="x", domain="b"), "is not a key of"
    )
    new = present(
        [issued],
        merchant.did,
        SigningKey(rotated.seed, rotated.method),
        challenge="x",
        domain="b",
        created=NOW,
    )
    verify_presentation(new, trust(c), challenge="x", domain="b")


def test_a_deactivated_issuer_is_refused() -> None:
    c, issuer, merchant = setup()
    issued = issue(credential(issuer, merchant), issuer.key(), NOW)
    record = c.app.chain.read_state("identity", f"did/{issuer.id}")
    statement = {"did": issuer.did, "deactivate": True, "version": record["version"]}
    proof = sign(statement, issuer.key(), created=NOW, proof_purpose="capabilityInvocation")[
        "proof"
    ]
    assert c.call(PLATFORM_A, "identity", "did_deactivate", {"did": issuer.did, "proof": proof}).ok
    refused(lambda: verify_credential(issued, trust(c)), "deactivated")
    assert resolve(c.app.chain, issuer.did)["didDocumentMetadata"]["deactivated"] is True


def test_documents_are_checked_when_registered() -> None:
    c = chain()
    party = Party(c, "m", 4)
    good = party.document()
    for change, reason in (
        ({"id": "did:xin:other:m"}, "document's id must be"),
        ({"verificationMethod": []}, "1 to 16 verification methods"),
        ({"capabilityInvocation": []}, "capabilityInvocation key"),
        ({"assertionMethod": [f"{party.did}#nope"]}, "assertionMethod lists ids"),
        ({"secret": "x"}, "holds no"),
    ):
        result = c.call(
            PLATFORM_A, "identity", "did_create", {"id": "m", "document": {**good, **change}}
        )
        assert not result.ok and reason in result.error, (change, result.error)
    squatted = Party(c, "org1", 8)
    taken = c.call(
        PLATFORM_A, "identity", "did_create", {"id": "org1", "document": squatted.document()}
    )
    assert not taken.ok and "only that org registers it" in taken.error
    assert c.call(
        "org1", "identity", "did_create", {"id": "org1", "document": squatted.document()}
    ).ok
    bad_key = party.document(multikey="z" + "1" * 40)
    result = c.call(PLATFORM_A, "identity", "did_create", {"id": "m", "document": bad_key})
    assert not result.ok and "multicodec" in result.error
    assert c.call(PLATFORM_A, "identity", "did_create", {"id": "m", "document": good}).ok
    again = c.call(PLATFORM_A, "identity", "did_create", {"id": "m", "document": good})
    assert not again.ok and "exists already" in again.error


def test_an_offline_snapshot_older_than_the_bound_is_not_trusted() -> None:
    c, issuer, merchant = setup()
    issued = issue(credential(issuer, merchant), issuer.key(), NOW)
    snapshot = trust(c)
    snapshot.as_of = datetime(2026, 12, 4, 9, 55, tzinfo=UTC)  # 5 minutes before "now"
    verify_credential(issued, snapshot)
    snapshot.as_of = datetime(2026, 12, 4, 9, 45, tzinfo=UTC)  # 15 minutes before
    refused(lambda: verify_credential(issued, snapshot), "a verifier refuses without a status")


def test_governance_replaces_the_document_of_a_did_whose_key_is_lost() -> None:
    c, issuer, merchant = setup()
    issued = issue(credential(issuer, merchant), issuer.key(), NOW)
    replacement = Party(c, merchant.id, 6)
    replacement.method = f"{merchant.did}#key-9"
    govern(
        c,
        {
            "kind": "set_config",
            "contract": "identity",
            "key": "recovered",
            "value": {
                merchant.id: {
                    "document": replacement.document(),
                    "replaces_version": c.app.chain.read_state("identity", f"did/{merchant.id}")[
                        "version"
                    ],
                }
            },
        },
    )
    resolved = resolve(c.app.chain, merchant.did)
    assert resolved["didDocumentMetadata"]["recoveredByGovernance"] is True
    assert resolved["didDocument"]["verificationMethod"][0]["id"] == replacement.method
    lost = present([issued], merchant.did, merchant.key(), challenge="x", domain="b", created=NOW)
    refused(
        lambda: verify_presentation(lost, trust(c), challenge="x", domain="b"), "is not a key of"
    )
    new_key = SigningKey(replacement.seed, replacement.method)
    found = present([issued], merchant.did, new_key, challenge="x", domain="b", created=NOW)
    verify_presentation(found, trust(c), challenge="x", domain="b")
    record = c.app.chain.read_state("identity", f"did/{merchant.id}")
    statement = {"did": merchant.did, "deactivate": True, "version": record["version"]}
    by_lost = sign(statement, merchant.key(), created=NOW, proof_purpose="capabilityInvocation")
    refusal = c.call(
        BRAND, "identity", "did_deactivate", {"did": merchant.did, "proof": by_lost["proof"]}
    )
    assert not refusal.ok and "not a capabilityInvocation key" in refusal.error
    by_new = sign(statement, new_key, created=NOW, proof_purpose="capabilityInvocation")
    assert c.call(
        BRAND, "identity", "did_deactivate", {"did": merchant.did, "proof": by_new["proof"]}
    ).ok


def test_authority_is_the_orgs_own_did_and_a_merchant_cannot_issue_as_its_platform() -> None:
    c, _, merchant = setup()
    # The merchant's DID was registered by the platform, and the merchant holds its key.
    as_platform = issue(
        {**credential(merchant, merchant), "credentialStatus": []}, merchant.key(), NOW
    )
    refused(lambda: verify_credential(as_platform, trust(c)), "no member org")
    # A self-issued credential of the base type alone proves nothing to a verifier that asks
    # for a MerchantCredential.
    bare = issue(
        {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiableCredential"],
            "issuer": merchant.did,
            "credentialSubject": {"id": merchant.did, "name": "Totally Real Shop"},
        },
        merchant.key(),
        NOW,
    )
    shown = present([bare], merchant.did, merchant.key(), challenge="x", domain="b", created=NOW)
    refused(
        lambda: verify_presentation(
            shown, trust(c), challenge="x", domain="b", required=("MerchantCredential",)
        ),
        "not a MerchantCredential",
    )
