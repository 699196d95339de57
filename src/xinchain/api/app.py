"""REST API of one node (OpenAPI at /openapi.json, interactive docs at /docs).

Errors are JSON: ``{"error": {"code": ..., "field": ..., "reason": ...}}`` with a 4xx status
that says whose fault it was. Input is checked at this boundary: a path parameter that is not
the expected shape is refused here, before it reaches the node.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xinchain.api.checks import HEX64_PATTERN, described, hex64
from xinchain.api.private import private_routes
from xinchain.api.stream import stream_routes
from xinchain.appspec import UploadLimit
from xinchain.errors import (
    Busy,
    Gone,
    InvalidTransaction,
    MempoolFull,
    NotFound,
    ReplayedTransaction,
    TooLarge,
    Unauthorized,
    XinchainError,
)
from xinchain.node.node import Node
from xinchain.types import tx_bytes_max

# A request body larger than this is refused before it is read: a transaction is at most
# `tx_bytes_max` bytes, twice that as hex, plus JSON framing.
request_bytes_max = 2 * tx_bytes_max + 4096
# Longest a client may hold a request open waiting for a commit.
wait_ms_max = 60_000
# Seconds a client should back off when the mempool is full.
retry_after_s = 1
# Blocks one listing request may return.
blocks_listed_max = 100
CONSOLE_HTML = (files("xinchain.web") / "console.html").read_text(encoding="utf-8")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_HEIGHT_MAX = 2**63 - 1


class SubmitRequest(BaseModel):
    tx: str = Field(
        description="the signed transaction, canonical CBOR, as lowercase hex",
        json_schema_extra={"pattern": "^(?:[0-9a-f]{2})+$"},
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="what kind of refusal, e.g. invalid_transaction, not_found")
    reason: str = Field(description="what was wrong and what was expected, for a person")
    field: str | None = Field(None, description="the request field at fault, when there is one")


class ErrorBody(BaseModel):
    error: ErrorDetail


def _refusal(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Every operation may answer these (the routes of an app included): a generated client knows
# their body. 405 (with Allow) is the answer to a method no route has.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _refusal("refused: malformed or invalid input (the body names the field)"),
    403: _refusal("refused: the sender's roles or the gateway token do not allow it"),
    404: _refusal("no such record"),
    409: _refusal("refused: a transaction already committed (a replay)"),
    410: _refusal("gone: the record was purged on purpose (its hash stays on chain)"),
    413: _refusal("refused: the request body is too large"),
    422: _refusal("refused: a parameter or body field of the wrong type or range"),
    429: {
        **_refusal("busy: the mempool is full; retry after Retry-After seconds"),
        "headers": {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        },
    },
}


def error_body(code: str, reason: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "reason": reason}
    if field is not None:
        error["field"] = field
    return {"error": error}


def _field_name(location: tuple[Any, ...]) -> str:
    """Pydantic's error location as a field name: `query.wait_ms`, `tx`, or `body`."""
    if location[:1] == ("body",):
        named = [str(part) for part in location[1:] if not isinstance(part, int)]
        return ".".join(named) or "body"
    return ".".join(str(part) for part in location)


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, bytes_max: int) -> None:
        super().__init__(413, f"request body is larger than {bytes_max} bytes, the most accepted")


class BodyLimit:
    """Refuses a request body over `bytes_max` whether or not it declares a Content-Length:
    the declared length is checked first, then the bytes actually received are counted.
    Requests under an app's upload prefix (`uploads`) may be as large as that app allows."""

    def __init__(self, app: ASGIApp, bytes_max: int, uploads: tuple[UploadLimit, ...] = ()) -> None:
        self.app = app
        self.bytes_max = bytes_max
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        for upload in self.uploads:
            if path.startswith(upload.prefix):
                await BodyLimit(self.app, upload.bytes_max)(scope, receive, send)
                return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.bytes_max):
            status = 413 if declared.isdigit() else 400
            reason = (
                f"request body of {declared.decode(errors='replace')} bytes; at most "
                f"{self.bytes_max} are accepted"
                if status == 413
                else "Content-Length is not a number"
            )
            response = JSONResponse(error_body("request_too_large", reason), status)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.bytes_max:
                    raise _BodyTooLarge(self.bytes_max)
            return message

        await self.app(scope, counting_receive, send)


# How each kind of refusal reaches a client; anything else refused is a 400. The first match in
# the error's class order (most specific first) decides.
HTTP_STATUS: dict[type[XinchainError], int] = {
    NotFound: 404,
    Unauthorized: 403,
    ReplayedTransaction: 409,
    Gone: 410,
    TooLarge: 413,
    Busy: 429,
}


def http_status(exc: XinchainError) -> int:
    """The HTTP status of a refusal, by the API's table (the domain knows no HTTP)."""
    for kind in type(exc).__mro__:
        status = HTTP_STATUS.get(kind)
        if status is not None:
            return status
    return 400


def create_api(node: Node) -> FastAPI:
    api = FastAPI(
        title="xinchain node",
        version="1",
        description="Submit transactions, read blocks and their proofs; each app adds its routes.",
        responses=ERROR_RESPONSES,
    )

    @api.exception_handler(XinchainError)
    async def on_xinchain_error(request: Request, exc: XinchainError) -> JSONResponse:
        headers = {"Retry-After": str(retry_after_s)} if isinstance(exc, MempoolFull) else None
        return JSONResponse(
            error_body(exc.code, exc.reason, exc.field), http_status(exc), headers=headers
        )

    @api.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        location = _field_name(tuple(first.get("loc", ())))
        return JSONResponse(
            error_body("invalid_request", str(first.get("msg", "invalid request")), location),
            422,
        )

    @api.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "request_too_large" if exc.status_code == 413 else "http_error"
        # The exception's own headers go with it: a 405's Allow, a 401's WWW-Authenticate.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matches; a resource
            # served by two routes (GET and PUT of a private record) has both.
            allowed = _allowed_methods(api, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)

    api.add_middleware(
        BodyLimit,
        bytes_max=request_bytes_max,
        uploads=tuple(upload for spec in node.apps for upload in spec.uploads),
    )

    @api.get("/v1/status")
    def status() -> dict[str, Any]:
        tip = node.app.tip()
        return {
            "chain_id": node.genesis.chain_id,
            "suite": node.suite.name,
            "genesis_hash": node.app.genesis_hash,
            "node": node.name,
            "validator_index": node.validator_index,
            "height": tip.height,
            "block_hash": tip.block_hash,
            "state_hash": tip.state_hash,
            "time_ms": tip.time_ms,
            "mempool_txs": len(node.mempool),
            # This node's clock less the time of the last block it committed (a little above 0
            # normally; far off either way: a bad clock, also logged).
            "clock_offset_ms": node.driver.source.clock_offset_ms,
            # Connections on the API and P2P ports against their caps, with refusals,
            # evictions and read-deadline closures counted since start (null: no port served).
            "connections": node.connections.status() if node.connections else None,
            # Free space under the ledger; "low" once below the warning mark (the node stops
            # cleanly below the stop mark).
            "disk": node.disk_status(),
        }

    @api.get("/v1/genesis")
    def genesis() -> dict[str, Any]:
        return node.genesis.to_value()

    # Async: admission touches the mempool and the consensus driver's queue, which belong to
    # the event loop's thread (a plain `def` route would run in a worker thread).
    @api.post("/v1/transactions", status_code=202)
    async def submit(body: SubmitRequest) -> dict[str, Any]:
        if not _HEX.fullmatch(body.tx):
            raise InvalidTransaction("expected an even number of lowercase hex digits", field="tx")
        raw = bytes.fromhex(body.tx)
        tx_id, added = node.submit(raw)
        return {"tx_id": tx_id, "status": "pending", "new": added}

    @api.get("/v1/transactions/{tx_id}")
    async def transaction(
        tx_id: str = described("the transaction id", HEX64_PATTERN),
        wait_ms: int = Query(0, ge=0, le=wait_ms_max),
    ) -> dict[str, Any]:
        hex64(tx_id, "tx_id")
        status = await node.wait_committed(tx_id, wait_ms / 1000)
        answer: dict[str, Any] = {"tx_id": tx_id, "status": status.status}
        if status.height is not None and status.index is not None:
            answer["height"] = status.height
            answer["index"] = status.index
            answer["result"] = node.app.results(status.height)[status.index].to_value()
        return answer

    @api.get("/v1/transactions/{tx_id}/proof")
    def transaction_proof(
        tx_id: str = described("the transaction id", HEX64_PATTERN),
    ) -> dict[str, Any]:
        return node.tx_proof(hex64(tx_id, "tx_id")).to_value()

    @api.get("/", include_in_schema=False)
    def console() -> HTMLResponse:
        return HTMLResponse(CONSOLE_HTML)

    @api.get("/v1/blocks")
    def latest_blocks(limit: int = Query(20, ge=1, le=blocks_listed_max)) -> dict[str, Any]:
        tip = node.app.tip().height
        listed: list[dict[str, Any]] = []
        for height in range(tip, max(0, tip - limit), -1):
            found, block_hash, _ = node.block_with_hash(height)
            listed.append({"hash": block_hash, "header": found.header.to_value()})
        return {"height": tip, "blocks": listed}

    @api.get("/v1/blocks/{height}")
    def block(
        height: int = described("a block height", minimum=1, maximum=_HEIGHT_MAX),
    ) -> dict[str, Any]:
        if not 1 <= height <= _HEIGHT_MAX:
            raise XinchainError(f"expected a height from 1 to {_HEIGHT_MAX}", field="height")
        found, block_hash, certificate = node.block_with_hash(height)
        return {
            "hash": block_hash,
            "header": found.header.to_value(),
            "tx_ids": [node.app.tx_id_of_raw(raw) for raw in found.txs],
            "certificate": None if certificate is None else certificate.to_value(),
        }

    private_routes(api, node)
    for spec in node.apps:
        if spec.routes is not None:
            spec.routes(api, node)
    stream_routes(api, node)
    _errors_are_json(api)
    return api


def _allowed_methods(api: FastAPI, path: str) -> list[str]:
    """Every method some route serves at `path`."""
    methods: set[str] = set()
    for route in api.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.fullmatch(path):
            methods |= route.methods
    return sorted(methods)


def _errors_are_json(api: FastAPI) -> None:
    """A route that answers HTML (a page) or a file still refuses in JSON: its error responses
    are described as application/json, whatever FastAPI derived from the route's class."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status.startswith("4") and "application/json" not in content:
                        body: dict[str, Any] = next(iter(content.values()), {})
                        response["content"] = {"application/json": body}
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
