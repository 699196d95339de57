"""The apps this build of xinchain runs: one line each. The start-up code (the CLI) reads this
list and hands it to the node; nothing in the chain's core imports it.

To add an app, follow docs/architecture.md, "Adding an app": a folder under apps/ and a line
here.
"""

from __future__ import annotations

from xinchain.apps.copyright.app import APP as COPYRIGHT
from xinchain.apps.notary.app import APP as NOTARY
from xinchain.apps.promo.app import APP as PROMO
from xinchain.apps.provenance.app import APP as PROVENANCE
from xinchain.appspec import AppSpec, check_apps

APPS: tuple[AppSpec, ...] = (
    NOTARY,
    PROVENANCE,
    PROMO,
    COPYRIGHT,
)
check_apps(APPS)
