"""What every `xinchain` command group shares: output consoles, common options, failing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xinchain.client.sdk import ApiError, Client
from xinchain.crypto import Suite
from xinchain.errors import XinchainError
from xinchain.node.home import Home

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

HomeOption = Annotated[Path, typer.Option("--home", help="consortium home directory")]
ApiOption = Annotated[str, typer.Option("--api", help="REST API of a node")]
DEFAULT_HOME = Path(".xinchain")
DEFAULT_PORT = 7700
DEFAULT_API = f"http://127.0.0.1:{DEFAULT_PORT}"
# Bytes read at a time while hashing a file: large files never sit in memory whole.
hash_chunk_bytes = 1 << 20
OrgOption = Annotated[str | None, typer.Option("--as", help="member org that signs")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error and return the exit to raise (code 1, or 2 for misuse)."""
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def progress() -> Progress:
    """A progress display on stderr (stdout stays for results)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=False,
    )


def default_org(home: Home, org_ids: list[str]) -> str:
    for org_id in org_ids:
        if home.org_key_path(org_id).exists():
            return org_id
    raise XinchainError(f"no member key under {home.path / 'keys'}; pass --as ORG", field="--as")


def hash_file(suite: Suite, path: Path) -> bytes:
    with path.open("rb") as handle:
        return suite.hash_chunks(iter(lambda: handle.read(hash_chunk_bytes), b""))


def contract_call(
    home: Path, api: str, org: str | None, contract: str, method: str, args: dict[str, Any]
) -> dict[str, Any]:
    consortium = Home(home)
    try:
        with Client(api) as client:
            genesis = client.genesis()
            sender = org or default_org(consortium, [o.id for o in genesis.orgs])
            key = consortium.org_key(genesis.suite, sender)
            return client.call(
                genesis, key, sender=sender, contract=contract, method=method, args=args
            )
    except ApiError as exc:
        raise fail(f"the chain refused: {exc.reason}") from exc
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except (OSError, TimeoutError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc


def download(url: str, out: Path) -> None:
    try:
        response = httpx.get(url, timeout=60)
    except httpx.HTTPError as exc:
        raise fail(f"{url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            reason = response.json()["error"]["reason"]
        except (ValueError, KeyError, TypeError):
            reason = response.text[:200]
        raise fail(reason)
    out.write_bytes(response.content)
    console.print(f"wrote {out} ({len(response.content)} bytes)")
