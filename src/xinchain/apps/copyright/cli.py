"""`xinchain copyright`: register photos, search for copies, record and export evidence."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from xinchain.apps.copyright.contract import NAME, works_per_tx_max
from xinchain.apps.copyright.evidence import build_package
from xinchain.apps.copyright.matching import copy_evidence
from xinchain.apps.copyright.perceptual import (
    ImageInvalid,
    match_distance_max,
    quality_min,
    work_hashes,
)
from xinchain.apps.copyright.receipts import COPYRIGHT_RECEIPTS
from xinchain.cli.common import (
    DEFAULT_API,
    DEFAULT_HOME,
    ApiOption,
    HomeOption,
    console,
    errors,
    fail,
)
from xinchain.client.sdk import ApiError, Client, Member
from xinchain.errors import XinchainError
from xinchain.genesis import Genesis
from xinchain.node.home import Home
from xinchain.receipt import verify_receipt

# Works a registration transaction carries: with its local features a work's arguments are
# about 5 KB, so 128 of them stay well inside the 1 MiB transaction (the contract takes 256).
register_batch_max = works_per_tx_max // 2

copyright_app = typer.Typer(
    no_args_is_help=True, help="Sellers' photos: register, find copies, record and export evidence."
)
OrgOption = Annotated[str | None, typer.Option("--as", help="member org that signs")]


def _run(api: str, action: Any) -> Any:
    try:
        with Client(api) as client:
            return action(client)
    except ApiError as exc:
        raise fail(f"the node refused: {exc}") from exc
    except XinchainError as exc:
        raise fail(str(exc), 2) from exc
    except (OSError, TimeoutError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc


def _signer(client: Client, home: Path, org: str | None) -> tuple[Genesis, str, Any]:
    genesis = client.genesis()
    consortium = Home(home)
    if org is None:
        org = next((o.id for o in genesis.orgs if consortium.org_key_path(o.id).exists()), None)
        if org is None:
            raise XinchainError(f"no member key under {home / 'keys'}; pass --as ORG", field="--as")
    return genesis, org, consortium.org_key(genesis.suite, org)


def _submit(
    client: Client, genesis: Genesis, org: str, key: Any, method: str, args: dict[str, Any]
) -> dict[str, Any]:
    return client.member_call(Member(genesis, org, key), NAME, method, args)


def _get(client: Client, path: str) -> Any:
    return client.get_json(path)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


@copyright_app.command("register")
def register(
    images: Annotated[list[Path], typer.Argument(help="image files to register")],
    out: Annotated[Path, typer.Option("--out", help="directory for the receipts")],
    title: Annotated[
        str | None, typer.Option("--title", help="title (default: each file's name)")
    ] = None,
    seller: Annotated[
        str,
        typer.Option(
            "--seller",
            help="seller the signing platform vouches for: its id, or its did:xin",
        ),
    ] = "",
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: OrgOption = None,
) -> None:
    """Register IMAGES (hashes only leave this machine); write OUT/<name>.work.json each."""
    names = [path.name for path in images]
    if len(set(names)) != len(names):
        raise fail("two images share a name; their receipts would overwrite each other", 2)
    works = []
    try:
        for path in images:
            hashes = work_hashes(path.read_bytes())
            if hashes.pdq.quality < quality_min:
                errors.print(
                    f"warning: {path.name} has PDQ quality {hashes.pdq.quality} (below "
                    f"{quality_min}): too little detail for copies of it to be found reliably"
                )
            works.append(hashes.work_args(title or path.stem[:200] or path.name, seller))
    except ImageInvalid as exc:
        raise fail(f"{path}: {exc.reason}", 2) from exc
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}", 2) from exc

    def act(client: Client) -> None:
        genesis, sender, key = _signer(client, home, org)
        out.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(works), register_batch_max):
            batch = works[start : start + register_batch_max]
            answer = _submit(client, genesis, sender, key, "register", {"works": batch})
            for offset, item in enumerate(batch):
                receipt = _get(client, f"/v1/copyright/works/{item['sha256']}/receipt")
                verify_receipt(
                    receipt,
                    None,
                    kinds=COPYRIGHT_RECEIPTS,
                    expected_genesis_hash=genesis.hash_hex(),
                )
                _write_json(out / f"{images[start + offset].name}.work.json", receipt)
            console.print(
                f"registered {len(batch)} work(s) in block {answer['height']} as {sender}"
                + (f" for seller {seller}" if seller else "")
            )

    _run(api, act)
    for item, path in zip(works, images, strict=True):
        console.print(f"{path.name}: sha256 {item['sha256']} pdq {item['pdq']} q{item['quality']}")


@copyright_app.command("search")
def search(
    image: Annotated[Path, typer.Argument(help="the image to look for")],
    distance_max: Annotated[
        int, typer.Option("--distance-max", help="largest PDQ distance that counts as a match")
    ] = match_distance_max,
    api: ApiOption = DEFAULT_API,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Find registered works that IMAGE copies (resized, recompressed, cropped, mirrored,
    bannered, screenshotted, turned...), and say how each was found."""
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {image}: {exc.strerror}", 2) from exc

    def act(client: Client) -> Any:
        return client.post_bytes(
            "/v1/copyright/images/search", data, params={"distance_max": distance_max}
        )

    answer = _run(api, act)
    if as_json:
        console.print_json(json.dumps(answer, ensure_ascii=False))
        return
    query = answer["query"]
    console.print(f"{image.name}: pdq {query['pdq']} quality {query['quality']}")
    if answer["exact"]:
        console.print(f"  exact copy of work {answer['exact']['sha256']}")
    if not answer["matches"]:
        console.print(
            f"  no registered work within distance {distance_max}, nor one whose points it shows"
        )
    for found in answer["matches"]:
        record = found["work"]
        owner = record["seller"] or record["org"]
        how = []
        if "hash" in found["found_by"]:
            how.append(f"hash: distance {found['distance']} ({found['orientation']})")
        if "features" in found["found_by"]:
            how.append(f"features: {found['inliers']} of its {found['points']} points in place")
        console.print(
            f"  {'; '.join(how)}: {record['title']!r} of {owner}, sha256 {record['sha256']}"
        )


@copyright_app.command("evidence")
def evidence(
    work: Annotated[str, typer.Option("--work", help="SHA-256 of the registered work")],
    url: Annotated[str, typer.Option("--url", help="where the copy was found")],
    files: Annotated[list[Path], typer.Argument(help="captured files: the copy, a page, ...")],
    out: Annotated[Path, typer.Option("--out", help="directory for the receipt")],
    captured_at: Annotated[
        str | None, typer.Option("--captured-at", help="ISO 8601 capture time (default: now)")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="a short note")] = "",
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: OrgOption = None,
) -> None:
    """Record FILES captured at URL as evidence of a copy of WORK; the first image among them
    is hashed with PDQ and its distance to the work goes on chain."""
    try:
        captured_ms = (
            int(time.time() * 1000)
            if captured_at is None
            else int(datetime.fromisoformat(captured_at).timestamp() * 1000)
        )
    except ValueError as exc:
        raise fail(f"--captured-at: expected an ISO 8601 time, found {captured_at!r}", 2) from exc
    contents: dict[str, bytes] = {}
    try:
        for path in files:
            if path.name in contents:
                raise fail(f"two captured files are named {path.name}", 2)
            contents[path.name] = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}", 2) from exc

    def act(client: Client) -> tuple[str, dict[str, Any]]:
        record = _get(client, f"/v1/copyright/works/{work}")["work"]
        found: dict[str, Any] = {"copy_pdq": ""}
        for data in contents.values():  # the first captured image with detail to hash
            try:
                found = copy_evidence(record, data)
            except ImageInvalid:
                continue
            if found["copy_pdq"]:
                break
            found = {"copy_pdq": ""}  # a flat picture: no hash, and its points prove nothing
        genesis, sender, key = _signer(client, home, org)
        args = {
            "work": work,
            "url": url,
            "files": [
                {"name": name, "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in contents.items()
            ],
            "captured_ms": captured_ms,
            **found,
            "note": note,
        }
        answer = _submit(client, genesis, sender, key, "evidence", args)
        evidence_id = _get(client, f"/v1/copyright/transactions/{answer['tx_id']}/evidence")["id"]
        receipt = _get(client, f"/v1/copyright/evidence/{evidence_id}/receipt")
        verify_receipt(
            receipt, None, kinds=COPYRIGHT_RECEIPTS, expected_genesis_hash=genesis.hash_hex()
        )
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / f"evidence-{evidence_id[:16]}.json", receipt)
        return evidence_id, receipt["evidence"]

    evidence_id, record = _run(api, act)
    likeness = (
        "no image among the files" if record["distance"] < 0 else f"distance {record['distance']}"
    )
    console.print(f"recorded evidence {evidence_id} ({likeness}); receipt in {out}")


@copyright_app.command("export")
def export(
    evidence_id: Annotated[str, typer.Argument(help="evidence id")],
    out: Annotated[Path, typer.Option("--out", help="the zip to write")],
    capture: Annotated[
        list[Path] | None, typer.Option("--capture", help="a captured file to include")
    ] = None,
    original: Annotated[
        Path | None, typer.Option("--original", help="the registered image, to include")
    ] = None,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Write the evidence package (zip) for EVIDENCE_ID: both receipts, the report, and the
    files given; `xinchain verify` checks it whole, offline."""
    try:
        captures = {path.name: path.read_bytes() for path in capture or []}
        original_file = None if original is None else (original.name, original.read_bytes())
    except OSError as exc:
        raise fail(f"cannot read {exc.filename}: {exc.strerror}", 2) from exc

    def act(client: Client) -> bytes:
        record = _get(client, f"/v1/copyright/evidence/{evidence_id}")
        work_receipt = _get(client, f"/v1/copyright/works/{record['work']}/receipt")
        evidence_receipt = _get(client, f"/v1/copyright/evidence/{evidence_id}/receipt")
        return build_package(work_receipt, evidence_receipt, original_file, captures)

    package = _run(api, act)
    out.write_bytes(package)
    console.print(f"wrote {out} ({len(package)} bytes)")
