"""The promo app: first-N-buyers promotions ranked on chain, a rank receipt per buyer."""

from __future__ import annotations

from xinchain.apps.promo.cli import promo_cli
from xinchain.apps.promo.contract import NAME, Promo
from xinchain.apps.promo.receipts import PROMO_RECEIPTS
from xinchain.apps.promo.routes import promo_routes
from xinchain.appspec import AppSpec

APP = AppSpec(
    name=NAME,
    summary="first-N-buyers promotions ranked on chain, a rank receipt per buyer",
    contract=Promo,
    routes=promo_routes,
    cli=promo_cli,
    cli_name="promo",
    receipts=PROMO_RECEIPTS,
)
