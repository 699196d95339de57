"""Identifier syntax shared by the identity contract and the credential checks."""

from __future__ import annotations

import re

# An absolute URI: a scheme, a colon, and no white space (URLs, DIDs, URNs).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")


def is_url(value: object) -> bool:
    return isinstance(value, str) and bool(_URL.fullmatch(value))
