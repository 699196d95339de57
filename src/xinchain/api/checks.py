"""Checks of path parameters shared by the API's routes."""

from __future__ import annotations

import re

from xinchain.errors import XinchainError

_HEX64 = re.compile(r"[0-9a-f]{64}")


def hex64(value: str, field: str) -> str:
    """`value` if it is 64 lowercase hex digits (a hash or an id); else a 400 naming `field`."""
    if not _HEX64.fullmatch(value):
        raise XinchainError(f"expected 64 lowercase hex digits, found {value[:80]!r}", field=field)
    return value
