"""Where a node keeps the envelopes of private records sealed to its org: one file each,
`<dir>/<first two hex digits>/<cipher hash>`, outside LMDB.

Files, because a purge must leave nothing behind: LMDB reuses freed pages but never clears
them, so a deleted value stays readable in data.mdb until the page is written again. A purged
envelope's file is overwritten with zeros, synced and unlinked. A file is written to a temporary
name, synced, renamed and its directory synced before `put` returns: an envelope a node has
acknowledged survives a kill -9.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from xinchain.errors import InvariantBroken


class EnvelopeStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, cipher_hash: str) -> Path:
        return self.directory / cipher_hash[:2] / cipher_hash

    def has(self, cipher_hash: str) -> bool:
        return self.path(cipher_hash).exists()

    def get(self, cipher_hash: str) -> bytes | None:
        try:
            return self.path(cipher_hash).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, cipher_hash: str, envelope: bytes) -> None:
        self.put_many([(cipher_hash, envelope)])

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """`put` of several envelopes, each synced, with one sync of each directory."""
        placed: set[Path] = set()
        for cipher_hash, envelope in items:
            path = self.path(cipher_hash)
            if path.exists():
                continue
            if hashlib.sha256(envelope).hexdigest() != cipher_hash:
                raise InvariantBroken(f"envelope bytes do not hash to {cipher_hash}")
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{cipher_hash}.{os.getpid()}.tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(envelope)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            placed.add(path.parent)
        for directory in placed:
            _sync_directory(directory)

    def purge(self, cipher_hash: str) -> bool:
        """Overwrite, sync and remove the envelope; whether there was one."""
        path = self.path(cipher_hash)
        try:
            descriptor = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.write(b"\x00" * size)
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
        _sync_directory(path.parent)
        return True

    def hashes(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(path.name for path in self.directory.glob("??/*") if len(path.name) == 64)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
