"""The identity console's gateway: what a platform's node does for its org when its operator
onboards a merchant from the console, and the demo's custodial merchant wallet.

The org's DID is `did:xin:<chain>:<org>`, its keys in `HOME/dids/<org>.json` (made and
registered by the org's node when it starts, `register_org_did`); it issues with it, and its
revocation list is `revocation`. A merchant onboarded
here gets a DID whose keys the platform keeps for it (`HOME/dids/<merchant>.json`): a merchant
with its own wallet presents with `xinchain vc present` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.signing

from xinchain.apps.identity import status, view
from xinchain.apps.identity.contract import NAME, did_of
from xinchain.apps.identity.credentials import issue, present
from xinchain.apps.identity.dataintegrity import SigningKey
from xinchain.apps.identity.multiformats import ED25519_PRIV, ED25519_PUB, multikey_encode
from xinchain.client.member import CallRefused
from xinchain.errors import NotFound, XinchainError
from xinchain.node.node import Node

MERCHANT_TYPE = "MerchantCredential"
REVOCATION_LIST = "revocation"
CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    {
        MERCHANT_TYPE: f"https://xinchain.example/ns#{MERCHANT_TYPE}",
        "shopName": "https://schema.org/name",
        "platform": "https://xinchain.example/ns#platform",
    },
]
call_wait_s = 60.0
# Times a revocation reads the list again when another change was committed meanwhile.
publish_attempts_max = 5
# How often a node tries again to register its org's DID.
org_did_retry_s = 5.0
_log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wallet_path(node: Node, identifier: str) -> Path:
    return node.home.path / "dids" / f"{identifier}.json"


def _read(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


def _write(path: Path, wallet: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(wallet, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _document(did: str, public: str) -> dict[str, Any]:
    method = f"{did}#key-1"
    return {
        "id": did,
        "verificationMethod": [
            {"id": method, "type": "Multikey", "controller": did, "publicKeyMultibase": public}
        ],
        "authentication": [method],
        "assertionMethod": [method],
        "capabilityInvocation": [method],
    }


async def _call(node: Node, org: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return await node.call(node.member(org), NAME, method, args, wait_s=call_wait_s)
    except CallRefused as exc:
        raise XinchainError(f"refused by the chain: {exc.reason}", field="args") from None


async def ensure_did(node: Node, org: str, identifier: str) -> dict[str, Any]:
    """The wallet of DID `identifier` (made, and registered with `org` as registrar, if new)."""
    path = _wallet_path(node, identifier)
    wallet = _read(path)
    did = did_of(node.genesis.chain_id, identifier)
    if wallet is None:
        key = nacl.signing.SigningKey.generate()
        method = f"{did}#key-1"
        wallet = {
            "did": did,
            "keys": {method: multikey_encode(ED25519_PRIV, bytes(key))},
            "current": method,
            "public": multikey_encode(ED25519_PUB, bytes(key.verify_key)),
            "next_index": 0,
        }
        _write(path, wallet)
    if view.did_record(node.chain, did) is None:
        try:
            await _call(
                node,
                org,
                "did_create",
                {"id": identifier, "document": _document(did, wallet["public"])},
            )
        except XinchainError:
            if view.did_record(node.chain, did) is None:  # not a registration that raced ours
                raise
    return wallet


def _key(wallet: dict[str, Any]) -> SigningKey:
    return SigningKey.from_multibase(wallet["keys"][wallet["current"]], wallet["current"])


async def onboard(node: Node, org: str, merchant: str, shop_name: str) -> dict[str, Any]:
    """Register the merchant's DID and issue it a MerchantCredential from `org`'s issuer DID,
    with an entry in the org's revocation list."""
    issuer_id = org
    issuer = await ensure_did(node, org, issuer_id)
    holder = await ensure_did(node, org, merchant)
    if view.status_list(node.chain, org, REVOCATION_LIST) is None:
        with contextlib.suppress(XinchainError):  # published meanwhile: it stands
            await _call(
                node,
                org,
                "status_publish",
                {
                    "list": REVOCATION_LIST,
                    "purpose": "revocation",
                    "encoded": status.encode(status.empty()),
                    "previous": 0,
                },
            )
    # The index is taken from the issuer's wallet as read now, after every await: two
    # onboardings never share one.
    issuer = _read(_wallet_path(node, issuer_id)) or issuer
    index = int(issuer.get("next_index", 0))
    issuer["next_index"] = index + 1
    _write(_wallet_path(node, issuer_id), issuer)
    credential = {
        "@context": CONTEXT,
        "type": ["VerifiableCredential", MERCHANT_TYPE],
        "issuer": issuer["did"],
        "validFrom": _now(),
        "credentialSubject": {"id": holder["did"], "shopName": shop_name, "platform": org},
        "credentialStatus": {
            "type": status.ENTRY_TYPE,
            "statusPurpose": "revocation",
            "statusListIndex": str(index),
            "statusListCredential": status.status_url(issuer["did"], REVOCATION_LIST),
        },
    }
    issued = issue(credential, _key(issuer), _now())
    return {"merchant": holder["did"], "index": index, "credential": issued}


def present_for(
    node: Node, credential: dict[str, Any], challenge: str, domain: str
) -> dict[str, Any]:
    """A presentation of `credential` by its subject, signed with the key this node keeps for
    the subject (the demo's custodial wallet)."""
    subject = credential.get("credentialSubject")
    holder = subject.get("id") if isinstance(subject, dict) else None
    prefix = f"did:xin:{node.genesis.chain_id}:"
    if not isinstance(holder, str) or not holder.startswith(prefix):
        raise XinchainError(
            "the credential's subject is no did:xin of this chain", field="credential"
        )
    wallet = _read(_wallet_path(node, holder[len(prefix) :]))
    if wallet is None:
        raise NotFound(f"this node keeps no wallet for {holder}", field="credential")
    return present(
        [credential], holder, _key(wallet), challenge=challenge, domain=domain, created=_now()
    )


async def revoke(node: Node, org: str, index: int, restore: bool = False) -> dict[str, Any]:
    """Set the bit on top of the list as committed, and publish it; a list changed meanwhile
    (another revocation) is read again, so no revocation undoes another."""
    for _ in range(publish_attempts_max):
        found = view.status_list(node.chain, org, REVOCATION_LIST)
        previous = view.status_height(node.chain, org, REVOCATION_LIST)
        bits = status.decode(found[1]) if found else status.empty()
        status.set_bit(bits, index, not restore)
        args = {
            "list": REVOCATION_LIST,
            "purpose": "revocation",
            "encoded": status.encode(bits),
            "previous": previous,
        }
        try:
            done = await _call(node, org, "status_publish", args)
        except XinchainError as exc:
            if "read it again" not in exc.reason:
                raise
            continue
        return {"org": org, "index": index, "revoked": not restore, "height": done["height"]}
    raise XinchainError("the list kept changing; try again", field="index")


async def register_org_did(node: Node) -> None:
    """A node task: the node's org gets its DID (`did:xin:<chain>:<org>`) once the node has
    peers, if its home holds the org's key and the chain has none yet."""
    org = node.private.org
    if org is None or not node.home.org_key_path(org).exists():
        return
    did = did_of(node.genesis.chain_id, org)
    while view.did_record(node.chain, did) is None:
        ready = node.driver.transport is None or node.driver.connected_peers()
        if ready:
            try:
                await ensure_did(node, org, org)
            except XinchainError as exc:  # another node of the org registered it meanwhile
                if view.did_record(node.chain, did) is None:
                    _log.warning("the DID of org %s is not registered yet: %s", org, exc)
        await asyncio.sleep(org_did_retry_s)
