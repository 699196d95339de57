"""Where a validator keeps what its SafetyRules must never forget: the last thing it signed (and
its lock) and the evidence for its lock. The consensus layer encodes both; these stores keep the
bytes.

* `FileSafetyStore`: two small files, each replaced atomically and durably (write a temporary
  file, fsync it, rename it over the old one, fsync the directory). The state goes in `path` on
  every signature; the lock evidence (which holds a whole block) in `path.lock`, only when the
  lock changes. A crash leaves the old file or the new one, never a torn one.
* `MemorySafetyStore`: for the simulator, where what is saved survives a simulated crash.
"""

from __future__ import annotations

import os
from pathlib import Path

from xinchain.errors import DiskFull
from xinchain.storage.space import is_out_of_space


class FileSafetyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_suffix(".lock")

    def load(self) -> bytes | None:
        return _read(self.path)

    def save(self, data: bytes) -> None:
        _replace_durably(self.path, data)

    def load_lock(self) -> bytes | None:
        return _read(self.lock_path)

    def save_lock(self, data: bytes) -> None:
        _replace_durably(self.lock_path, data)


class MemorySafetyStore:
    def __init__(self) -> None:
        self.saved: bytes | None = None
        self.saved_lock: bytes | None = None

    def load(self) -> bytes | None:
        return self.saved

    def save(self, data: bytes) -> None:
        self.saved = data

    def load_lock(self) -> bytes | None:
        return self.saved_lock

    def save_lock(self, data: bytes) -> None:
        self.saved_lock = data


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _replace_durably(path: Path, data: bytes) -> None:
    try:
        _write_then_rename(path, data)
    except OSError as exc:
        if is_out_of_space(exc):
            # The old file is intact (only the temporary one was being written).
            raise DiskFull(
                f"cannot save {path}: the disk is full ({exc.strerror}); the node stops "
                "before signing anything it could not remember. Free space, then start it again"
            ) from exc
        raise


def _write_then_rename(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
