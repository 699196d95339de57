"""The `eddsa-rdfc-2022` cryptosuite: documents canonicalized as RDF datasets (RDFC-1.0, pyld's
URDNA2015) after JSON-LD expansion against the contexts held offline."""

from __future__ import annotations

from typing import Any

from pyld import jsonld

from xinchain.apps.identity.dataintegrity import Cryptosuite, ProofError, register
from xinchain.apps.identity.vcmodel import load_context

RDFC = "eddsa-rdfc-2022"


def rdfc(document: dict[str, Any]) -> bytes:
    try:
        canonical = jsonld.normalize(
            document,
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": load_context,
            },
        )
    except jsonld.JsonLdError as exc:
        raise ProofError(f"the document cannot be canonicalized as RDF: {exc}") from None
    return str(canonical).encode("utf-8")


register(Cryptosuite(RDFC, rdfc, context_in_proof=False))
