"""The provenance app: GS1 EPCIS 2.0 events, Digital Link QR codes, the public scan page and
counterfeit flags."""

from __future__ import annotations

from xinchain.apps.provenance.cli import trace_cli
from xinchain.apps.provenance.contract import NAME, Provenance
from xinchain.apps.provenance.demo import seed_demo
from xinchain.apps.provenance.flags import anchor_flags_forever
from xinchain.apps.provenance.receipts import PROVENANCE_RECEIPTS
from xinchain.apps.provenance.routes import provenance_routes
from xinchain.apps.provenance.scans import flush_scans_forever
from xinchain.appspec import AppSpec

APP = AppSpec(
    name=NAME,
    summary="GS1 EPCIS events, QR codes, the public scan page and counterfeit flags",
    contract=Provenance,
    routes=provenance_routes,
    cli=trace_cli,
    cli_name="trace",
    node_tasks=(anchor_flags_forever, flush_scans_forever),
    demo=seed_demo,
    receipts=PROVENANCE_RECEIPTS,
)
