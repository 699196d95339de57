"""The notice app's one line of description for the registry."""

from __future__ import annotations

from xinchain.apps.notice.cli import notice_cli
from xinchain.apps.notice.contract import NAME, Notice
from xinchain.apps.notice.receipts import NOTICE_RECEIPTS
from xinchain.apps.notice.routes import notice_routes

from xinchain.appspec import AppSpec

APP = AppSpec(
    name=NAME,
    summary="public notices of member orgs, each with a receipt",
    contract=Notice,
    routes=notice_routes,
    cli=notice_cli,
    cli_name="notice",
    receipts=NOTICE_RECEIPTS,
)
