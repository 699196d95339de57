"""The notice contract: `post` keeps a notice of up to 280 characters, signed by its org.

The result anchors the notice record's hash (a batch of one), so the notice's receipt carries
the record itself, as a rank receipt carries its ranking entry."""

from __future__ import annotations

from typing import Any

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.errors import ContractError
from xinchain.merkle import leaf_hash

NAME = "notice"
notice_chars_max = 280


def notice_digest(hasher: Any, record: dict[str, Any]) -> bytes:
    """The leaf a notice's receipt proves: the hash of the record's canonical encoding."""
    return bytes(hasher(codec.encode(record)))


class Notice(Contract):
    name = NAME

    def methods(self) -> dict[str, Handler]:
        return {"post": self.post}

    def post(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"text"})
        text = args["text"]
        if not isinstance(text, str) or not 1 <= len(text) <= notice_chars_max:
            raise ContractError(
                f"expected text of 1 to {notice_chars_max} characters", field="args.text"
            )
        record = {"text": text, "org": context.sender, "time_ms": context.time_ms}
        context.write(NAME, f"tx/{context.tx_id}", record)
        digest = notice_digest(context.suite.hash, record)
        return {"root": leaf_hash(context.suite.hash, digest).hex(), "size": 1}
