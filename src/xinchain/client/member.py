"""A member org's signing identity, and the one way a call is signed and its outcome read.

Every transaction this project sends is made here: by the CLI and the SDK (client/sdk.py,
over HTTP), by a node for its own org (the copyright gateway, provenance's scan flags; see
`Node.call`), by the consoles through the gateway. Waiting differs only in how (an HTTP long
poll or the node's commit event); the signing, the validity window and the reading of the
result are these functions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from xinchain.crypto import PrivateKey, Suite
from xinchain.errors import XinchainError
from xinchain.genesis import Genesis
from xinchain.types import Transaction, TransactionBody

# Blocks ahead of the tip a call's transaction stays valid: long enough to survive a busy
# mempool, short enough that a lost transaction is known to be dead soon.
validity_blocks = 1_000


class CallRefused(XinchainError):
    """The chain executed the call and refused it (the contract's reason)."""

    code = "refused"


def sign_transaction(
    suite: Suite,
    key: PrivateKey,
    *,
    chain_id: str,
    sender: str,
    contract: str,
    method: str,
    args: dict[str, Any],
    valid_until: int,
    nonce: int | None = None,
) -> Transaction:
    body = TransactionBody(
        chain_id=chain_id,
        sender=sender,
        public_key=key.public_bytes(),
        contract=contract,
        method=method,
        args=args,
        nonce=secrets.randbits(63) if nonce is None else nonce,
        valid_until=valid_until,
    )
    return Transaction(body=body, signature=key.sign(body.signing_message()))


@dataclass(frozen=True)
class Member:
    """Org `org` of the chain `genesis` describes, signing with `key`."""

    genesis: Genesis
    org: str
    key: PrivateKey

    def transaction(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        tip: int,
        validity: int = validity_blocks,
    ) -> Transaction:
        """The signed call, valid for `validity` blocks past the chain's tip height `tip`."""
        return sign_transaction(
            self.genesis.suite,
            self.key,
            chain_id=self.genesis.chain_id,
            sender=self.org,
            contract=contract,
            method=method,
            args=args,
            valid_until=tip + validity,
        )


def outcome(tx_id: str, height: int, ok: bool, error: str, data: dict[str, Any]) -> dict[str, Any]:
    """A committed call's answer: its data with where it was committed, or `CallRefused`."""
    if not ok:
        raise CallRefused(error, field="args")
    return {"height": height, "tx_id": tx_id, **data}
