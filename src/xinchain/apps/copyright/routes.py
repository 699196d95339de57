"""REST routes of the copyright application.

Images are sent as the raw request body (any Content-Type) to the routes under
`IMAGE_ROUTES`, which accept bodies up to `perceptual.image_bytes_max`; images are hashed and
dropped, never stored.

The gateway routes (register, evidence) sign with the node's own org key, for the console's
users: a platform node registers its sellers' photos, as a Fabric gateway submits for its
org's clients. They are open only to a caller presenting the node's gateway token
(``Authorization: Bearer <token>``, the token is in HOME/nodes/<name>/gateway.token and on the
`console:` line `xinchain up` prints) and only on a node whose org key is in the home.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from enum import Enum
from importlib.resources import files
from multiprocessing import get_context
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from xinchain.api.checks import (
    HEX64_PATTERN,
    IDENTIFIER_PATTERN,
    binary_answer,
    described,
    hex64,
    identifier,
)
from xinchain.apps.copyright.contract import NAME
from xinchain.apps.copyright.evidence import build_package
from xinchain.apps.copyright.features import LocalFeatures, Verification
from xinchain.apps.copyright.matching import copy_evidence
from xinchain.apps.copyright.perceptual import (
    DIHEDRAL,
    ImageInvalid,
    PdqHashes,
    WorkHashes,
    hash_image,
    match_distance_max,
    parse_pdq,
    quality_min,
    query_pdq,
    query_points,
    work_hashes,
)
from xinchain.apps.copyright.view import (
    CopyrightView,
    Match,
    evidence_of_work,
    evidence_receipt,
    org_evidence,
    org_works,
    stored_evidence,
    work,
    work_receipt,
)
from xinchain.client.member import CallRefused
from xinchain.errors import Busy, NotFound, Unauthorized, XinchainError
from xinchain.node.node import Node

_T = TypeVar("_T")
IMAGE_ROUTES = "/v1/copyright/images/"
COPYRIGHT_HTML = (files("xinchain.apps.copyright") / "copyright.html").read_text(encoding="utf-8")
# Images hashed at once per node (PDQ holds Python's lock, so hashing runs in worker
# processes, one per core); requests beyond `hashing_queued_max` waiting get 429.
hashing_queued_max = 16
# Longest a gateway call waits for its transaction to commit.
gateway_wait_s = 30.0
# Blocks a gateway transaction stays valid for.
gateway_validity_blocks = 100
# Bounds of the query parameters. Searches: half the PDQ bits is as far as "similar" can mean
# anything, and a page of matches. Evidence: a title, a URL, a file name and a note as long as
# real ones get (the longest URLs browsers keep are about 2 KB).
query_distance_max = 128
matches_listed_max = 200
title_chars_max = 200
url_chars_max = 2048
file_name_chars_max = 100
note_chars_max = 500


class HashingBusy(Busy):
    code = "busy"


class HashingPool:
    """Worker processes for PDQ hashing, started on first use."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._waiting = 0

    async def run(self, function: Callable[[bytes], _T], data: bytes) -> _T:
        if self._waiting >= hashing_queued_max:
            raise HashingBusy(
                f"{self._waiting} images are being hashed on this node; retry shortly",
                field="image",
            )
        if self._pool is None:
            workers = max(1, os.cpu_count() or 1)
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, function, data)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


async def _nothing() -> dict[int, Verification]:
    return {}


def _match_view(found: Match) -> dict[str, Any]:
    return {
        "work": found.work,
        "distance": found.distance,
        "orientation": found.orientation,
        "found_by": list(found.found_by),
        "inliers": found.inliers,
        "points": found.points,
    }


def gateway_org(node: Node) -> str | None:
    """The org the node's gateway signs for: its validator's org, when that org's key is in
    the home; None otherwise (an observer, or a home without the org's key)."""
    if node.validator_index is None:
        return None
    org = node.genesis.validators[node.validator_index].org
    return org if node.home.org_key_path(org).exists() else None


def _hashes_view(hashes: WorkHashes) -> dict[str, Any]:
    return {
        "sha256": hashes.sha256.hex(),
        "pdq": hashes.pdq.pdq_hex,
        "quality": hashes.pdq.quality,
        "low_quality": hashes.pdq.quality < quality_min,
        "crops": [crop.hex() for crop in hashes.crops],
        "dihedral": {name: h.hex() for name, h in zip(DIHEDRAL, hashes.pdq.hashes, strict=True)},
        "features": hashes.features.encode() if len(hashes.features) else None,
    }


WORK = described("the work's SHA-256, as registered", HEX64_PATTERN)
EVIDENCE = described("the evidence id", HEX64_PATTERN)
TX_ID = described("the transaction id", HEX64_PATTERN)
ORG = described("the org id", IDENTIFIER_PATTERN)


def copyright_routes(api: FastAPI, node: Node) -> None:
    view = CopyrightView(node.chain)
    api.router.on_shutdown.append(view.close)
    hashing = HashingPool()
    api.router.on_shutdown.append(hashing.close)
    tags: list[str | Enum] = ["copyright"]

    def matches(
        queries: list[bytes],
        distance_max: int,
        limit: int,
        feature_queries: Sequence[LocalFeatures] = (),
        timings: dict[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        return [
            _match_view(found)
            for found in view.search(queries, distance_max, limit, feature_queries, timings)
        ]

    def exact(sha256: str) -> dict[str, Any] | None:
        stored = node.chain.read_state(NAME, f"work/{sha256}")
        return None if stored is None else dict(stored["record"])

    @api.post(f"{IMAGE_ROUTES}hash", tags=tags)
    async def hash_route(request: Request) -> dict[str, Any]:
        """The hashes a registration of this image carries (for clients without PDQ)."""
        data = await request.body()
        return _hashes_view(await hashing.run(work_hashes, data))

    @api.post(f"{IMAGE_ROUTES}search", tags=tags)
    async def search_image(
        request: Request,
        response: Response,
        distance_max: int = Query(match_distance_max, ge=0, le=query_distance_max),
        limit: int = Query(20, ge=1, le=matches_listed_max),
        by: str = Query(
            "all",
            pattern="^(all|hash)$",
            description="`all`: PDQ hashes and local features; `hash`: PDQ hashes alone",
        ),
    ) -> dict[str, Any]:
        """Registered works the image copies: within `distance_max` of its PDQ hashes (or of
        its mirror images' and rotations'), or whose registered points its local features find
        in place (a crop, banner, screenshot or tilt); `found_by` says which, `inliers` of
        `points` how many points were found. Found both ways first, then nearest. `exact` is
        the work with the same SHA-256, if any. `index` says how many registered works the
        node's index holds (a node's first search over a large registry starts it loading).
        The Server-Timing header gives the node's time for each step: `pdq` and `points`
        until the image's hashes and its local features were ready (two worker processes
        compute them at once), `hash` the lookup of the hashes, `candidates` and `verify` the
        search by local features (beside the lookup)."""
        data = await request.body()
        began = time.perf_counter()
        timings: dict[str, float] = {}

        async def by_hash() -> tuple[PdqHashes, dict[int, int]]:
            hashes = await hashing.run(hash_image if by == "hash" else query_pdq, data)
            timings["pdq"] = time.perf_counter() - began
            queries = list(hashes.hashes)
            return hashes, await asyncio.to_thread(
                view.by_hash, queries, distance_max, limit, timings
            )

        async def by_features() -> dict[int, Verification]:
            described = await hashing.run(query_points, data)
            timings["points"] = time.perf_counter() - began
            return await asyncio.to_thread(view.by_features, described, timings)

        hash_side = asyncio.ensure_future(by_hash())
        feature_side = asyncio.ensure_future(by_features() if by == "all" else _nothing())
        try:
            (hashes, found_by_hash), found_by_features = await asyncio.gather(
                hash_side, feature_side
            )
        finally:
            for side in (hash_side, feature_side):
                side.cancel()  # when the other failed (an image refused): not wanted
        found = [
            _match_view(match)
            for match in view.matches(list(hashes.hashes), found_by_hash, found_by_features, limit)
        ]
        sha256 = hashlib.sha256(data).hexdigest()
        order = ("pdq", "hash", "points", "candidates", "verify")
        response.headers["Server-Timing"] = ", ".join(
            f"{step};dur={timings[step] * 1000:.1f}" for step in order if step in timings
        )
        return {
            "query": {
                "sha256": sha256,
                "pdq": hashes.pdq_hex,
                "quality": hashes.quality,
                "low_quality": hashes.quality < quality_min,
            },
            "exact": exact(sha256),
            "distance_max": distance_max,
            "index": view.status(),
            "matches": found,
        }

    @api.get("/v1/copyright/index", tags=tags)
    def index_status() -> dict[str, Any]:
        """How far this node's search index is: works registered and indexed, their stored
        hashes and points, and whether it follows the chain (from the node's first search)."""
        return view.status()

    @api.get("/v1/copyright/search", tags=tags)
    def search_hash(
        pdq: str = Query(
            description="the PDQ hash to search by", json_schema_extra={"pattern": HEX64_PATTERN}
        ),
        distance_max: int = Query(match_distance_max, ge=0, le=query_distance_max),
        limit: int = Query(20, ge=1, le=matches_listed_max),
    ) -> dict[str, Any]:
        """Registered works within `distance_max` of a PDQ hash the client computed."""
        query = parse_pdq(pdq, "pdq")
        return {"distance_max": distance_max, "matches": matches([query], distance_max, limit)}

    @api.get("/v1/copyright/works/{sha256}", tags=tags)
    def work_route(sha256: str = WORK) -> dict[str, Any]:
        hex64(sha256, "sha256")
        return {"work": work(node.chain, sha256), "evidence": evidence_of_work(node.chain, sha256)}

    @api.get("/v1/copyright/works/{sha256}/receipt", tags=tags)
    def work_receipt_route(sha256: str = WORK) -> dict[str, Any]:
        return work_receipt(node.chain, node.tx_proof, hex64(sha256, "sha256"))

    @api.get("/v1/copyright/evidence/{evidence_id}", tags=tags)
    def evidence_route(evidence_id: str = EVIDENCE) -> dict[str, Any]:
        stored = stored_evidence(node.chain, hex64(evidence_id, "evidence"))
        return {"id": evidence_id, **stored["record"]}

    @api.get("/v1/copyright/transactions/{tx_id}/evidence", tags=tags)
    def evidence_of_tx(tx_id: str = TX_ID) -> dict[str, Any]:
        """The id of the evidence a committed transaction recorded."""
        return {"id": _evidence_id_of(node, hex64(tx_id, "tx_id"))}

    @api.get("/v1/copyright/evidence/{evidence_id}/receipt", tags=tags)
    def evidence_receipt_route(evidence_id: str = EVIDENCE) -> dict[str, Any]:
        return evidence_receipt(node.chain, node.tx_proof, hex64(evidence_id, "evidence"))

    @api.get(
        "/v1/copyright/evidence/{evidence_id}/package",
        tags=tags,
        response_class=Response,
        responses=binary_answer("the evidence package", "application/zip"),
    )
    def evidence_package(evidence_id: str = EVIDENCE) -> Response:
        """The evidence package (zip) with both receipts and the report; the captured files
        stay with whoever captured them (`xinchain copyright export` adds them)."""
        record = stored_evidence(node.chain, hex64(evidence_id, "evidence"))["record"]
        package = build_package(
            work_receipt(node.chain, node.tx_proof, record["work"]),
            evidence_receipt(node.chain, node.tx_proof, evidence_id),
        )
        disposition = f'attachment; filename="evidence-{evidence_id[:16]}.zip"'
        return Response(
            package, media_type="application/zip", headers={"Content-Disposition": disposition}
        )

    @api.get("/v1/copyright/orgs/{org}/works", tags=tags)
    def org_works_route(org: str = ORG, seller: str | None = None) -> dict[str, Any]:
        identifier(org, "org")
        return {"org": org, "seller": seller, "works": org_works(node.chain, org, seller)}

    @api.get("/v1/copyright/orgs/{org}/evidence", tags=tags)
    def org_evidence_route(org: str = ORG) -> dict[str, Any]:
        return {"org": org, "evidence": org_evidence(node.chain, identifier(org, "org"))}

    @api.get("/v1/copyright/gateway", tags=tags)
    def gateway_info() -> dict[str, Any]:
        """Which org this node's gateway signs for (null: no gateway on this node)."""
        return {"org": gateway_org(node)}

    def authorize(request: Request) -> str:
        org = gateway_org(node)
        if org is None:
            raise NotFound("this node has no gateway: its org's key is not here", field="node")
        presented = request.headers.get("authorization", "")
        expected = f"Bearer {node.home.gateway_token(node.name)}"
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise Unauthorized(
                "expected the header 'Authorization: Bearer <gateway token>'",
                field="authorization",
            )
        return org

    async def submit_and_wait(org: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            done = await node.call(
                node.member(org),
                NAME,
                method,
                args,
                wait_s=gateway_wait_s,
                validity=gateway_validity_blocks,
            )
        except CallRefused as exc:
            raise XinchainError(f"refused by the chain: {exc.reason}", field="args") from None
        return {"tx_id": done["tx_id"], "height": done["height"]}

    @api.post(f"{IMAGE_ROUTES}register", tags=tags)
    async def gateway_register(
        request: Request,
        title: str = Query(min_length=1, max_length=title_chars_max),
        seller: str = "",
    ) -> dict[str, Any]:
        """Register the image (the body) as a work of this node's org, or of `seller` when
        the org is a platform vouching for it; answers the work, its receipt and the works
        already registered that look like it."""
        org = authorize(request)
        data = await request.body()
        hashes = await hashing.run(work_hashes, data)
        similar = await asyncio.to_thread(matches, list(hashes.pdq.hashes), match_distance_max, 5)
        args = {"works": [hashes.work_args(title, seller)]}
        committed = await submit_and_wait(org, "register", args)
        sha256 = hashes.sha256.hex()
        return {
            **committed,
            "work": work(node.chain, sha256),
            "low_quality": hashes.pdq.quality < quality_min,
            "similar": similar,
            "receipt": work_receipt(node.chain, node.tx_proof, sha256),
        }

    @api.post(f"{IMAGE_ROUTES}evidence", tags=tags)
    async def gateway_evidence(
        request: Request,
        work_sha256: str = Query(alias="work"),
        url: str = Query(min_length=1, max_length=url_chars_max),
        name: str = Query("copy.jpg", min_length=1, max_length=file_name_chars_max),
        captured_ms: int | None = Query(None, ge=0),
        note: str = Query("", max_length=note_chars_max),
    ) -> dict[str, Any]:
        """Record the captured image (the body) as a suspected copy of work `work` found at
        `url`; the copy's PDQ hash in its best-matching orientation goes on chain with it, and
        how many of the work's registered points it shows in place (`inliers`)."""
        org = authorize(request)
        hex64(work_sha256, "work")
        data = await request.body()
        found = await hashing.run(
            functools.partial(copy_evidence, work(node.chain, work_sha256)), data
        )
        if not found["copy_pdq"]:
            raise ImageInvalid(
                "the captured image has no detail to hash (a flat or blank picture)",
                field="image",
            )
        args = {
            "work": work_sha256,
            "url": url,
            "files": [{"name": name, "sha256": hashlib.sha256(data).hexdigest()}],
            "captured_ms": captured_ms if captured_ms is not None else int(time.time() * 1000),
            **found,
            "note": note,
        }
        committed = await submit_and_wait(org, "evidence", args)
        evidence_id = _evidence_id_of(node, committed["tx_id"])
        return {
            **committed,
            "id": evidence_id,
            "evidence": stored_evidence(node.chain, evidence_id)["record"],
            "receipt": evidence_receipt(node.chain, node.tx_proof, evidence_id),
        }

    @api.get("/copyright", response_class=HTMLResponse, include_in_schema=False)
    def copyright_console() -> str:
        return COPYRIGHT_HTML


def _evidence_id_of(node: Node, tx_id: str) -> str:
    evidence_id = node.chain.read_state(NAME, f"tx/{tx_id}")
    if evidence_id is None:
        raise NotFound(f"transaction {tx_id} recorded no evidence", field="tx_id")
    return str(evidence_id)
