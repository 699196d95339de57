"""REST routes of the identity app: DID resolution, the issuer registry, status lists, and
verification of credentials and presentations against this chain (no call to the issuer)."""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI

from xinchain.apps.identity import view
from xinchain.apps.identity.credentials import Refused, verify_credential, verify_presentation
from xinchain.node.node import Node

TAGS: list[Any] = ["identity"]


def identity_routes(api: FastAPI, node: Node) -> None:
    chain = node.chain

    @api.get("/v1/identity/dids/{did:path}", tags=TAGS)
    def resolve_did(did: str) -> dict[str, Any]:
        """DID resolution (did:xin of this chain, did:key): the DID document with its
        resolution and document metadata; a failed resolution names its error."""
        return view.resolve(chain, did)

    @api.get("/v1/identity/issuers", tags=TAGS)
    def issuers() -> dict[str, Any]:
        """Which org governance authorises to issue which credential type."""
        return {"issuers": view.issuers(chain)}

    @api.get("/v1/identity/status/{org}/{name}", tags=TAGS)
    def status(org: str, name: str) -> dict[str, Any]:
        found = view.status_list(chain, org, name)
        if found is None:
            return {"org": org, "list": name, "found": False}
        purpose, encoded = found
        return {"org": org, "list": name, "found": True, "purpose": purpose, "encodedList": encoded}

    @api.post("/v1/identity/verify", tags=TAGS)
    def verify(
        verifiable_credential: dict[str, Any] | None = Body(None, alias="verifiableCredential"),
        verifiable_presentation: dict[str, Any] | None = Body(None, alias="verifiablePresentation"),
        challenge: str | None = Body(None),
        domain: str | None = Body(None),
    ) -> dict[str, Any]:
        """Verify a credential, or a presentation bound to `challenge` and `domain`, against
        this chain's DID documents, issuer registry and status lists as committed now."""
        trust = view.chain_trust(chain)
        height = node.app.tip().height
        try:
            if verifiable_presentation is not None:
                if challenge is None or domain is None:
                    raise Refused(
                        "a presentation is verified against a challenge and a domain",
                        field="challenge",
                    )
                accepted = verify_presentation(
                    verifiable_presentation, trust, challenge=challenge, domain=domain
                )
                return {"verified": True, "height": height, "credentials": accepted}
            if verifiable_credential is None:
                raise Refused(
                    "expected verifiableCredential or verifiablePresentation", field="body"
                )
            return {
                "verified": True,
                "height": height,
                "credential": verify_credential(verifiable_credential, trust),
            }
        except Refused as exc:
            return {"verified": False, "height": height, "reason": exc.reason, "field": exc.field}
