"""`xinchain did` and `xinchain vc`: DIDs on chain and the credentials they issue, hold and
present (docs/did-method.md).

A DID's private keys stay with whoever controls it: `HOME/dids/<id>.json` holds them
({did, keys: {method id: privateKeyMultibase}, current}); the chain holds only the document.
Calls are signed by a member org whose key the home holds (`--as`), through the API of a node
of the home (`--node`).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import nacl.signing
import typer

from xinchain.apps.identity import status
from xinchain.apps.identity.contract import NAME, did_of
from xinchain.apps.identity.credentials import Refused, issue, present
from xinchain.apps.identity.dataintegrity import SigningKey, sign
from xinchain.apps.identity.multiformats import ED25519_PRIV, ED25519_PUB, multikey_encode
from xinchain.cli.common import DEFAULT_HOME, HomeOption, console, default_org, fail
from xinchain.client.sdk import ApiError, Client, Member
from xinchain.errors import XinchainError
from xinchain.node.home import Home

did_cli = typer.Typer(no_args_is_help=True, help="DIDs on chain (did:xin): create, show, rotate.")
vc_cli = typer.Typer(no_args_is_help=True, help="Verifiable credentials: issue, verify, revoke.")
NodeOption = Annotated[str, typer.Option("--node", help="the node whose API is used")]
OrgOption = Annotated[str | None, typer.Option("--as", help="member org that signs the call")]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _api(home: Path, node: str) -> str:
    config = Home(home).node_config(node)
    if config is None:
        raise fail(f"{home}/nodes/{node} holds no node.json", 2)
    return f"http://127.0.0.1:{config.api_port}"


def _wallet_path(home: Path, identifier: str) -> Path:
    return home / "dids" / f"{identifier}.json"


def _save_wallet(home: Path, identifier: str, wallet: dict[str, Any]) -> None:
    path = _wallet_path(home, identifier)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(wallet, handle, indent=2)


def _wallet(home: Path, identifier: str) -> dict[str, Any]:
    path = _wallet_path(home, identifier)
    if not path.exists():
        raise fail(f"{path} does not exist: this home holds no keys of DID {identifier!r}", 2)
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _signing_key(wallet: dict[str, Any]) -> SigningKey:
    method = wallet["current"]
    return SigningKey.from_multibase(wallet["keys"][method], method)


def _new_key(did: str, number: int) -> tuple[str, str, str]:
    """(method id, publicKeyMultibase, privateKeyMultibase) of a fresh Ed25519 key."""
    key = nacl.signing.SigningKey.generate()
    public = multikey_encode(ED25519_PUB, bytes(key.verify_key))
    return f"{did}#key-{number}", public, multikey_encode(ED25519_PRIV, bytes(key))


def _document(did: str, method: str, public: str, services: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": did,
        "verificationMethod": [
            {"id": method, "type": "Multikey", "controller": did, "publicKeyMultibase": public}
        ],
        "authentication": [method],
        "assertionMethod": [method],
        "capabilityInvocation": [method],
    }
    if services:
        document["service"] = services
    return document


def _call(
    home: Path, node: str, org: str | None, method: str, args: dict[str, Any]
) -> dict[str, Any]:
    consortium = Home(home)
    try:
        with Client(_api(home, node)) as client:
            genesis = client.genesis()
            signer = org or default_org(consortium, [o.id for o in genesis.orgs])
            member = Member(genesis, signer, consortium.org_key(genesis.suite, signer))
            return client.member_call(member, NAME, method, args)
    except ApiError as exc:
        raise fail(f"the chain refused: {exc}") from exc
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except httpx.HTTPError as exc:
        raise fail(f"node {node}: {exc}") from exc


def _chain_id(home: Path) -> str:
    return Home(home).genesis().chain_id


def _print(value: Any) -> None:
    console.print_json(json.dumps(value, ensure_ascii=False))


@did_cli.command("create")
def did_create(
    identifier: Annotated[str, typer.Argument(help="the DID's id: did:xin:<chain>:<id>")],
    service: Annotated[
        list[str] | None, typer.Option(help="a shop URL to list as a service (repeatable)")
    ] = None,
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
    org: OrgOption = None,
) -> None:
    """Make a key, keep it in HOME/dids/ID.json, and register the DID document on chain with
    ORG as its registrar."""
    did = did_of(_chain_id(home), identifier)
    if _wallet_path(home, identifier).exists():
        raise fail(f"{_wallet_path(home, identifier)} exists: DID {identifier!r} has keys here", 2)
    method, public, private = _new_key(did, 1)
    services = [
        {"id": f"{did}#shop-{n}", "type": "LinkedDomains", "serviceEndpoint": url}
        for n, url in enumerate(service or [], start=1)
    ]
    _save_wallet(home, identifier, {"did": did, "keys": {method: private}, "current": method})
    answer = _call(
        home,
        node,
        org,
        "did_create",
        {"id": identifier, "document": _document(did, method, public, services)},
    )
    _print({"did": did, "version": answer["version"], "keys": str(_wallet_path(home, identifier))})


@did_cli.command("show")
def did_show(
    did: Annotated[str, typer.Argument(help="a did:xin or did:key")],
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
) -> None:
    """Resolve DID: its document and metadata (or the resolution error)."""
    try:
        answer = httpx.get(f"{_api(home, node)}/v1/identity/dids/{did}", timeout=30).json()
    except httpx.HTTPError as exc:
        raise fail(f"node {node}: {exc}") from exc
    _print(answer)
    if answer["didResolutionMetadata"].get("error"):
        raise typer.Exit(1)


@did_cli.command("rotate")
def did_rotate(
    identifier: Annotated[str, typer.Argument(help="the DID's id")],
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
    org: OrgOption = None,
) -> None:
    """Replace the DID's key: the new document is signed by the current key."""
    wallet = _wallet(home, identifier)
    did = wallet["did"]
    resolved = httpx.get(f"{_api(home, node)}/v1/identity/dids/{did}", timeout=30).json()
    version = int(resolved["didDocumentMetadata"]["versionId"])
    services = resolved["didDocument"].get("service", [])
    method, public, private = _new_key(did, len(wallet["keys"]) + 1)
    document = _document(did, method, public, services)
    statement = {"did": did, "document": document, "version": version}
    proof = sign(
        statement, _signing_key(wallet), created=_now(), proof_purpose="capabilityInvocation"
    )["proof"]
    answer = _call(
        home, node, org, "did_update", {"did": did, "document": document, "proof": proof}
    )
    wallet["keys"][method] = private
    wallet["current"] = method
    _save_wallet(home, identifier, wallet)
    _print({"did": did, "key": method, "version": answer["version"]})


@did_cli.command("deactivate")
def did_deactivate(
    identifier: Annotated[str, typer.Argument(help="the DID's id")],
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
    org: OrgOption = None,
) -> None:
    """Deactivate the DID (signed by its current key): nothing it signed verifies after."""
    wallet = _wallet(home, identifier)
    did = wallet["did"]
    resolved = httpx.get(f"{_api(home, node)}/v1/identity/dids/{did}", timeout=30).json()
    statement = {
        "did": did,
        "deactivate": True,
        "version": int(resolved["didDocumentMetadata"]["versionId"]),
    }
    proof = sign(
        statement, _signing_key(wallet), created=_now(), proof_purpose="capabilityInvocation"
    )["proof"]
    _print(_call(home, node, org, "did_deactivate", {"did": did, "proof": proof}))


@vc_cli.command("issue")
def vc_issue(
    issuer: Annotated[str, typer.Option(help="the issuing DID's id (its keys in HOME/dids)")],
    subject: Annotated[str, typer.Option(help="the subject's DID")],
    credential_type: Annotated[str, typer.Option("--type", help="e.g. MerchantCredential")],
    out: Annotated[Path, typer.Option(help="where to write the credential")],
    claims: Annotated[str, typer.Option(help="the subject's claims, a JSON object")] = "{}",
    status_list: Annotated[str, typer.Option(help="the issuer's revocation list")] = "revocation",
    index: Annotated[int | None, typer.Option(help="the credential's place in the lists")] = None,
    valid_until: Annotated[str | None, typer.Option(help="an XML Schema dateTimeStamp")] = None,
    home: HomeOption = DEFAULT_HOME,
) -> None:
    """Issue a credential to SUBJECT, signed with the issuer DID's key (eddsa-jcs-2022)."""
    wallet = _wallet(home, issuer)
    try:
        extra = json.loads(claims)
    except ValueError as exc:
        raise fail(f"--claims is not JSON: {exc}", 2) from None
    credential: dict[str, Any] = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            {
                credential_type: f"https://xinchain.example/ns#{credential_type}",
                "@vocab": "https://xinchain.example/ns#",
            },
        ],
        "type": ["VerifiableCredential", credential_type],
        "issuer": wallet["did"],
        "validFrom": _now(),
        "credentialSubject": {"id": subject, **extra},
    }
    if valid_until:
        credential["validUntil"] = valid_until
    if index is not None:
        credential["credentialStatus"] = {
            "type": status.ENTRY_TYPE,
            "statusPurpose": "revocation",
            "statusListIndex": str(index),
            "statusListCredential": status.status_url(wallet["did"], status_list),
        }
    try:
        issued = issue(credential, _signing_key(wallet), _now())
    except Refused as exc:
        raise fail(exc.reason, 2) from None
    out.write_text(json.dumps(issued, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"credential: {out}")


@vc_cli.command("present")
def vc_present(
    holder: Annotated[str, typer.Option(help="the holder DID's id (its keys in HOME/dids)")],
    challenge: Annotated[str, typer.Option(help="the verifier's challenge")],
    domain: Annotated[str, typer.Option(help="the verifier's domain")],
    credentials: Annotated[list[Path], typer.Argument(help="credential files")],
    out: Annotated[Path, typer.Option(help="where to write the presentation")],
    home: HomeOption = DEFAULT_HOME,
) -> None:
    """Present CREDENTIALS to a verifier, bound to its challenge and domain."""
    wallet = _wallet(home, holder)
    held = [json.loads(path.read_text(encoding="utf-8")) for path in credentials]
    shown = present(
        held,
        wallet["did"],
        _signing_key(wallet),
        challenge=challenge,
        domain=domain,
        created=_now(),
    )
    out.write_text(json.dumps(shown, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(f"presentation: {out}")


@vc_cli.command("verify")
def vc_verify(
    file: Annotated[Path, typer.Argument(help="a credential or a presentation (JSON)")],
    challenge: Annotated[
        str | None, typer.Option(help="the challenge a presentation answers")
    ] = None,
    domain: Annotated[str | None, typer.Option(help="the domain a presentation is for")] = None,
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
) -> None:
    """Verify against the chain's DID documents, issuer registry and status lists; exit 1 and
    the reason when refused."""
    value = json.loads(file.read_text(encoding="utf-8"))
    presentation = "VerifiablePresentation" in (value.get("type") or [])
    body: dict[str, Any] = (
        {"verifiablePresentation": value, "challenge": challenge, "domain": domain}
        if presentation
        else {"verifiableCredential": value}
    )
    answer = httpx.post(f"{_api(home, node)}/v1/identity/verify", json=body, timeout=30).json()
    _print(answer)
    if not answer.get("verified"):
        raise typer.Exit(1)


@vc_cli.command("revoke")
def vc_revoke(
    index: Annotated[int, typer.Option(help="the credential's place in the list")],
    status_list: Annotated[str, typer.Option(help="the list's name")] = "revocation",
    suspend: Annotated[bool, typer.Option("--suspend", help="a suspension list")] = False,
    restore: Annotated[bool, typer.Option("--restore", help="clear the bit instead")] = False,
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
    org: OrgOption = None,
) -> None:
    """Set (or clear) a credential's bit in one of ORG's status lists and publish the list."""
    consortium = Home(home)
    signer = org or default_org(consortium, [o.id for o in consortium.genesis().orgs])
    purpose = "suspension" if suspend else "revocation"
    current = httpx.get(
        f"{_api(home, node)}/v1/identity/status/{signer}/{status_list}", timeout=30
    ).json()
    bits = status.decode(current["encodedList"]) if current.get("found") else status.empty()
    status.set_bit(bits, index, not restore)
    answer = _call(
        home,
        node,
        signer,
        "status_publish",
        {
            "list": status_list,
            "purpose": purpose,
            "encoded": status.encode(bits),
            "previous": int(current.get("height", 0)),
        },
    )
    _print(
        {
            "org": signer,
            "list": status_list,
            "index": index,
            "set": not restore,
            "height": answer["height"],
        }
    )


@vc_cli.command("authorise")
def vc_authorise(
    credential_type: Annotated[str, typer.Option("--type", help="e.g. MerchantCredential")],
    orgs: Annotated[str, typer.Option(help="comma-separated orgs that may issue it")],
    home: HomeOption = DEFAULT_HOME,
    node: NodeOption = "validator-0",
) -> None:
    """Propose by governance that ORGS (and no other) issue TYPE, and approve it with every
    org key this home holds (each org approves on its own in a consortium)."""
    consortium = Home(home)
    try:
        with Client(_api(home, node)) as client:
            genesis = client.genesis()
            current = httpx.get(f"{_api(home, node)}/v1/identity/issuers", timeout=30).json()
            registry = {**current["issuers"], credential_type: [o for o in orgs.split(",") if o]}
            action = {"kind": "set_config", "contract": NAME, "key": "issuers", "value": registry}
            held = [o.id for o in genesis.orgs if consortium.org_key_path(o.id).exists()]
            if not held:
                raise XinchainError(f"no member key under {home / 'keys'}", field="--home")
            members = [Member(genesis, org, consortium.org_key(genesis.suite, org)) for org in held]
            answer = client.member_call(members[0], "governance", "propose", {"action": action})
            for member in members[1:]:
                if answer["executed"]:
                    break
                answer = client.member_call(
                    member, "governance", "approve", {"proposal": answer["proposal"]}
                )
    except ApiError as exc:
        raise fail(f"the chain refused: {exc}") from exc
    except (XinchainError, httpx.HTTPError) as exc:
        raise fail(str(exc), 2) from exc
    _print({"issuers": registry, "executed": answer["executed"]})


def seed_demo(home: Home, api_url: str) -> str:
    """`xinchain up`'s demo: a DID for every org of the home that runs no node here (an org's
    node registers its own), and platform authorised to issue MerchantCredential; the console
    page's path."""
    genesis = home.genesis()
    with_nodes = {v.org for v in genesis.validators} | {n.org for n in genesis.nodes}
    with Client(api_url) as client:
        for org in genesis.orgs:
            if org.id in with_nodes or not home.org_key_path(org.id).exists():
                continue
            did = did_of(genesis.chain_id, org.id)
            resolved = client.get_json(f"/v1/identity/dids/{did}")
            if resolved["didDocument"] is not None or _wallet_path(home.path, org.id).exists():
                continue
            method, public, private = _new_key(did, 1)
            _save_wallet(
                home.path, org.id, {"did": did, "keys": {method: private}, "current": method}
            )
            member = Member(genesis, org.id, home.org_key(genesis.suite, org.id))
            client.member_call(
                member,
                NAME,
                "did_create",
                {"id": org.id, "document": _document(did, method, public, [])},
            )
        registry = client.get_json("/v1/identity/issuers")["issuers"]
        if "platform" not in registry.get("MerchantCredential", []):
            action = {
                "kind": "set_config",
                "contract": NAME,
                "key": "issuers",
                "value": {**registry, "MerchantCredential": ["platform"]},
            }
            members = [
                Member(genesis, o.id, home.org_key(genesis.suite, o.id))
                for o in genesis.orgs
                if home.org_key_path(o.id).exists()
            ]
            answer = client.member_call(members[0], "governance", "propose", {"action": action})
            for member in members[1:]:
                if answer["executed"]:
                    break
                answer = client.member_call(
                    member, "governance", "approve", {"proposal": answer["proposal"]}
                )
    return "/identity"
