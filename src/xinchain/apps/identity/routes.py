"""REST routes of the identity app: DID resolution, the issuer registry, status lists, and
verification of credentials and presentations against this chain (no call to the issuer)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import HTMLResponse

from xinchain.api.private import gateway_org
from xinchain.apps.identity import gateway, view
from xinchain.apps.identity.credentials import Refused, verify_credential, verify_presentation
from xinchain.node.node import Node

TAGS: list[Any] = ["identity"]
PAGE = (files("xinchain.apps.identity") / "identity.html").read_text(encoding="utf-8")


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
        return {
            "org": org,
            "list": name,
            "found": True,
            "purpose": purpose,
            "encodedList": encoded,
            "height": view.status_height(chain, org, name),
        }

    @api.post("/v1/identity/verify", tags=TAGS)
    def verify(
        verifiable_credential: dict[str, Any] | None = Body(None, alias="verifiableCredential"),
        verifiable_presentation: dict[str, Any] | None = Body(None, alias="verifiablePresentation"),
        challenge: str | None = Body(None),
        domain: str | None = Body(None),
        types: list[str] = Body([], max_length=16),
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
                    verifiable_presentation,
                    trust,
                    challenge=challenge,
                    domain=domain,
                    required=tuple(types),
                )
                return {"verified": True, "height": height, "credentials": accepted}
            if verifiable_credential is None:
                raise Refused(
                    "expected verifiableCredential or verifiablePresentation", field="body"
                )
            return {
                "verified": True,
                "height": height,
                "credential": verify_credential(verifiable_credential, trust, tuple(types)),
            }
        except Refused as exc:
            return {"verified": False, "height": height, "reason": exc.reason, "field": exc.field}

    def authorize(request: Request) -> str:
        return gateway_org(node, request)

    @api.get("/v1/identity/gateway", tags=TAGS)
    def gateway_info() -> dict[str, Any]:
        """The org this node's gateway acts for, and its issuer DID."""
        org = node.private.org
        return {"org": org, "issuer": None if org is None else view.org_did(chain, org)}

    @api.post("/v1/identity/gateway/onboard", tags=TAGS)
    async def onboard(
        request: Request,
        merchant: str = Body(pattern=r"^[A-Za-z0-9_.-]{1,64}$", embed=True),
        shop_name: str = Body(min_length=1, max_length=200, alias="shopName", embed=True),
    ) -> dict[str, Any]:
        """Register the merchant's DID (the platform keeps its keys in this demo) and issue it
        a MerchantCredential from this org's issuer DID."""
        org = authorize(request)
        return await gateway.onboard(node, org, merchant, shop_name)

    @api.post("/v1/identity/gateway/present", tags=TAGS)
    def present(
        request: Request,
        credential: dict[str, Any] = Body(embed=True),
        challenge: str = Body(min_length=1, max_length=200, embed=True),
        domain: str = Body(min_length=1, max_length=200, embed=True),
    ) -> dict[str, Any]:
        """A presentation of the credential by its subject, from the wallet this node keeps."""
        authorize(request)
        return gateway.present_for(node, credential, challenge, domain)

    @api.post("/v1/identity/gateway/revoke", tags=TAGS)
    async def revoke(
        request: Request,
        index: int = Body(ge=0, lt=131_072, embed=True),
        restore: bool = Body(False, embed=True),
    ) -> dict[str, Any]:
        """Set (or clear) a credential's bit in this org's revocation list, and publish it."""
        org = authorize(request)
        return await gateway.revoke(node, org, index, restore)

    @api.get("/identity", response_class=HTMLResponse, include_in_schema=False)
    def identity_page() -> str:
        return PAGE
