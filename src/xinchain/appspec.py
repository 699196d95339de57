"""The seam between the chain and its applications: what one app gives the node.

The chain's core (consensus, mempool, storage, execution, p2p, the core API) never imports an
app. Each app lives in `xinchain/apps/<app>/` and describes itself with one `AppSpec`; the
registry (`xinchain/apps/registry.py`) lists them, and the start-up code (the CLI) hands the
specs to the node, which gives each part what it needs: the execution its contracts, the API
its routes, the CLI its command group, the node its background tasks. docs/architecture.md has
the checklist for adding an app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xinchain.contracts.base import Contract
from xinchain.errors import ConfigError
from xinchain.private.receipts import PRIVATE_RECEIPTS
from xinchain.receipt import RECEIPT_FIELDS
from xinchain.records import ReceiptKinds
from xinchain.types import check_identifier

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from xinchain.node.home import Home
    from xinchain.node.node import Node


@dataclass(frozen=True)
class UploadLimit:
    """API routes under `prefix` accept request bodies up to `bytes_max` (images, files),
    where every other route accepts a transaction's worth."""

    prefix: str
    bytes_max: int


# Checks a package of receipts and files (a zip) offline: the bytes, and the pin (a genesis hash,
# or trusted chains). Returns the lines `xinchain verify` prints; raises XinchainError naming
# what is wrong.
PackageCheck = Callable[[bytes, str | None, Mapping[str, str] | None], list[str]]


@dataclass(frozen=True)
class AppSpec:
    """One application.

    * `name`: the app's name, which is also its contract's name and key space.
    * `contract`: makes the app's system contract (deterministic; see contracts/base.py).
    * `routes`: adds the app's REST routes and pages to a node's API.
    * `cli`: makes the app's command group, named `cli_name` (`xinchain <cli_name> ...`);
      `more_cli`: further groups of the app, as (name, group).
    * `node_tasks`: coroutines a node runs while it serves (e.g. anchoring scan flags).
    * `uploads`: routes that take large bodies.
    * `demo`: records the app's demo data on a new local consortium through the API at the
      given address; returns the path of a page to show (`xinchain up` prints it).
    * `console_page`: the path of the app's console page, printed by `xinchain up` with the
      first node's gateway token.
    * `receipts`: what the app's receipts prove: the methods that anchor files and the record
      kinds its methods build (xinchain.records). The receipt verifier and the report read them.
    * `package`: checks the app's evidence package (a zip) for `xinchain verify`.
    """

    name: str
    summary: str
    contract: Callable[[], Contract]
    routes: Callable[[FastAPI, Node], None] | None = None
    cli: typer.Typer | None = None
    cli_name: str = ""
    more_cli: tuple[tuple[str, typer.Typer], ...] = ()
    node_tasks: tuple[Callable[[Node], Awaitable[None]], ...] = ()
    uploads: tuple[UploadLimit, ...] = ()
    demo: Callable[[Home, str], str] | None = None
    console_page: str = ""
    receipts: ReceiptKinds = field(default_factory=ReceiptKinds)
    package: PackageCheck | None = None


def check_apps(
    apps: Sequence[AppSpec], reserved: Sequence[str] = ("governance", "private")
) -> None:
    """Refuse a registry whose apps share a name, a contract name or a CLI group, or take a name
    the core uses."""
    seen: set[str] = set(reserved)
    commands: set[str] = {"private", "audit"}  # the core's own groups
    for app in apps:
        check_identifier(app.name, "app name")
        if app.name in seen:
            raise ConfigError(f"two apps (or an app and the core) are named {app.name!r}")
        seen.add(app.name)
        contract = app.contract()
        if contract.name != app.name:
            raise ConfigError(
                f"app {app.name!r} makes a contract named {contract.name!r}; expected the "
                "app's name"
            )
        groups = [(app.cli_name, app.cli)] if app.cli is not None else []
        for group_name, _ in [*groups, *app.more_cli]:
            if not group_name or group_name in commands:
                raise ConfigError(f"app {app.name!r} needs a CLI group name of its own")
            commands.add(group_name)
        declared = [anchor.contract for anchor in app.receipts.anchors]
        declared += [record.contract for record in app.receipts.records]
        for contract_name in declared:
            if contract_name != app.name:
                raise ConfigError(
                    f"app {app.name!r} declares a receipt of contract {contract_name!r}; "
                    "an app declares receipts of its own contract only"
                )
    receipt_kinds(apps)


def receipt_kinds(apps: Sequence[AppSpec]) -> ReceiptKinds:
    """The core's receipt kinds (private records) and every app's, in one set, for the
    verifier (refuses a clash)."""
    parts = [PRIVATE_RECEIPTS, *(app.receipts for app in apps)]
    return ReceiptKinds.gather(parts, reserved=RECEIPT_FIELDS)
