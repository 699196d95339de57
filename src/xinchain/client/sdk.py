"""Python SDK: sign transactions, submit them, wait for commits, fetch proofs."""

from __future__ import annotations

import time
from typing import Any

import httpx

from xinchain.client.member import (
    CallRefused,
    Member,
    outcome,
    sign_transaction,
    validity_blocks,
)
from xinchain.crypto import PrivateKey
from xinchain.errors import XinchainError
from xinchain.genesis import Genesis
from xinchain.receipt import TxProof
from xinchain.types import Transaction

# Retries of a submission refused with 429 (mempool full), with the server's Retry-After.
submit_retries_max = 60


class ApiError(XinchainError):
    """The node answered with an error; `status` is the HTTP status."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(str(error.get("reason", body)), field=error.get("field"))
        self.status = status
        self.code = str(error.get("code", "api_error"))


class Client:
    def __init__(self, api_url: str, timeout_s: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"reason": response.text[:200]}}
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a route of the node's API; its JSON answer, or ApiError."""
        return self._json(self._http.get(path, params=params))

    def post_bytes(self, path: str, data: bytes, params: dict[str, Any] | None = None) -> Any:
        """POST raw bytes (an image) to a route of the node's API; its JSON answer."""
        response = self._http.post(
            path,
            content=data,
            params=params,
            headers={"Content-Type": "application/octet-stream"},
        )
        return self._json(response)

    def status(self) -> dict[str, Any]:
        return dict(self._json(self._http.get("/v1/status")))

    def genesis(self) -> Genesis:
        return Genesis.from_value(self._json(self._http.get("/v1/genesis")))

    def submit(self, tx: Transaction) -> str:
        payload = {"tx": tx.encode().hex()}
        for _ in range(submit_retries_max):
            response = self._http.post("/v1/transactions", json=payload)
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            return str(self._json(response)["tx_id"])
        raise ApiError(429, {"error": {"reason": "mempool stayed full", "code": "mempool_full"}})

    def transaction(self, tx_id: str, wait_ms: int = 0) -> dict[str, Any]:
        response = self._http.get(
            f"/v1/transactions/{tx_id}",
            params={"wait_ms": wait_ms},
            timeout=wait_ms / 1000 + 30,
        )
        return dict(self._json(response))

    def wait_committed(self, tx_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            answer = self.transaction(tx_id, wait_ms=max(0, min(remaining_ms, 30_000)))
            if answer["status"] == "committed":
                return answer
            if remaining_ms <= 0:
                raise TimeoutError(f"transaction {tx_id} not committed after {timeout_s} s")

    def proof(self, tx_id: str) -> TxProof:
        return TxProof.from_value(self._json(self._http.get(f"/v1/transactions/{tx_id}/proof")))

    def call(
        self,
        genesis: Genesis,
        key: PrivateKey,
        *,
        sender: str,
        contract: str,
        method: str,
        args: dict[str, Any],
    ) -> dict[str, Any]:
        """Sign, submit and wait for one call; its result, or ApiError if the chain refused."""
        return self.member_call(Member(genesis, sender, key), contract, method, args)

    def submit_call(self, member: Member, contract: str, method: str, args: dict[str, Any]) -> str:
        """Sign and submit one call; its transaction id (wait with `wait_committed`)."""
        tip = int(self.status()["height"])
        return self.submit(member.transaction(contract, method, args, tip=tip))

    def member_call(
        self, member: Member, contract: str, method: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Sign, submit and wait for one call; its result, or ApiError if the chain refused."""
        return self.committed(self.submit_call(member, contract, method, args))

    def committed(self, tx_id: str) -> dict[str, Any]:
        """Wait for a submitted call; its result, or ApiError if the chain refused it."""
        answer = self.wait_committed(tx_id)
        result = answer["result"]
        try:
            return outcome(
                answer["tx_id"], answer["height"], result["ok"], result["error"], result["data"]
            )
        except CallRefused as exc:
            raise ApiError(400, {"error": {"code": exc.code, "reason": exc.reason}}) from None

    def product(self, gtin: str) -> dict[str, Any]:
        return dict(self._json(self._http.get(f"/v1/provenance/products/{gtin}")))

    def item(self, gtin: str, serial: str) -> dict[str, Any]:
        return dict(self._json(self._http.get(f"/v1/provenance/items/{gtin}/{serial}")))

    def promo_rank(self, promo: str, order_no: str) -> dict[str, Any]:
        return dict(self._json(self._http.get(f"/v1/promos/{promo}/rank/{order_no}")))

    def notary_records(self, document_hash: str) -> list[dict[str, Any]]:
        return list(self._json(self._http.get(f"/v1/notary/{document_hash}"))["records"])

    def notary_receipt(self, document_hash: str, record: int = 0) -> dict[str, Any]:
        response = self._http.get(f"/v1/notary/{document_hash}/receipt", params={"record": record})
        return dict(self._json(response))


__all__ = [
    "ApiError",
    "CallRefused",
    "Client",
    "Member",
    "TxProof",
    "sign_transaction",
    "validity_blocks",
]
