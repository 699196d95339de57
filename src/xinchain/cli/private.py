"""`xinchain private` and `xinchain audit`: private data through one node's gateway, acting for
that node's org (docs/private-data.md).

The node is named in a consortium home (`--home`, `--node`): its API address comes from its
node.json and its gateway token from the home, as the console's does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from xinchain.cli.common import DEFAULT_HOME, HomeOption, console, fail
from xinchain.client.sdk import ApiError, Client, Member
from xinchain.contracts.governance import approvals_needed
from xinchain.errors import XinchainError
from xinchain.node.home import Home
from xinchain.private.crypto import EncryptionKey, Keyring

private_cli = typer.Typer(no_args_is_help=True, help="Private data sealed to named orgs.")
audit_cli = typer.Typer(no_args_is_help=True, help="The regulator's audit of private data.")
NodeOption = Annotated[str, typer.Option("--node", help="the node whose gateway acts for its org")]
DEFAULT_NODE = "validator-0"


def _gateway(home: Path, node: str) -> tuple[str, dict[str, str]]:
    consortium = Home(home)
    config = consortium.node_config(node)
    if config is None:
        raise XinchainError(f"{consortium.node_dir(node)} holds no node.json", field="--node")
    token = consortium.gateway_token(node)
    return f"http://127.0.0.1:{config.api_port}", {"Authorization": f"Bearer {token}"}


def _request(home: Path, node: str, method: str, path: str, **kwargs: Any) -> Any:
    try:
        api, headers = _gateway(home, node)
        response = httpx.request(method, api + path, headers=headers, timeout=90.0, **kwargs)
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except httpx.HTTPError as exc:
        raise fail(f"node {node}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        raise fail(f"node {node} answered {response.status_code}: {response.text[:200]}") from None
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        where = f" ({error['field']})" if error.get("field") else ""
        raise fail(f"{response.status_code} {error.get('code')}: {error.get('reason')}{where}")
    return body


def _print(value: Any) -> None:
    console.print_json(json.dumps(value, ensure_ascii=False))


@private_cli.command("collections")
def collections(home: HomeOption = DEFAULT_HOME, node: NodeOption = DEFAULT_NODE) -> None:
    """List the chain's collections: members, readers and their key ids, block_to_live."""
    _print(_request(home, node, "GET", "/v1/private/collections"))


@private_cli.command("put")
def put(
    collection: Annotated[str, typer.Argument(help="the collection")],
    key: Annotated[str, typer.Argument(help="the record's key")],
    value: Annotated[str, typer.Argument(help="the value: a JSON object, or @FILE")],
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Seal VALUE to COLLECTION's readers as the node's org and commit its hash."""
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise fail(f"the value is not JSON: {exc}", 2) from None
    path = f"/v1/private/{collection}/records/{key}"
    _print(_request(home, node, "PUT", path, json={"value": parsed}))


@private_cli.command("get")
def get(
    collection: Annotated[str, typer.Argument(help="the collection")],
    key: Annotated[str, typer.Argument(help="the record's key")],
    version: Annotated[int | None, typer.Option(help="an earlier version")] = None,
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """The record, opened for the node's org (refused if the org does not read it)."""
    params = {} if version is None else {"version": version}
    _print(_request(home, node, "GET", f"/v1/private/{collection}/records/{key}", params=params))


@private_cli.command("receipt")
def receipt(
    collection: Annotated[str, typer.Argument(help="the collection")],
    key: Annotated[str, typer.Argument(help="the record's key")],
    out: Annotated[Path, typer.Option("--out", help="where to write the receipt")],
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Write the record's receipt (it reveals the record to whoever holds it); check it with
    `xinchain verify OUT`."""
    found = _request(home, node, "GET", f"/v1/private/{collection}/receipts/{key}")
    out.write_text(json.dumps(found, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"receipt: {out}")


@private_cli.command("define")
def define(
    name: Annotated[str, typer.Argument(help="the collection's name")],
    members: Annotated[str, typer.Option(help="comma-separated member orgs")],
    regulator: Annotated[
        bool, typer.Option("--regulator/--no-regulator", help="the regulator reads it")
    ] = True,
    block_to_live: Annotated[int, typer.Option(help="blocks before a purge; 0 keeps")] = 0,
    writers: Annotated[str, typer.Option(help="comma-separated writers (default: members)")] = "",
    org: Annotated[str | None, typer.Option("--as", help="the proposing org")] = None,
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = DEFAULT_NODE,
) -> None:
    """Propose the collection by governance and approve it with every other org whose key this
    home holds (a demo home holds them all; in a consortium each org approves on its own)."""
    action = {
        "kind": "set_collection",
        "name": name,
        "members": [item for item in members.split(",") if item],
        "regulator_reads": regulator,
        "block_to_live": block_to_live,
        "writers": [item for item in writers.split(",") if item],
    }
    consortium = Home(home)
    try:
        api, _ = _gateway(home, node)
        with Client(api) as client:
            genesis = client.genesis()
            held = [o.id for o in genesis.orgs if consortium.org_key_path(o.id).exists()]
            if not held:
                raise XinchainError(f"no member key under {home / 'keys'}", field="--as")
            proposer = org or held[0]
            signers = [proposer, *[other for other in held if other != proposer]]
            suite = genesis.suite
            first = Member(genesis, proposer, consortium.org_key(suite, proposer))
            answer = client.member_call(first, "governance", "propose", {"action": action})
            number = answer["proposal"]
            needed = approvals_needed(len(genesis.orgs))
            for other in signers[1:]:
                if answer["executed"] or needed <= 1:
                    break
                member = Member(genesis, other, consortium.org_key(suite, other))
                answer = client.member_call(member, "governance", "approve", {"proposal": number})
    except ApiError as exc:
        raise fail(f"the chain refused: {exc}") from exc
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except httpx.HTTPError as exc:
        raise fail(str(exc)) from exc
    _print({"proposal": number, **answer})


@audit_cli.command("search")
def search(
    org: Annotated[str | None, typer.Option("--org", help="the writing org")] = None,
    contract: Annotated[str | None, typer.Option(help="the app it was written for")] = None,
    collection: Annotated[str | None, typer.Option(help="the collection")] = None,
    from_ms: Annotated[int | None, typer.Option(help="from this block time (ms)")] = None,
    to_ms: Annotated[int | None, typer.Option(help="to this block time (ms)")] = None,
    counterparty: Annotated[str | None, typer.Option(help="a party the value names")] = None,
    home: HomeOption = DEFAULT_HOME,
    node: Annotated[str, typer.Option("--node", help="the regulator's node")] = "observer",
) -> None:
    """Search every record sealed to the regulator; the search is logged on chain first."""
    params = {
        name: value
        for name, value in (
            ("org", org),
            ("contract", contract),
            ("collection", collection),
            ("from_ms", from_ms),
            ("to_ms", to_ms),
            ("counterparty", counterparty),
        )
        if value is not None
    }
    _print(_request(home, node, "GET", "/v1/audit/search", params=params))


@audit_cli.command("log")
def log(home: HomeOption = DEFAULT_HOME, node: NodeOption = DEFAULT_NODE) -> None:
    """Every audit read on chain: who searched for what, when, and the records shown."""
    _print(_request(home, node, "GET", "/v1/audit/log"))


@private_cli.command("rotate-key")
def rotate_key(
    org: Annotated[str, typer.Option("--org", help="the org whose key is rotated")],
    home: HomeOption = DEFAULT_HOME,
) -> None:
    """Make ORG a new encryption key (HOME/keys/ORG.enc/); its nodes register it on chain within
    seconds, and records written from then on are sealed to it. Older keys stay, so that what
    was sealed to them stays readable to the org."""
    consortium = Home(home)
    if not consortium.org_key_path(org).exists():
        raise fail(f"{home} holds no key of org {org!r}", 2)
    key = EncryptionKey.generate()
    path = Keyring(consortium.path / "keys" / f"{org}.enc").add(key)
    _print({"org": org, "kid": key.kid, "public": key.public.hex(), "file": str(path)})
