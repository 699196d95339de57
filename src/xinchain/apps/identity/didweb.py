"""did:web documents handed in offline (W3C CCG did:web method): a verifier never fetches
one; whoever relies on a did:web gives the verifier its document (`did.json`), and the
verifier checks that it is the document of that DID and reads its keys."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from xinchain.errors import XinchainError

_DID_WEB = re.compile(
    r"^did:web:(?P<host>[A-Za-z0-9.\-]+(?:%3A\d{1,5})?)(?P<path>(?::[A-Za-z0-9._~\-%]+)*)$"
)


class DidWebError(XinchainError):
    code = "did_web"


def document_url(did: str) -> str:
    """Where the did:web method says the document lives (for the operator who fetches it)."""
    found = _DID_WEB.fullmatch(did)
    if found is None:
        raise DidWebError(f"{did!r} is not did:web:<host>[:<path>...]", field="did")
    host = unquote(found.group("host"))
    path = [unquote(part) for part in found.group("path").split(":") if part]
    if not path:
        return f"https://{host}/.well-known/did.json"
    return f"https://{host}/{'/'.join(path)}/did.json"


def check_document(did: str, document: object) -> dict[str, Any]:
    """The handed-in document of `did`, refused unless it names itself `did` and its methods
    are controlled by it."""
    document_url(did)  # the DID's own form
    if not isinstance(document, dict):
        raise DidWebError(
            f"the document handed in for {did} is not a JSON object", field="document"
        )
    if document.get("id") != did:
        raise DidWebError(
            f"the document handed in is {document.get('id')!r}'s, not {did}'s", field="document.id"
        )
    for index, method in enumerate(document.get("verificationMethod", [])):
        if not isinstance(method, dict) or not str(method.get("id", "")).startswith(did + "#"):
            raise DidWebError(
                f"verification method {index} is not {did}#<fragment>",
                field=f"document.verificationMethod[{index}]",
            )
    return document
