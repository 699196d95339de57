"""The contracts of the registered apps, for tests that build an `Application` directly."""

from __future__ import annotations

from xinchain.apps.registry import APPS
from xinchain.contracts.base import Contract

APP_CONTRACTS: tuple[Contract, ...] = tuple(spec.contract() for spec in APPS)
