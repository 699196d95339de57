"""What a node's public ports may cost it (open files, connections, read time), and the free
disk space it keeps.

At start a node raises its soft open-file limit to the hard limit, keeps `fd_reserve`
descriptors for its own files (the ledger, safety.json, logs, outbound peer links) and shares
the rest between the REST API (with its WebSocket stream) and the P2P port. Each port has a
per-address cap and a total cap (`xinchain.p2p.guard`); on the API a client must send its
request head within `head_timeout_s` and its body within `body_timeout_s`, and an idle
kept-alive connection is closed after `keep_alive_s`. These bound what slow or idle clients
(slowloris) can hold: they are closed, and everyone else is served.

Disk: below `disk_warn_below_bytes` free the node warns and flags it in /v1/status; below
`disk_stop_below_bytes` it stops cleanly before writing (`xinchain.storage.space`).

The values are node-local (node.json, "limits"); the defaults suit a node whose scan pages
face the internet.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import asdict, dataclass, fields
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from xinchain.errors import ConfigError
from xinchain.p2p.guard import ConnectionGuard, Slot

_log = logging.getLogger(__name__)
# Raising the soft limit to an unlimited hard limit: the kernel's usual ceiling (nr_open).
_UNLIMITED_TARGET = 1 << 20


@dataclass(frozen=True)
class NodeLimits:
    api_per_address: int = 256
    api_total: int = 4096
    # Listen backlog of the API port. asyncio accepts up to this many connections in one go
    # before the guard sees any, so the budget counts it as descriptors that may be in use.
    api_backlog: int = 1024
    p2p_per_address: int = 32  # nodes sharing a host (or a NAT) dial from one address
    p2p_total: int = 256
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: int = 5
    fd_reserve: int = 256
    disk_warn_below_bytes: int = 1 << 30
    disk_stop_below_bytes: int = 64 << 20

    @classmethod
    def from_value(cls, value: object) -> NodeLimits:
        """From node.json's "limits" (any subset of the fields); errors name the field."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ConfigError(f'node.json "limits" must be an object, got {value!r}')
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ConfigError(
                f'node.json "limits" has unknown field(s) {unknown}; known: {sorted(known)}'
            )
        checked: dict[str, Any] = {}
        for name, raw in value.items():
            wants_int = known[name] == "int"
            ok = isinstance(raw, int) if wants_int else isinstance(raw, int | float)
            if isinstance(raw, bool) or not ok or raw <= 0:
                kind = "a positive integer" if wants_int else "a positive number"
                raise ConfigError(f'node.json "limits.{name}" must be {kind}, got {raw!r}')
            checked[name] = raw
        limits = cls(**checked)
        if limits.disk_stop_below_bytes > limits.disk_warn_below_bytes:
            raise ConfigError(
                'node.json "limits.disk_stop_below_bytes" must not exceed '
                f'"disk_warn_below_bytes" ({limits.disk_stop_below_bytes} > '
                f"{limits.disk_warn_below_bytes}): the warning comes first"
            )
        return limits

    def to_value(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConnectionBudget:
    """The caps in force, after the open-file limit trimmed them."""

    open_files: int
    api: ConnectionGuard
    p2p: ConnectionGuard
    api_backlog: int
    p2p_backlog: int

    def status(self) -> dict[str, Any]:
        return {
            "open_files_max": self.open_files,
            "api": self.api.status(),
            "p2p": self.p2p.status(),
        }


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one; the soft limit in force after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            _log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return _UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft


def connection_budget(limits: NodeLimits, open_files: int) -> ConnectionBudget:
    """Share `open_files` less the reserve. First the accept batches (asyncio accepts up to a
    listen backlog of connections at once, before any is refused), then the P2P port an eighth
    of the rest (at least 16) and the API what remains, each no more than configured."""
    available = open_files - limits.fd_reserve
    if available < 64:
        raise ConfigError(
            f"the open-file limit is {open_files}; a node keeps {limits.fd_reserve} for its own "
            f"files and needs at least 64 more for connections: raise it (ulimit -n "
            f"{limits.fd_reserve + 64} or more, LimitNOFILE= under systemd)"
        )
    api_backlog = min(limits.api_backlog, max(16, available // 8))
    p2p_backlog = min(64, max(8, available // 16))
    rest = available - api_backlog - p2p_backlog
    p2p_total = min(limits.p2p_total, max(16, rest // 8))
    api_total = min(limits.api_total, rest - p2p_total)
    return ConnectionBudget(
        open_files=open_files,
        api_backlog=api_backlog,
        p2p_backlog=p2p_backlog,
        api=ConnectionGuard("api", min(limits.api_per_address, api_total), api_total),
        p2p=ConnectionGuard("p2p", min(limits.p2p_per_address, p2p_total), p2p_total),
    )


class AcceptErrorsOncePerMinute(logging.Filter):
    """asyncio logs each failed accept() (EMFILE, ENFILE, ENOBUFS) with a traceback and retries
    a second later; the node survives it, but a flood would bury the log. One line a minute,
    with the count since the last, and no traceback."""

    every_s = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._logged_at = -self.every_s

    def filter(self, record: logging.LogRecord) -> bool:
        if "socket.accept() out of system resource" not in record.getMessage():
            return True
        self._count += 1
        now = record.created
        if now - self._logged_at < self.every_s:
            return False
        record.msg = (
            f"accept() failed {self._count} time(s) since the last such line for want of "
            "descriptors or buffers; retrying each second (raise the open-file limit?)"
        )
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        self._count = 0
        self._logged_at = now
        return True


def quiet_accept_errors() -> None:
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, AcceptErrorsOncePerMinute) for f in logger.filters):
        logger.addFilter(AcceptErrorsOncePerMinute())


# --- the REST API's server ------------------------------------------------------------------


class GuardedConfig(uvicorn.Config):
    """uvicorn's settings plus the API port's guard and read deadlines."""

    def __init__(
        self, app: Any, *, guard: ConnectionGuard, limits: NodeLimits, **kwargs: Any
    ) -> None:
        super().__init__(
            app,
            http=GuardedHttpProtocol,
            ws=GuardedWebSocketProtocol,
            timeout_keep_alive=limits.keep_alive_s,
            **kwargs,
        )
        self.guard = guard
        self.limits = limits


class GuardedHttpProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, admitted by the guard, with request read deadlines."""

    def __init__(self, config: GuardedConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._guard = config.guard
        self._limits = config.limits
        self._slot: Slot | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_for = ""  # "head" or "body"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else "unknown"
        slot = self._guard.admit(address, transport.abort)
        if slot is None:
            transport.abort()
            return
        self._slot = slot
        self._arm("head", self._limits.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._slot is None:  # refused, or handed to the WebSocket protocol
            return
        super().data_received(data)
        if self._slot is not None:  # not upgraded to WebSocket by this data
            self._follow(data_pending=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._slot is not None and not self.transport.is_closing():
            self._follow(data_pending=bool(self.conn.trailing_data[0]))

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        slot, self._slot = self._slot, None
        super().handle_websocket_upgrade(event)
        protocol = self.transport.get_protocol()
        if isinstance(protocol, GuardedWebSocketProtocol) and slot is not None:
            slot.busy()  # a stream subscriber is served, not evicted
            protocol.slot = slot
        elif slot is not None:
            slot.release()

    def _follow(self, *, data_pending: bool) -> None:
        """Arm the deadline for what the client still owes, from when it began to owe it."""
        assert self._slot is not None
        state = self.conn.their_state
        if state is h11.IDLE:
            self._slot.idle()
            if not data_pending:
                self._disarm()  # between requests: uvicorn's keep-alive timeout runs
            elif self._deadline_for != "head":
                self._arm("head", self._limits.head_timeout_s)
        elif state is h11.SEND_BODY:
            self._slot.busy()
            if self._deadline_for != "body":
                self._arm("body", self._limits.body_timeout_s)
        else:
            self._slot.busy()
            self._disarm()

    def _arm(self, kind: str, seconds: float) -> None:
        self._disarm()
        self._deadline_for = kind
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._deadline_for = ""

    def _timed_out(self) -> None:
        self._guard.timed_out_total += 1
        _log.debug(
            "closing an API connection from %s: its request %s did not arrive in time",
            self.client[0] if self.client else "unknown",
            self._deadline_for,
        )
        self._deadline = None
        self.transport.abort()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, giving back the connection's slot when it ends."""

    slot: Slot | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.slot is not None:
            self.slot.release()
            self.slot = None
        super().connection_lost(exc)
