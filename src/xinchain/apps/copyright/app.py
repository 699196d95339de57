"""The copyright app: sellers' photos registered by their hashes, near-duplicate search,
evidence packages."""

from __future__ import annotations

from xinchain.apps.copyright.cli import copyright_app
from xinchain.apps.copyright.contract import NAME, Copyright
from xinchain.apps.copyright.evidence import package_lines
from xinchain.apps.copyright.perceptual import image_bytes_max
from xinchain.apps.copyright.receipts import COPYRIGHT_RECEIPTS
from xinchain.apps.copyright.routes import IMAGE_ROUTES, copyright_routes
from xinchain.appspec import AppSpec, UploadLimit

APP = AppSpec(
    name=NAME,
    summary="sellers' photos registered by hashes, near-duplicate search, evidence packages",
    contract=Copyright,
    routes=copyright_routes,
    cli=copyright_app,
    cli_name="copyright",
    uploads=(UploadLimit(IMAGE_ROUTES, image_bytes_max),),
    console_page="/copyright",
    receipts=COPYRIGHT_RECEIPTS,
    package=package_lines,
)
