"""The apps this build of xinchain runs: one line each, the name of the app's folder under
xinchain/apps/. The start-up code (the CLI) reads this list and hands it to the node; nothing in
the chain's core imports it.

To add an app, follow docs/architecture.md, "Adding an app": a folder under apps/ and a line
here.
"""

from __future__ import annotations

from importlib import import_module

from xinchain.appspec import AppSpec, check_apps, receipt_kinds
from xinchain.errors import ConfigError

APP_FOLDERS = (
    "notary",
    "provenance",
    "promo",
    "copyright",
    "identity",
)


def load_app(folder: str) -> AppSpec:
    """The `APP` of `xinchain/apps/<folder>/app.py`."""
    module = import_module(f"xinchain.apps.{folder}.app")
    spec = getattr(module, "APP", None)
    if not isinstance(spec, AppSpec):
        raise ConfigError(f"xinchain/apps/{folder}/app.py defines no APP = AppSpec(...)")
    if spec.name != folder:
        raise ConfigError(f"xinchain/apps/{folder}/ holds app {spec.name!r}: expected {folder!r}")
    return spec


APPS: tuple[AppSpec, ...] = tuple(load_app(folder) for folder in APP_FOLDERS)
check_apps(APPS)
# What receipts of this build's apps can prove: `xinchain verify` checks against these.
RECEIPT_KINDS = receipt_kinds(APPS)
