"""Loopback ports for tests that start servers."""

from __future__ import annotations

import socket
from collections.abc import Iterable


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on right now (the kernel picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def ports_free(ports: Iterable[int]) -> bool:
    """True if every port can be bound on loopback right now."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
