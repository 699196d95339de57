"""Connection caps for a listening port: per client address, in total, and idle eviction.

A node's public ports (the REST API with its scan and ranking pages, the P2P port) face
clients it does not control. Every accepted connection holds a file descriptor, and a node
that runs out of them cannot write its safety state. A `ConnectionGuard` is asked before a
connection is served:

* an address that already holds `per_address` connections is refused;
* at `total`, the connection that has waited longest without sending a request (an idle
  one) is closed to make room; if none is idle, the newcomer is refused;
* refusals are counted and logged at most once every `log_every_s` seconds, with the
  address that caused most of them, so an operator sees an attack without a flood of lines.

The guard decides; the server closes. It does no I/O of its own.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

_log = logging.getLogger(__name__)
log_every_s = 10.0


@dataclass(eq=False)
class Slot:
    """One admitted connection. `close` ends it (used for eviction)."""

    address: str
    close: Callable[[], None]
    guard: ConnectionGuard
    released: bool = False

    def idle(self) -> None:
        """The connection waits for its client (no request under way): it may be evicted."""
        if not self.released:
            self.guard._idle[id(self)] = self
            self.guard._idle.move_to_end(id(self))

    def busy(self) -> None:
        """A request is under way: the connection is not evicted."""
        self.guard._idle.pop(id(self), None)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        guard = self.guard
        guard._idle.pop(id(self), None)
        guard.open_total -= 1
        remaining = guard._by_address[self.address] - 1
        if remaining:
            guard._by_address[self.address] = remaining
        else:
            del guard._by_address[self.address]


@dataclass
class ConnectionGuard:
    name: str  # "api" or "p2p", in the log and in /v1/status
    per_address: int
    total: int
    open_total: int = 0
    refused_total: int = 0
    evicted_total: int = 0
    timed_out_total: int = 0  # closed by the server's read deadlines
    _by_address: dict[str, int] = field(default_factory=dict)
    _idle: OrderedDict[int, Slot] = field(default_factory=OrderedDict)
    _refused_since_log: Counter[str] = field(default_factory=Counter)
    _logged_at: float = 0.0

    def __post_init__(self) -> None:
        if self.per_address < 1 or self.total < 1:
            raise ValueError(
                f"{self.name} connection caps must be at least 1, "
                f"got per_address={self.per_address}, total={self.total}"
            )

    def admit(self, address: str, close: Callable[[], None]) -> Slot | None:
        """A slot for a new connection from `address`, or None: close it at once."""
        if self._by_address.get(address, 0) >= self.per_address:
            self._refuse(address, f"{self.per_address} connections from one address")
            return None
        if self.open_total >= self.total:
            if not self._idle:
                self._refuse(address, f"{self.total} connections in all")
                return None
            _, oldest = self._idle.popitem(last=False)
            self.evicted_total += 1
            oldest.release()
            oldest.close()
        slot = Slot(address, close, self)
        self.open_total += 1
        self._by_address[address] = self._by_address.get(address, 0) + 1
        slot.idle()
        return slot

    def status(self) -> dict[str, int]:
        return {
            "open": self.open_total,
            "idle": len(self._idle),
            "addresses": len(self._by_address),
            "per_address_max": self.per_address,
            "total_max": self.total,
            "refused": self.refused_total,
            "evicted": self.evicted_total,
            "timed_out": self.timed_out_total,
        }

    def _refuse(self, address: str, cap: str) -> None:
        self.refused_total += 1
        self._refused_since_log[address] += 1
        now = time.monotonic()
        if now - self._logged_at >= log_every_s:
            count = sum(self._refused_since_log.values())
            (top, top_count), *_ = self._refused_since_log.most_common(1)
            _log.warning(
                "%s port: refused %d connection(s) since the last such line, at the cap of %s "
                "(most from %s: %d); %d open",
                self.name,
                count,
                cap,
                top,
                top_count,
                self.open_total,
            )
            self._refused_since_log.clear()
            self._logged_at = now
