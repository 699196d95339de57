"""The identity app's read side: DID resolution (DID Core documents with resolution metadata),
the issuer registry and status lists, read from a node's committed state; and the `Trust` a
verifier on this node uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from xinchain.apps.identity import didkey
from xinchain.apps.identity.contract import NAME, did_of, recovered_document
from xinchain.apps.identity.credentials import DidRecord, Trust
from xinchain.execution.chain import ChainStore

CONTENT_TYPE = "application/did+ld+json"


def _identifier(chain: ChainStore, did: str) -> str | None:
    prefix = f"did:xin:{chain.genesis.chain_id}:"
    return did[len(prefix) :] if did.startswith(prefix) else None


def did_record(chain: ChainStore, did: str) -> dict[str, Any] | None:
    identifier = _identifier(chain, did)
    if identifier is None:
        return None
    found = chain.read_state(NAME, f"did/{identifier}")
    if found is None:
        return None
    record = dict(found)
    entry = (chain.read_state(NAME, "config/recovered") or {}).get(identifier)
    replacement = recovered_document(did, record, entry)
    if replacement is not None:
        record["document"] = replacement
        record["recovered"] = True
    return record


def resolve(chain: ChainStore, did: str) -> dict[str, Any]:
    """A DID Resolution result: {didDocument, didResolutionMetadata, didDocumentMetadata}."""
    if did.startswith("did:key:"):
        try:
            resolved = didkey.resolve(did)
        except didkey.ResolutionError as exc:
            return _failed(exc.error, exc.reason)
        return {
            "didDocument": resolved.document,
            "didResolutionMetadata": {"contentType": CONTENT_TYPE},
            "didDocumentMetadata": {},
        }
    if not did.startswith("did:"):
        return _failed("invalidDid", f"{did!r} is not a DID")
    if not did.startswith("did:xin:"):
        return _failed(
            "methodNotSupported",
            f"this node resolves did:xin and did:key, not {did.split(':')[1]!r}",
        )
    if _identifier(chain, did) is None:
        return _failed("notFound", f"{did} is not a DID of chain {chain.genesis.chain_id}")
    record = did_record(chain, did)
    if record is None:
        return _failed("notFound", f"{did} is not registered")
    metadata = {
        "created": _time(record["created"]),
        "updated": _time(record["updated"]),
        "versionId": str(record["version"]),
        "deactivated": record["deactivated"],
        "registrar": record["registrar"],
        "recoveredByGovernance": record.get("recovered", False),
    }
    return {
        "didDocument": record["document"],
        "didResolutionMetadata": {"contentType": CONTENT_TYPE},
        "didDocumentMetadata": metadata,
    }


def _failed(error: str, reason: str) -> dict[str, Any]:
    return {
        "didDocument": None,
        "didResolutionMetadata": {"error": error, "errorMessage": reason},
        "didDocumentMetadata": {},
    }


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issuers(chain: ChainStore) -> dict[str, list[str]]:
    found = chain.read_state(NAME, "config/issuers")
    return {} if found is None else {str(k): list(v) for k, v in dict(found).items()}


def status_list(chain: ChainStore, org: str, name: str) -> tuple[str, str] | None:
    found = chain.read_state(NAME, f"status/{org}/{name}")
    return None if found is None else (str(found["purpose"]), str(found["encoded"]))


def status_height(chain: ChainStore, org: str, name: str) -> int:
    """The height a list was written at (0: none): what a change names as `previous`."""
    found = chain.read_state(NAME, f"status/{org}/{name}")
    return 0 if found is None else int(found["height"])


def chain_trust(chain: ChainStore) -> Trust:
    """What a verifier on this node trusts: the committed state as of each call."""

    def resolve_xin(did: str) -> DidRecord | None:
        record = did_record(chain, did)
        if record is None:
            return None
        return DidRecord(record["document"], record["registrar"], record["deactivated"])

    return Trust(
        resolve_xin=resolve_xin,
        issuers=issuers(chain),
        status_list=lambda org, name: status_list(chain, org, name),
    )


def org_did(chain: ChainStore, org: str) -> str:
    return did_of(chain.genesis.chain_id, org)
