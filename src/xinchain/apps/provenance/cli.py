"""`xinchain trace`: register products, import EPCIS documents, show and export journeys, QR."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from xinchain import codec
from xinchain.apps.provenance.contract import NAME, events_per_tx_max
from xinchain.apps.provenance.epcis import document_events_to_chain
from xinchain.cli.common import (
    DEFAULT_API,
    DEFAULT_HOME,
    ApiOption,
    HomeOption,
    console,
    contract_call,
    download,
    fail,
)
from xinchain.client.sdk import ApiError, Client
from xinchain.errors import XinchainError
from xinchain.types import tx_bytes_max

trace_cli = typer.Typer(no_args_is_help=True, help="Trace items: products, EPCIS events, scans.")


@trace_cli.command("product")
def trace_product(
    gtin: Annotated[str, typer.Argument(help="GTIN-14")],
    name: Annotated[str, typer.Option(help="product name")],
    origin: Annotated[str, typer.Option(help="country or place of origin")],
    prefix_digits: Annotated[int, typer.Option(help="digits of the GS1 company prefix")] = 7,
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="the brand org")] = None,
) -> None:
    """Register a product (GTIN) as the brand that owns it."""
    args = {"gtin": gtin, "name": name, "origin": origin, "company_prefix_digits": prefix_digits}
    result = contract_call(home, api, org, NAME, "register_product", args)
    console.print(f"registered GTIN {gtin} in block {result['height']}")


@trace_cli.command("import")
def trace_import(
    document: Annotated[Path, typer.Argument(help="EPCIS 2.0 JSON-LD document")],
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="member org recording the events")] = None,
) -> None:
    """Validate an EPCIS 2.0 document and record its events: all or none when they fit one
    transaction (1,000 events, under 1 MiB), else in several, in order, each all or none."""
    try:
        events = document_events_to_chain(document.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise fail(f"cannot read {document}: {exc}", 2) from exc
    except XinchainError as exc:
        raise fail(f"{document.name} is refused: {exc}") from exc
    batches = list(_batches(events))
    done = 0
    for number, batch in enumerate(batches, 1):
        if len(batches) > 1:
            console.print(
                f"transaction {number} of {len(batches)}: events {done} to "
                f"{done + len(batch) - 1} (those before are recorded)"
            )
        result = contract_call(home, api, org, NAME, "record_events", {"events": batch})
        done += len(batch)
        console.print(
            f"recorded {result['size']} event(s) from {document.name} in block {result['height']}"
        )


# One transaction's events: under the contract's count, and their encoding under this share of
# a transaction's bytes (the rest is the signature, names and framing).
batch_bytes_max = tx_bytes_max * 7 // 8


def _batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        encoded = len(codec.encode(event))
        if batch and (len(batch) >= events_per_tx_max or size + encoded > batch_bytes_max):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += encoded
    if batch:
        yield batch


@trace_cli.command("show")
def trace_show(
    gtin: Annotated[str, typer.Argument(help="GTIN-14")],
    serial: Annotated[str, typer.Argument(help="serial number")],
    api: ApiOption = DEFAULT_API,
) -> None:
    """Print an item's journey as the chain records it."""
    try:
        with Client(api) as client:
            console.print_json(json.dumps(client.item(gtin, serial), default=str))
    except ApiError as exc:
        raise fail(exc.reason) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc


@trace_cli.command("export")
def trace_export(
    gtin: Annotated[str, typer.Argument(help="GTIN-14")],
    serial: Annotated[str, typer.Argument(help="serial number")],
    out: Annotated[Path, typer.Option("--out", help="where to write the EPCIS document")],
    api: ApiOption = DEFAULT_API,
) -> None:
    """Write an item's journey as an EPCIS 2.0 JSON-LD document."""
    download(f"{api}/v1/provenance/items/{gtin}/{serial}/epcis", out)


@trace_cli.command("qr")
def trace_qr(
    gtin: Annotated[str, typer.Argument(help="GTIN-14")],
    out: Annotated[Path, typer.Option("--out", help="file to write: .png, .svg or .pdf")],
    serial: Annotated[str | None, typer.Option(help="one item; without it, a sheet")] = None,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Write an item's QR code, or a printable sheet of a product's items' codes."""
    kind = out.suffix.lstrip(".").lower()
    if serial is None:
        download(f"{api}/v1/provenance/products/{gtin}/sheet.{kind}?limit=500", out)
    else:
        download(f"{api}/v1/provenance/items/{gtin}/{serial}/qr.{kind}", out)
