"""The `xinchain` command line.

Exit codes: 0 success; 1 the thing asked for failed (a receipt is invalid, a transaction was
refused); 2 the command was used wrongly or its inputs are missing or malformed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xinchain.cli.common import (
    DEFAULT_API,
    DEFAULT_HOME,
    DEFAULT_PORT,
    ApiOption,
    HomeOption,
    console,
    errors,
    fail,
)
from xinchain.cli.copyright_cli import copyright_app
from xinchain.client.sdk import ApiError, Client, sign_transaction, validity_blocks
from xinchain.contracts.notary import batch_hashes_max
from xinchain.copyright.evidence import verify_package
from xinchain.crypto import DEFAULT_SUITE, Suite
from xinchain.demo import seed_demo
from xinchain.epcis import document_events_to_chain
from xinchain.errors import XinchainError
from xinchain.node.home import Home, assemble_genesis, create_demo_home, init_member, set_peers
from xinchain.node.node import Node
from xinchain.node.run import run_node
from xinchain.node.supervisor import run_consortium
from xinchain.receipt import (
    Verification,
    VerifiedReceipt,
    build_receipts,
    inspect_receipt,
    load_receipt_json,
    load_trusted_chains,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="xinchain: a consortium chain.")
notary_app = typer.Typer(no_args_is_help=True, help="Anchor documents and get their receipts.")
app.add_typer(notary_app, name="notary")
promo_app = typer.Typer(no_args_is_help=True, help="First-N-buyers promotions ranked by the chain.")
app.add_typer(promo_app, name="promo")
trace_app = typer.Typer(no_args_is_help=True, help="Trace items: products, EPCIS events, scans.")
app.add_typer(trace_app, name="trace")
app.add_typer(copyright_app, name="copyright")

# A new local consortium tolerates one faulty validator: n = 3f + 1 with f = 1.
DEFAULT_VALIDATORS = 4
# Bytes read at a time while hashing a file: large files never sit in memory whole.
hash_chunk_bytes = 1 << 20


@app.command()
def up(
    home: HomeOption = DEFAULT_HOME,
    port: Annotated[int, typer.Option(help="REST API port of the first node")] = DEFAULT_PORT,
    validators: Annotated[
        int | None, typer.Option(help="validators of a new chain (default 4, plus an observer)")
    ] = None,
    suite: Annotated[str, typer.Option(help="crypto suite for a new chain")] = DEFAULT_SUITE,
    observer: Annotated[
        bool,
        typer.Option(
            "--observer/--no-observer",
            help="a new chain of several validators gets the regulator's observer node",
        ),
    ] = True,
) -> None:
    """Run a local consortium in the foreground (created on first run, resumed after)."""
    consortium = Home(home)
    try:
        if not consortium.exists():
            genesis = create_demo_home(
                consortium,
                validators=validators or DEFAULT_VALIDATORS,
                suite_name=suite,
                observer=observer,
            )
            console.print(
                f"created consortium {genesis.chain_id} ({genesis.suite_name}) at {home}: "
                f"{len(genesis.orgs)} orgs, {len(genesis.validators)} validator(s)"
            )
        genesis = consortium.genesis()
        if validators is not None and validators != len(genesis.validators):
            raise fail(
                f"{home} holds a chain with {len(genesis.validators)} validator(s), not "
                f"{validators}; use another --home for a new chain",
                2,
            )
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    if len(genesis.validators) > 1:
        _run_consortium(consortium, port, genesis.chain_id)
        return

    def ready(node: Node) -> None:
        tip = node.app.tip()
        console.print(
            f"ready: chain {node.genesis.chain_id} genesis {node.app.genesis_hash} height "
            f"{tip.height}, API http://127.0.0.1:{port}"
        )
        sys.stdout.flush()
        _announce_demo(consortium, port)

    _run(consortium, genesis.validators[0].name, port, ready)


def _announce_demo(home: Home, port: int) -> None:
    """Record the demo journey in the background and print its scan page on a `demo:` line."""

    def seed() -> None:
        api = f"http://127.0.0.1:{port}"
        try:
            path = seed_demo(home, api)
        except (XinchainError, OSError, TimeoutError, httpx.HTTPError) as exc:
            errors.print(f"demo journey not recorded: {exc}")
            return
        console.print(f"demo: {api}{path}")
        sys.stdout.flush()

    first = home.genesis().validators[0].name
    console.print(f"console: http://127.0.0.1:{port}/copyright#token={home.gateway_token(first)}")
    sys.stdout.flush()

    threading.Thread(target=seed, name="demo", daemon=True).start()


def _run_consortium(consortium: Home, port: int, chain_id: str) -> None:
    def ready(nodes: list[tuple[str, int]]) -> None:
        listing = ", ".join(f"{name} http://127.0.0.1:{api}" for name, api in nodes)
        console.print(f"ready: chain {chain_id}, {len(nodes)} nodes: {listing}")
        sys.stdout.flush()
        _announce_demo(consortium, port)

    try:
        asyncio.run(run_consortium(consortium, port, ready))
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc


@app.command()
def node(
    home: HomeOption = DEFAULT_HOME,
    name: Annotated[str, typer.Option(help="node name under HOME/nodes")] = "validator-0",
    port: Annotated[int, typer.Option(help="REST API port")] = DEFAULT_PORT,
) -> None:
    """Run one node of a consortium in the foreground."""

    def ready(started: Node) -> None:
        console.print(f"ready: node {name} API http://127.0.0.1:{port}")
        sys.stdout.flush()

    _run(Home(home), name, port, ready)


def _run(home: Home, name: str, port: int, ready: object) -> None:
    try:
        asyncio.run(run_node(home, name, port, on_ready=ready))  # type: ignore[arg-type]
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except OSError as exc:
        raise fail(f"cannot serve on 127.0.0.1:{port}: {exc}", 2) from exc


@app.command()
def init(
    org: Annotated[str, typer.Option(help="this org's id (a-z 0-9 _ . -)")],
    node: Annotated[str, typer.Option("--node", help="name of this org's node")],
    home: HomeOption = DEFAULT_HOME,
    org_name: Annotated[str | None, typer.Option(help="display name of the org")] = None,
    roles: Annotated[str, typer.Option(help="comma-separated roles")] = "",
    validator: Annotated[bool, typer.Option(help="the node votes in consensus")] = False,
    suite: Annotated[str, typer.Option(help="crypto suite of the chain")] = DEFAULT_SUITE,
    p2p_host: Annotated[str, typer.Option(help="address peers reach this node at")] = "127.0.0.1",
    p2p_port: Annotated[int, typer.Option(help="P2P port")] = DEFAULT_PORT + 100,
    api_port: Annotated[int, typer.Option(help="REST API port")] = DEFAULT_PORT,
) -> None:
    """Create one org's keys, TLS CA and node in HOME, and its public member file."""
    try:
        init_member(
            Home(home),
            org=org,
            org_name=org_name or org,
            roles=tuple(role for role in roles.split(",") if role),
            node=node,
            validator=validator,
            suite_name=suite,
            p2p_host=p2p_host,
            p2p_port=p2p_port,
            api_port=api_port,
        )
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    console.print(f"initialised org {org} with node {node} in {home}")
    console.print(f"send {home / f'member-{org}.json'} to the consortium's coordinator")


@app.command()
def genesis(
    members: Annotated[list[Path], typer.Argument(help="member files from `xinchain init`")],
    chain_id: Annotated[str, typer.Option(help="name of the chain")],
    out: Annotated[Path, typer.Option(help="where to write genesis.json")] = Path("genesis.json"),
) -> None:
    """Assemble the genesis of a consortium from its members' files."""
    try:
        assembled = assemble_genesis(chain_id, members)
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    assembled.save(out)
    console.print(f"wrote {out}: genesis {assembled.hash_hex()}")


@app.command()
def peers(
    members: Annotated[list[Path], typer.Argument(help="member files of the consortium")],
    node: Annotated[str, typer.Option("--node", help="this org's node")],
    home: HomeOption = DEFAULT_HOME,
) -> None:
    """Point this org's node at every other member's node."""
    try:
        config = set_peers(Home(home), node, members)
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    listing = ", ".join(f"{name} {host}:{port}" for name, host, port in config.peers)
    console.print(f"{node} peers: {listing}")


@app.command()
def status(api: ApiOption = DEFAULT_API) -> None:
    """Print a node's view of the chain."""
    try:
        with Client(api) as client:
            console.print_json(json.dumps(client.status()))
    except (XinchainError, OSError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc


@notary_app.command("put")
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


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=False,
    )


def _notary_put(client: Client, home: Home, files: list[Path], out: Path, org: str | None) -> None:
    genesis = client.genesis()
    suite = genesis.suite
    sender = org or _default_org(home, [o.id for o in genesis.orgs])
    key = home.org_key(suite, sender)
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as progress:
        hashing = progress.add_task("hashing", total=len(files))
        digests = []
        for path in files:
            digests.append(_hash_file(suite, path))
            progress.advance(hashing)
        batches = [
            list(range(start, min(start + batch_hashes_max, len(files))))
            for start in range(0, len(files), batch_hashes_max)
        ]
        tip = client.status()["height"]
        anchoring = progress.add_task("anchoring", total=len(files))
        tx_ids = []
        for batch in batches:
            args: dict[str, object]
            if len(files) == 1:
                method, args = "anchor", {"hash": digests[0]}
            else:
                method, args = "anchor_batch", {"hashes": [digests[i] for i in batch]}
            tx = sign_transaction(
                suite,
                key,
                chain_id=genesis.chain_id,
                sender=sender,
                contract="notary",
                method=method,
                args=args,
                valid_until=tip + validity_blocks,
            )
            tx_ids.append(client.submit(tx))
        receipts_task = progress.add_task("receipts", total=len(files))
        for batch, tx_id in zip(batches, tx_ids, strict=True):
            answer = client.wait_committed(tx_id)
            if not answer["result"]["ok"]:
                raise ApiError(400, {"error": {"reason": answer["result"]["error"]}})
            progress.advance(anchoring, len(batch))
            receipts = build_receipts(client.proof(tx_id), [digests[i] for i in batch])
            for index, receipt in zip(batch, receipts, strict=True):
                target = out / f"{files[index].name}.receipt.json"
                target.write_text(json.dumps(receipt, indent=1, sort_keys=True) + "\n")
                progress.advance(receipts_task)
    console.print(
        f"anchored {len(files)} file(s) in {len(tx_ids)} transaction(s); receipts in {out}"
    )


def _default_org(home: Home, org_ids: list[str]) -> str:
    for org_id in org_ids:
        if home.org_key_path(org_id).exists():
            return org_id
    raise XinchainError(f"no member key under {home.path / 'keys'}; pass --as ORG", field="--as")


def _hash_file(suite: Suite, path: Path) -> bytes:
    with path.open("rb") as handle:
        return suite.hash_chunks(iter(lambda: handle.read(hash_chunk_bytes), b""))


def _contract_call(
    home: Path, api: str, org: str | None, contract: str, method: str, args: dict[str, Any]
) -> dict[str, Any]:
    consortium = Home(home)
    try:
        with Client(api) as client:
            genesis = client.genesis()
            sender = org or _default_org(consortium, [o.id for o in genesis.orgs])
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


@promo_app.command("open")
def promo_open(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    title: Annotated[str, typer.Option(help="what the promotion is")],
    gift: Annotated[str, typer.Option(help="the gift the winners get")],
    winners: Annotated[int, typer.Option(help="how many first buyers win")],
    minutes: Annotated[int, typer.Option(help="window length, starting now")] = 60,
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="the merchant org")] = None,
) -> None:
    """Open a "first N buyers get a gift" promotion as the merchant."""
    starts = int(time.time() * 1000)
    args = {
        "promo": promo,
        "title": title,
        "gift": gift,
        "winners": winners,
        "starts_ms": starts,
        "ends_ms": starts + minutes * 60_000,
    }
    result = _contract_call(home, api, org, "promo", "open", args)
    console.print(f"opened {promo} until {args['ends_ms']} ms in block {result['height']}")


@promo_app.command("order")
def promo_order(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    order_no: Annotated[str, typer.Option(help="the order number")],
    buyer: Annotated[str, typer.Option(help="buyer account, hashed with --salt, never sent")],
    salt: Annotated[str, typer.Option(help="the payment platform's salt for buyer hashes")],
    paid_ms: Annotated[int | None, typer.Option(help="payment time (default: now)")] = None,
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="the payment platform org")] = None,
) -> None:
    """Anchor one paid order as the payment platform (the buyer only as a salted hash)."""
    order = {
        "order_no": order_no,
        "paid_ms": paid_ms if paid_ms is not None else int(time.time() * 1000),
        "buyer_hash": hashlib.sha256(f"{salt}:{buyer}".encode()).hexdigest(),
        "buyer_mask": mask_buyer(buyer),
    }
    result = _contract_call(home, api, org, "promo", "order", {"promo": promo, "orders": [order]})
    console.print(f"anchored order {order_no} in block {result['height']}")


@promo_app.command("close")
def promo_close(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="any member org")] = None,
) -> None:
    """Close a promotion after its window: the chain ranks the orders and commits the list."""
    result = _contract_call(home, api, org, "promo", "close", {"promo": promo})
    console.print(f"closed {promo}: {result['size']} orders, ranking root {result['root']}")


@promo_app.command("rank")
def promo_rank_command(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    order_no: Annotated[str, typer.Argument(help="the order number")],
    receipt: Annotated[Path | None, typer.Option(help="write the rank receipt here")] = None,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Print an order's rank; with --receipt, save the receipt that proves it."""
    try:
        with Client(api) as client:
            rank = client.promo_rank(promo, order_no)
    except ApiError as exc:
        raise fail(exc.reason) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc
    state = "final" if rank["final"] else "provisional"
    won = "wins the gift" if rank["winner"] else "does not win"
    console.print(f"order {order_no} is No. {rank['rank']} of {rank['of']} ({state}); {won}")
    if receipt is not None:
        _download(f"{api}/v1/promos/{promo}/rank/{order_no}/receipt", receipt)


def mask_buyer(account: str) -> str:
    """`c***3`: first and last character of the account, the rest hidden."""
    return account[:1] + "***" + account[-1:] if len(account) > 1 else account + "***"


@trace_app.command("product")
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
    result = _contract_call(home, api, org, "provenance", "register_product", args)
    console.print(f"registered GTIN {gtin} in block {result['height']}")


@trace_app.command("import")
def trace_import(
    document: Annotated[Path, typer.Argument(help="EPCIS 2.0 JSON-LD document")],
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="member org recording the events")] = None,
) -> None:
    """Validate an EPCIS 2.0 document and record its events, all or none."""
    try:
        events = document_events_to_chain(document.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"cannot read {document}: {exc}", 2) from exc
    except XinchainError as exc:
        raise fail(f"{document.name} is refused: {exc}") from exc
    result = _contract_call(home, api, org, "provenance", "record_events", {"events": events})
    console.print(
        f"recorded {result['size']} event(s) from {document.name} in block {result['height']}"
    )


@trace_app.command("show")
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


@trace_app.command("export")
def trace_export(
    gtin: Annotated[str, typer.Argument(help="GTIN-14")],
    serial: Annotated[str, typer.Argument(help="serial number")],
    out: Annotated[Path, typer.Option("--out", help="where to write the EPCIS document")],
    api: ApiOption = DEFAULT_API,
) -> None:
    """Write an item's journey as an EPCIS 2.0 JSON-LD document."""
    _download(f"{api}/v1/provenance/items/{gtin}/{serial}/epcis", out)


@trace_app.command("qr")
def trace_qr(
    gtin: Annotated[str, typer.Argument(help="GTIN-14")],
    out: Annotated[Path, typer.Option("--out", help="file to write: .png, .svg or .pdf")],
    serial: Annotated[str | None, typer.Option(help="one item; without it, a sheet")] = None,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Write an item's QR code, or a printable sheet of a product's items' codes."""
    kind = out.suffix.lstrip(".").lower()
    if serial is None:
        _download(f"{api}/v1/provenance/products/{gtin}/sheet.{kind}?limit=500", out)
    else:
        _download(f"{api}/v1/provenance/items/{gtin}/{serial}/qr.{kind}", out)


def _download(url: str, out: Path) -> None:
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


@app.command()
def verify(
    receipt: Annotated[Path, typer.Argument(help="receipt JSON file, or evidence package (zip)")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="the file the receipt proves; for a receipt that carries a record, optional "
            "and then the record's canonical CBOR",
        ),
    ] = None,
    genesis_hash: Annotated[
        str | None,
        typer.Option("--genesis-hash", help="pin the chain: its genesis hash (any letter case)"),
    ] = None,
    trusted_chains: Annotated[
        Path | None,
        typer.Option(
            "--trusted-chains",
            help="pin the chain: a file of trusted genesis hashes, one '<hash> <name>' a line",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="also write a verification report: OUT.pdf or OUT.html"),
    ] = None,
) -> None:
    """Check offline that RECEIPT proves FILE (or the record it carries) was committed by the
    chain, or check an evidence package whole. Without --genesis-hash or --trusted-chains the
    chain is not pinned: the output says so and prints the genesis hash to compare."""
    if report is not None and report.suffix.lower() not in (".pdf", ".html"):
        raise fail(f"--report {report}: expected a file name ending in .pdf or .html")
    try:
        raw = receipt.read_bytes()
        trusted = (
            None
            if trusted_chains is None
            else load_trusted_chains(trusted_chains.read_text(encoding="utf-8"))
        )
        if raw.startswith(b"PK"):
            if report is not None:
                raise fail("--report is for a receipt; an evidence package has its report.html")
            _verify_package(raw, genesis_hash, trusted)
            return
        document = None if file is None else file.read_bytes()
        value = load_receipt_json(raw)
    except XinchainError as exc:
        _say(f"invalid: {exc.reason}")
        raise typer.Exit(1) from exc
    except (OSError, UnicodeDecodeError) as exc:
        _say(f"invalid: cannot read input: {exc}")
        raise typer.Exit(1) from exc
    verification = inspect_receipt(
        value, document, expected_genesis_hash=genesis_hash, trusted_chains=trusted
    )
    if report is not None:
        pin = (
            ["--genesis-hash", genesis_hash]
            if genesis_hash
            else ["--trusted-chains", str(trusted_chains)]
            if trusted_chains
            else []
        )
        _write_report(report, verification, receipt, file, pin)
    verified = verification.verified
    if verified is None:
        _say(f"invalid: {verification.reason}")
        raise typer.Exit(1)
    _say(f"valid: {_subject(verified, file)} ({verified.document_hash}) {_anchored(verified)}")
    _print_pinning(verified)


def _subject(verified: VerifiedReceipt, file: Path | None) -> str:
    """What a valid receipt proves, in a few words (the record's fields are checked by now)."""
    record = verified.record or {}
    if verified.record_kind == "event":
        return f"event {record['biz_step']} {record['event_id']}".strip()
    if verified.record_kind == "entry":
        return f"order {record['order_no']} at rank {record['rank']} of {record['promo']}"
    if verified.record_kind == "work":
        return f"work {record['title']!r}"
    if verified.record_kind == "evidence":
        return f"evidence of a copy at {record['url']}"
    return file.name if file is not None else "file"


def _write_report(
    out: Path,
    verification: Verification,
    receipt: Path,
    file: Path | None,
    pin: list[str],
) -> None:
    from xinchain.report import ReportInput, render_html, render_pdf  # loads fpdf2: only here

    command = ["xinchain", "verify", receipt.name]
    if file is not None:
        command += ["--file", file.name]
    # Only what the user pinned with: the receipt's own hash would make the repeat "pinned"
    # without anyone comparing it with the consortium's published one.
    command += pin or ["--genesis-hash", "<the consortium's published genesis hash>"]
    facts = ReportInput(
        verification=verification,
        receipt_name=receipt.name,
        document_name=file.name if file is not None else None,
        generated_ms=int(time.time() * 1000),
        command=" ".join(command),
    )
    try:
        rendered = render_pdf(facts) if out.suffix.lower() == ".pdf" else render_html(facts)
        out.write_bytes(rendered)
    except (OSError, XinchainError) as exc:
        reason = exc.reason if isinstance(exc, XinchainError) else str(exc)
        raise fail(f"cannot write the report {out}: {reason}") from exc
    _say(f"report: {out}")


def _print_pinning(verified: VerifiedReceipt) -> None:
    if verified.pinned:
        named = f" ({verified.pinned_name})" if verified.pinned_name else ""
        _say(f"pinned: genesis {verified.genesis_hash}{named}")
        return
    _say(
        f"not pinned: nothing was given to compare genesis {verified.genesis_hash} with. Anyone "
        "can start a chain with any name; compare this hash with the one the consortium "
        "publishes, or pass --genesis-hash or --trusted-chains."
    )


def _anchored(verified: VerifiedReceipt) -> str:
    when = datetime.fromtimestamp(verified.time_ms / 1000, UTC).isoformat(timespec="milliseconds")
    return (
        f"anchored by {verified.sender} at {when} in block {verified.height} of chain "
        f"{verified.chain_id} (genesis {verified.genesis_hash}), certified by "
        f"{verified.signers} of {verified.validators} validators"
    )


def _verify_package(raw: bytes, genesis_hash: str | None, trusted: dict[str, str] | None) -> None:
    checked = verify_package(raw, expected_genesis_hash=genesis_hash, trusted_chains=trusted)
    work, evidence = checked.work, checked.evidence
    owner = f"seller {work['seller']} of {work['org']}" if work["seller"] else work["org"]
    _say(f"valid: evidence package for work {work['title']!r} ({work['sha256']}) of {owner}")
    _say(f"  registration {_anchored(checked.work_receipt)}")
    _say(
        f"  copy at {evidence['url']} (PDQ distance {evidence['distance']}) "
        f"{_anchored(checked.evidence_receipt)}"
    )
    included = ", ".join(checked.files) or "none"
    _say(f"  files checked against the chain: {included}")
    _print_pinning(checked.work_receipt)


def _say(text: str) -> None:
    """Print verification output as plain text: receipts are untrusted, never console markup."""
    console.print(text, markup=False)


def main() -> None:
    app()
