"""The identity app: did:xin DIDs, the issuer registry, status lists, and W3C Verifiable
Credentials 2.0 issued and verified against them (docs/did-method.md)."""

from __future__ import annotations

from xinchain.apps.identity.cli import did_cli, seed_demo, vc_cli
from xinchain.apps.identity.contract import NAME, Identity
from xinchain.apps.identity.gateway import register_org_did
from xinchain.apps.identity.routes import identity_routes
from xinchain.appspec import AppSpec

APP = AppSpec(
    name=NAME,
    summary="merchant identities (did:xin) and verifiable credentials usable across platforms",
    contract=Identity,
    routes=identity_routes,
    cli=did_cli,
    cli_name="did",
    more_cli=(("vc", vc_cli),),
    console_page="/identity",
    node_tasks=(register_org_did,),
    demo=seed_demo,
)
