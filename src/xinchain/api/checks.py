"""Checks of path parameters shared by the API's routes, and how the API description states
them.

A route checks its path parameters itself (a malformed one is a 400 naming it); `described`
puts the same rule in the OpenAPI description as the parameter's pattern, without a second
check, so that a generated client knows it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Path

from xinchain.errors import XinchainError
from xinchain.types import IDENTIFIER_PATTERN as IDENTIFIER_PATTERN  # for the routes
from xinchain.types import check_identifier

HEX64_PATTERN = "^[0-9a-f]{64}$"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def identifier(value: str, field: str) -> str:
    """`value` if it is an id (an org's, a node's); else a 400 naming `field`."""
    try:
        return check_identifier(value, field)
    except XinchainError as exc:
        raise XinchainError(exc.reason, field=field) from None


def described(description: str, pattern: str | None = None, **schema: Any) -> Any:
    """A path parameter's description (and pattern, or other schema keywords) for OpenAPI."""
    extra = dict(schema)
    if pattern is not None:
        extra["pattern"] = pattern
    return Path(description=description, json_schema_extra=extra or None)


def hex64(value: str, field: str) -> str:
    """`value` if it is 64 lowercase hex digits (a hash or an id); else a 400 naming `field`."""
    if not _HEX64.fullmatch(value):
        raise XinchainError(f"expected 64 lowercase hex digits, found {value[:80]!r}", field=field)
    return value


def binary_answer(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route whose 200 is not JSON: its media types, for OpenAPI."""
    schema = {"type": "string", "format": "binary"}
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": schema} for media_type in media_types},
        }
    }
