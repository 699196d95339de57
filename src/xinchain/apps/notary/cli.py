"""`xinchain notary`: anchor files and write their receipts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from xinchain.apps.notary.contract import NAME, batch_hashes_max
from xinchain.cli.common import (
    DEFAULT_API,
    DEFAULT_HOME,
    ApiOption,
    HomeOption,
    console,
    default_org,
    fail,
    hash_file,
    progress,
)
from xinchain.client.sdk import ApiError, Client, Member
from xinchain.errors import XinchainError
from xinchain.node.home import Home
from xinchain.receipt import build_receipts

notary_cli = typer.Typer(no_args_is_help=True, help="Anchor documents and get their receipts.")


@notary_cli.command("put")
def notary_put(
    files: Annotated[list[Path], typer.Argument(help="files to anchor")],
    out: Annotated[Path, typer.Option("--out", help="directory for the receipts")],
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="member org that anchors")] = None,
) -> None:
    """Anchor FILES (one batch when there are several); write OUT/<name>.receipt.json each."""
    names = [path.name for path in files]
    if len(set(names)) != len(names):
        raise fail("two files share a name; their receipts would overwrite each other", 2)
    for path in files:
        if not path.is_file():
            raise fail(f"{path} is not a readable file", 2)
    try:
        with Client(api) as client:
            _notary_put(client, Home(home), files, out, org)
    except ApiError as exc:
        raise fail(f"the node refused: {exc}") from exc
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except (OSError, TimeoutError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc


def _notary_put(client: Client, home: Home, files: list[Path], out: Path, org: str | None) -> None:
    genesis = client.genesis()
    suite = genesis.suite
    sender = org or default_org(home, [o.id for o in genesis.orgs])
    member = Member(genesis, sender, home.org_key(suite, sender))
    out.mkdir(parents=True, exist_ok=True)
    with progress() as shown:
        hashing = shown.add_task("hashing", total=len(files))
        digests = []
        for path in files:
            digests.append(hash_file(suite, path))
            shown.advance(hashing)
        batches = [
            list(range(start, min(start + batch_hashes_max, len(files))))
            for start in range(0, len(files), batch_hashes_max)
        ]
        tip = client.status()["height"]
        anchoring = shown.add_task("anchoring", total=len(files))
        tx_ids = []
        for batch in batches:
            args: dict[str, object]
            if len(files) == 1:
                method, args = "anchor", {"hash": digests[0]}
            else:
                method, args = "anchor_batch", {"hashes": [digests[i] for i in batch]}
            tx_ids.append(client.submit(member.transaction(NAME, method, args, tip=tip)))
        receipts_task = shown.add_task("receipts", total=len(files))
        for batch, tx_id in zip(batches, tx_ids, strict=True):
            client.committed(tx_id)  # ApiError if the chain refused it
            shown.advance(anchoring, len(batch))
            receipts = build_receipts(client.proof(tx_id), [digests[i] for i in batch])
            for index, receipt in zip(batch, receipts, strict=True):
                target = out / f"{files[index].name}.receipt.json"
                target.write_text(json.dumps(receipt, indent=1, sort_keys=True) + "\n")
                shown.advance(receipts_task)
    console.print(
        f"anchored {len(files)} file(s) in {len(tx_ids)} transaction(s); receipts in {out}"
    )
