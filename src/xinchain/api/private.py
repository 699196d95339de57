"""REST routes of private data and the regulator's audit (docs/private-data.md).

A route that writes, opens or audits acts for the node's own org and asks for the node's
gateway token (`Authorization: Bearer <token>`, HOME/nodes/<name>/gateway.token); a node of an
org that does not read a record answers 403 in JSON, a purged record 410. What every node
knows (collections, a record's hash and version) needs no token.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Body, FastAPI, Query, Request

from xinchain.api.checks import IDENTIFIER_PATTERN, described, identifier
from xinchain.contracts.private import KEY_PATTERN
from xinchain.errors import Forbidden, Unauthorized, XinchainError
from xinchain.node.node import Node

TAGS: list[str | Any] = ["private data"]
KEY = described("the record's key", KEY_PATTERN)
COLLECTION = described("a collection's name", IDENTIFIER_PATTERN)


def gateway_org(node: Node, request: Request) -> str:
    """The org a node's gateway acts for, once the request presents the node's gateway token
    (`Authorization: Bearer <token>`); 403 otherwise. Every gateway route of the core and the
    apps asks it."""
    org = node.private.org
    if org is None or not node.home.org_key_path(org).exists():
        raise Forbidden(
            f"node {node.name!r} holds no key of its org, so it acts for no org",
            field="node",
        )
    presented = request.headers.get("authorization", "")
    expected = f"Bearer {node.home.gateway_token(node.name)}"
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized(
            "expected the header 'Authorization: Bearer <gateway token>'",
            field="authorization",
        )
    return org


def private_routes(api: FastAPI, node: Node) -> None:
    private = node.private

    def authorize(request: Request) -> str:
        return gateway_org(node, request)

    @api.get("/v1/private/collections", tags=TAGS)
    def collections() -> dict[str, Any]:
        """The chain's collections: members, readers and their key ids, block_to_live,
        writers."""
        return {"org": private.org, "collections": private.collections()}

    @api.put("/v1/private/{collection}/records/{key:path}", tags=TAGS)
    async def put_record(
        request: Request,
        collection: str = COLLECTION,
        key: str = KEY,
        value: dict[str, Any] = Body(embed=True),
        contract: str = Body("", embed=True, max_length=64),
    ) -> dict[str, Any]:
        """Seal `value` to the collection's readers as this node's org and commit its hash;
        `contract` names the app the record is written for (optional)."""
        authorize(request)
        identifier(collection, "collection")
        if contract:
            identifier(contract, "contract")
        return await private.write(collection, key, value, contract)

    @api.get("/v1/private/{collection}/records/{key:path}", tags=TAGS)
    def get_record(
        request: Request,
        collection: str = COLLECTION,
        key: str = KEY,
        version: int | None = Query(None, ge=1),
    ) -> dict[str, Any]:
        """The record, opened for this node's org (403 if the org does not read it)."""
        authorize(request)
        return private.read(identifier(collection, "collection"), key, version)

    @api.get("/v1/private/{collection}/hashes/{key:path}", tags=TAGS)
    def get_hash(
        collection: str = COLLECTION,
        key: str = KEY,
        version: int | None = Query(None, ge=1),
    ) -> dict[str, Any]:
        """What every node knows of the record: its commitment, envelope hash, writer,
        readers, purge height and the readers that disputed it; never the value."""
        meta = private.meta(identifier(collection, "collection"), key, version)
        found = {name: meta[name] for name in sorted(meta) if name != "kids"}
        return {**found, "disputes": private.disputes(meta["cipher_hash"])}

    @api.get("/v1/private/{collection}/receipts/{key:path}", tags=TAGS)
    def get_receipt(
        request: Request,
        collection: str = COLLECTION,
        key: str = KEY,
        version: int | None = Query(None, ge=1),
    ) -> dict[str, Any]:
        """A receipt that proves the record offline: it reveals the record (and its salt) to
        whoever holds it, and nothing else of the block."""
        authorize(request)
        return private.receipt(identifier(collection, "collection"), key, version)

    @api.get("/v1/audit/search", tags=TAGS)
    async def audit_search(
        request: Request,
        org: str | None = Query(None, description="the writing org"),
        contract: str | None = Query(None, description="the app a record was written for"),
        collection: str | None = Query(None),
        from_ms: int | None = Query(None, ge=0),
        to_ms: int | None = Query(None, ge=0),
        counterparty: str | None = Query(None, max_length=200),
    ) -> dict[str, Any]:
        """The regulator's search of every record sealed to it; the read is logged on chain
        (an audit transaction) before the answer, which names it."""
        authorize(request)
        for name, value in (("org", org), ("contract", contract), ("collection", collection)):
            if value is not None:
                identifier(value, name)
        if from_ms is not None and to_ms is not None and to_ms < from_ms:
            raise XinchainError("to_ms is before from_ms", field="to_ms")
        query = {
            "org": org,
            "contract": contract,
            "collection": collection,
            "from_ms": from_ms,
            "to_ms": to_ms,
            "counterparty": counterparty,
        }
        return await private.audit(query)

    @api.get("/v1/audit/log", tags=TAGS)
    def audit_log() -> dict[str, Any]:
        """Every audit read on chain: which regulator searched for what, when, and which
        records it was shown (their hashes)."""
        return {"audits": private.audit_log()}
