"""The `xinchain` command line.

Exit codes: 0 success; 1 the thing asked for failed (a receipt is invalid, a transaction was
refused); 2 the command was used wrongly or its inputs are missing or malformed.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from xinchain.apps.registry import APPS, RECEIPT_KINDS
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
from xinchain.cli.private import audit_cli, private_cli
from xinchain.client.sdk import Client
from xinchain.crypto import DEFAULT_SUITE
from xinchain.errors import DiskFull, XinchainError
from xinchain.node.home import Home, assemble_genesis, create_demo_home, init_member, set_peers
from xinchain.node.node import Node
from xinchain.node.run import run_node
from xinchain.node.supervisor import run_consortium
from xinchain.receipt import (
    Verification,
    VerifiedReceipt,
    anchoring_text,
    inspect_receipt,
    load_receipt_json,
    load_trusted_chains,
    pinning_text,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="xinchain: a consortium chain.")
for spec in APPS:
    if spec.cli is not None:
        app.add_typer(spec.cli, name=spec.cli_name)
    for group_name, group in spec.more_cli:
        app.add_typer(group, name=group_name)
app.add_typer(private_cli, name="private")
app.add_typer(audit_cli, name="audit")

# A new local consortium tolerates one faulty validator: n = 3f + 1 with f = 1.
DEFAULT_VALIDATORS = 4


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
    restart: Annotated[
        bool,
        typer.Option(
            "--restart/--no-restart",
            help="start a node that exits again, after a backoff (1 s doubling to 30 s)",
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
        _run_consortium(consortium, port, genesis.chain_id, restart)
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
        for spec in APPS:
            if spec.demo is None:
                continue
            try:
                path = spec.demo(home, api)
            except (XinchainError, OSError, TimeoutError, httpx.HTTPError) as exc:
                errors.print(f"demo of {spec.name} not recorded: {exc}")
                continue
            console.print(f"demo: {api}{path}")
            sys.stdout.flush()

    first = home.genesis().validators[0].name
    for spec in APPS:
        if spec.console_page:
            token = home.gateway_token(first)
            console.print(f"console: http://127.0.0.1:{port}{spec.console_page}#token={token}")
    sys.stdout.flush()

    threading.Thread(target=seed, name="demo", daemon=True).start()


def _run_consortium(consortium: Home, port: int, chain_id: str, restart: bool) -> None:
    def ready(nodes: list[tuple[str, int]]) -> None:
        listing = ", ".join(f"{name} http://127.0.0.1:{api}" for name, api in nodes)
        console.print(f"ready: chain {chain_id}, {len(nodes)} nodes: {listing}")
        sys.stdout.flush()
        _announce_demo(consortium, port)

    try:
        asyncio.run(run_consortium(consortium, port, ready, restart=restart))
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
        asyncio.run(run_node(home, name, port, APPS, on_ready=ready))  # type: ignore[arg-type]
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except DiskFull as exc:
        raise fail(f"node {name} stopped: {exc}", 3) from exc
    except OSError as exc:
        hint = {
            errno.EADDRINUSE: f"port {port} (or its P2P port) is taken by another process",
            errno.EMFILE: "too many open files: raise the limit (ulimit -n, LimitNOFILE=)",
            errno.EACCES: f"no permission to listen on port {port}",
        }.get(exc.errno or 0, "an operating-system error")
        raise fail(f"node {name} stopped: {hint}: {exc}", 2) from exc


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
        value,
        document,
        kinds=RECEIPT_KINDS,
        expected_genesis_hash=genesis_hash,
        trusted_chains=trusted,
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
    _say(f"valid: {_subject(verified, file)} ({verified.document_hash}) {anchoring_text(verified)}")
    _say(pinning_text(verified))


def _subject(verified: VerifiedReceipt, file: Path | None) -> str:
    """What a valid receipt proves, in a few words (the record's fields are checked by now)."""
    if verified.kind is not None and verified.record is not None:
        return verified.kind.subject(verified.record)
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


def _verify_package(raw: bytes, genesis_hash: str | None, trusted: dict[str, str] | None) -> None:
    """A zip is an app's package: the app whose check accepts it says what it holds."""
    checks = [(app.name, app.package) for app in APPS if app.package is not None]
    if not checks:
        raise fail("this is a zip file, and no app of this build checks packages")
    reasons = []
    for name, check in checks:
        try:
            lines = check(raw, genesis_hash, trusted)
        except XinchainError as exc:
            reasons.append((name, exc))
            continue
        for line in lines:
            _say(line)
        return
    if len(reasons) == 1:
        raise reasons[0][1]
    said = "; ".join(f"{name}: {exc.reason}" for name, exc in reasons)
    raise XinchainError(f"no app accepts this package ({said})")


def _say(text: str) -> None:
    """Print verification output as plain text: receipts are untrusted, never console markup."""
    console.print(text, markup=False)


def main() -> None:
    app()
