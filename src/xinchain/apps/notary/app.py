"""The notary app: anchor document hashes, single or batched, each with its own receipt."""

from __future__ import annotations

from xinchain.apps.notary.cli import notary_cli
from xinchain.apps.notary.contract import NAME, Notary
from xinchain.apps.notary.receipts import NOTARY_RECEIPTS
from xinchain.apps.notary.routes import notary_routes
from xinchain.appspec import AppSpec

APP = AppSpec(
    name=NAME,
    summary="anchor document hashes, single or batched, each with its own receipt",
    contract=Notary,
    routes=notary_routes,
    cli=notary_cli,
    cli_name="notary",
    receipts=NOTARY_RECEIPTS,
)
