"""One exception tree for the whole node.

Two kinds of failure (STYLE.md §8):

* `XinchainError` and its subclasses are *expected*: bad input from a user, a client, a peer or
  a file. They carry a stable machine-readable `code`, the `field` that was wrong when there is
  one, and a sentence naming what was expected and what was found. Layers translate them at
  their boundary (REST → 4xx JSON, CLI → exit code and message) and keep running.
* `InvariantBroken` is a bug of our own. It is raised by `ensure()`, which, unlike `assert`,
  survives `python -O`.
"""

from __future__ import annotations


class XinchainException(Exception):
    """The root of every exception xinchain raises on purpose, in three branches:

    * `XinchainError`: input from outside (a user, a client, a peer, a file) is refused; the
      caller is told what was wrong and the node goes on.
    * `StorageCorrupted`: what is on disk contradicts itself; the node stops rather than serve
      wrong data.
    * `InvariantBroken`: one of our own invariants does not hold; a bug.

    How an error reaches a client over HTTP is the API's business (api/app.py maps these
    classes to statuses); the domain only says what kind of refusal it is.
    """


class XinchainError(XinchainException):
    """Expected failure caused by input from outside the node."""

    code = "invalid"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason if field is None else f"{field}: {reason}")
        self.reason = reason
        self.field = field

    def as_dict(self) -> dict[str, str]:
        body = {"code": self.code, "reason": self.reason}
        if self.field is not None:
            body["field"] = self.field
        return body


class DecodeError(XinchainError):
    """Bytes that are not the one canonical encoding of an allowed value."""

    code = "decode_error"


class InvalidTransaction(XinchainError):
    """A transaction that can never be accepted as it is (bad shape, bad signature, ...)."""

    code = "invalid_transaction"


class Unauthorized(XinchainError):
    """The sender is not a member, or its role does not allow the call."""

    code = "unauthorized"


class ReplayedTransaction(XinchainError):
    """A transaction whose id was already accepted."""

    code = "replayed_transaction"


class ExpiredTransaction(XinchainError):
    """A transaction whose `valid_until` height has passed."""

    code = "expired_transaction"


class ValidTooFarAhead(XinchainError):
    """A transaction whose `valid_until` lies beyond the chain's validity window: not expired,
    but it would stay replayable for too long; sign it again with a nearer height."""

    code = "valid_until_too_far"


class Forbidden(Unauthorized):
    """The caller's org may not see what it asked for (a private record of a collection it
    does not read, an audit by an org that is no regulator)."""

    code = "forbidden"


class Gone(XinchainError):
    """What was asked for existed and was deleted on purpose (a purged private record)."""

    code = "purged"


class ContractError(XinchainError):
    """A contract refused a call: the transaction is recorded as failed, state is untouched."""

    code = "contract_error"


class NotFound(XinchainError):
    """What was asked for does not exist (yet) on this node."""

    code = "not_found"


class Busy(XinchainError):
    """Refused for now, not for what it is: retry shortly."""

    code = "busy"


class TooLarge(XinchainError):
    """The request is larger than a limit allows."""

    code = "too_large"


class MempoolFull(Busy):
    code = "mempool_full"


class PeerRefused(XinchainError):
    """A peer's TLS identity is not one the consortium's genesis allows."""

    code = "peer_refused"


class ReceiptInvalid(XinchainError):
    """An offline receipt check failed; `reason` names the step that failed."""

    code = "receipt_invalid"


class CertificateInvalid(XinchainError):
    """A commit certificate that does not prove its block: a bad, unknown, repeated or
    misordered signature, or too few of them."""

    code = "certificate_invalid"


class ConfigError(XinchainError):
    """A home directory, genesis file or key file that is missing or malformed."""

    code = "config_error"


class StorageCorrupted(XinchainException):
    """What is on disk contradicts itself: stop rather than serve wrong data."""


class DiskFull(XinchainException):
    """Too little disk space to write safely: the node stops cleanly, nothing half-written."""


class InvariantBroken(XinchainException, AssertionError):
    """One of our own invariants does not hold: this is a bug."""


def ensure(condition: bool, message: str) -> None:
    """Assert an invariant of our own, also under `python -O`."""
    if not condition:
        raise InvariantBroken(message)
