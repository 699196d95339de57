"""Free disk space under a node's files: a health flag before the disk fills, a clean stop at it.

A node that runs out of space mid-write must not leave anything half-written nor die with a
traceback. `DiskSpace.check()` runs before every write batch (one statvfs call): below
`stop_below_bytes` free it raises `DiskFull`, which stops the node with a message naming the
path and the space wanted; nothing of the batch is written. Below `warn_below_bytes` the node
keeps going, logs a warning (at most once a minute) and shows `low: true` under "disk" in
/v1/status. A write that still fails for want of space (another process filled the disk
between the check and the write) is turned into the same `DiskFull`.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xinchain.errors import DiskFull

_log = logging.getLogger(__name__)
warn_every_s = 60.0
# errno values that mean "no room to write": full, over quota, or (LMDB's report when the
# kernel refused to extend a file) an I/O error on a full disk.
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_SPACE_WORDS = ("No space left", "Disk quota exceeded", "File too large")


@dataclass
class DiskSpace:
    path: Path
    warn_below_bytes: int = 1 << 30  # 1 GiB
    stop_below_bytes: int = 64 << 20  # 64 MiB: room for a few of the largest blocks
    _warned_at: float = -warn_every_s

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def check(self) -> None:
        """Raise DiskFull below the stop mark; warn below the warning mark."""
        free = self.free_bytes()
        if free < self.stop_below_bytes:
            raise self.full(free)
        if free < self.warn_below_bytes:
            now = time.monotonic()
            if now - self._warned_at >= warn_every_s:
                self._warned_at = now
                _log.warning(
                    "the disk holding %s has %s free; the node stops cleanly below %s: "
                    "free space or move the data",
                    self.path,
                    _size(free),
                    _size(self.stop_below_bytes),
                )

    def full(self, free: int | None = None) -> DiskFull:
        free = self.free_bytes() if free is None else free
        return DiskFull(
            f"the disk holding {self.path} has {_size(free)} free; this node stops below "
            f"{_size(self.stop_below_bytes)} so that nothing is half-written "
            f"({_size(self.stop_below_bytes - free)} more needed). Free space (or raise the "
            "disk), then start the node again: it catches up from its peers"
        )

    def status(self) -> dict[str, Any]:
        free = self.free_bytes()
        return {
            "path": str(self.path),
            "free_bytes": free,
            "warn_below_bytes": self.warn_below_bytes,
            "stop_below_bytes": self.stop_below_bytes,
            "low": free < self.warn_below_bytes,
        }


def is_out_of_space(exc: BaseException) -> bool:
    """An OSError or LMDB error that means the disk (or quota) is full."""
    if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
        return True
    text = str(exc)
    return any(words in text for words in _SPACE_WORDS)


def _size(count: int) -> str:
    value = float(max(count, 0))
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
