"""Private data on a real consortium: `xinchain up --validators 4`, five processes (platform,
brand, customs and bank run the validators; the regulator the observer), every node's P2P
frames captured after TLS (XINCHAIN_P2P_CAPTURE) into a directory outside the home.

The collection `deals` is {brand, bank} with the regulator reading: platform's and customs'
validators are outside it.

- a canary written by brand is read back by brand, bank and the regulator; platform and customs
  get 403 in JSON; the canary's bytes are in no node's files (LMDB, envelopes, logs) and in no
  frame any node sent or received: plaintext never leaves the member's gateway
- the chain keeps committing, and all five nodes hold the identical chain (block and state
  hashes) with an org outside the collection voting
- bank removed from `deals`: it is not a reader of what is written after (403), and the envelope
  does not open with bank's keys
- `short` (block_to_live 3): after the purge height no node's files hold the envelope, a read
  says "purged at height H" (410), the commitment stays readable, and a receipt fetched before
  the purge verifies offline
- the regulator's search finds the canary by counterparty, the search is on chain in the audit
  log; another org calling the audit API gets 403
- bank rotates its key: later records are sealed to the new key, older ones stay readable
- a Byzantine writer wraps a wrong content key for one reader: that reader's node disputes the
  record on chain as soon as the envelope arrives, its reads say so; the others still open it
- bad requests (a float, a list, an unknown collection, a non-writer, a malformed key, no
  token) are refused naming the field, and nothing of them is committed
- bank's node killed with SIGKILL right after it acknowledged a record (its own write, and one it
  fetched) serves both after a restart
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_harness import NODES, XINCHAIN, Cluster, free_port_base

from xinchain import codec
from xinchain.client.sdk import Client, Member
from xinchain.node.home import Home
from xinchain.private.crypto import (
    HPKE,
    HPKE_INFO,
    Keyring,
    PrivateDataError,
    Recipient,
    cipher_hash,
    commitment,
    envelope_header,
    envelope_kids,
    open_envelope,
    private_record,
    seal,
)
from xinchain.private.store import EnvelopeStore

pytestmark = pytest.mark.slow

PLATFORM, BRAND, CUSTOMS, BANK = "validator-0", "validator-1", "validator-2", "validator-3"
REGULATOR = "observer"
OUTSIDERS = (PLATFORM, CUSTOMS)
READERS = (BRAND, BANK, REGULATOR)
CANARY = "CANARY-private-5d1c77e0a9"
wait_s = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    captures = tmp_path_factory.mktemp("captures")
    previous = os.environ.get("XINCHAIN_P2P_CAPTURE")
    os.environ["XINCHAIN_P2P_CAPTURE"] = str(captures)
    running = Cluster(tmp_path_factory.mktemp("private") / "home", free_port_base())
    running.captures = captures  # type: ignore[attr-defined]
    try:
        running.start()
        yield running
    finally:
        running.stop()
        if previous is None:
            os.environ.pop("XINCHAIN_P2P_CAPTURE", None)
        else:
            os.environ["XINCHAIN_P2P_CAPTURE"] = previous


def token(cluster: Cluster, node: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {Home(cluster.home).gateway_token(node)}"}


def request(cluster: Cluster, node: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, cluster.api(node) + path, headers=token(cluster, node), timeout=90.0, **kwargs
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XINCHAIN), *args], capture_output=True, text=True, timeout=180, check=False
    )


def define(cluster: Cluster, name: str, members: str, *extra: str) -> None:
    done = cli("private", "define", name, "--members", members, "--home", str(cluster.home), *extra)
    assert done.returncode == 0, done.stdout + done.stderr


def keys_registered(cluster: Cluster, collection: str) -> None:
    """Wait until every reader of `collection` has registered its encryption key (each org's
    node does it when it starts)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = request(cluster, BRAND, "GET", "/v1/private/collections").json()
        record = next(c for c in found["collections"] if c["name"] == collection)
        if all(record["keys"].values()):
            return
        assert time.monotonic() < deadline, f"keys not registered: {record}"
        time.sleep(0.5)


def put(
    cluster: Cluster, node: str, collection: str, key: str, value: dict[str, Any]
) -> dict[str, Any]:
    answer = request(
        cluster, node, "PUT", f"/v1/private/{collection}/records/{key}", json={"value": value}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def read_when_there(cluster: Cluster, node: str, collection: str, key: str) -> dict[str, Any]:
    """The record as `node` opens it, once its envelope arrived from another reader."""
    deadline = time.monotonic() + wait_s
    while True:
        answer = request(cluster, node, "GET", f"/v1/private/{collection}/records/{key}")
        if answer.status_code == 200:
            return dict(answer.json())
        assert answer.status_code == 404, answer.text
        assert time.monotonic() < deadline, f"{node} never received {key}: {answer.text}"
        time.sleep(0.3)


def node_files(cluster: Cluster, node: str) -> list[Path]:
    return [path for path in cluster.node_dir(node).rglob("*") if path.is_file()]


def files_holding(paths: list[Path], needle: bytes) -> list[str]:
    return [str(path) for path in paths if needle in path.read_bytes()]


def captures(cluster: Cluster) -> dict[str, Path]:
    directory: Path = cluster.captures  # type: ignore[attr-defined]
    return {node: directory / f"{node}.frames" for node in NODES}


@pytest.fixture(scope="module")
def deals(cluster: Cluster) -> dict[str, Any]:
    define(cluster, "deals", "brand,bank")
    keys_registered(cluster, "deals")
    value = {"amount_cny": 1_250_000, "counterparty": "bank", "note": CANARY}
    return put(cluster, BRAND, "deals", "po-1", value)


def test_members_read_the_canary_and_no_other_org_holds_it(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    assert deals["orgs"] == ["bank", "brand", "regulator"]
    for node in READERS:
        record = read_when_there(cluster, node, "deals", "po-1")
        assert record["value"]["note"] == CANARY and record["writer"] == "brand"
    home = str(cluster.home)
    shown = cli("private", "get", "deals", "po-1", "--home", home, "--node", BANK)
    assert shown.returncode == 0 and CANARY in shown.stdout, shown.stdout + shown.stderr
    shown = cli("private", "get", "deals", "po-1", "--home", home, "--node", CUSTOMS)
    assert shown.returncode != 0 and "403 forbidden" in shown.stderr, shown.stdout + shown.stderr
    for node in OUTSIDERS:
        refused = request(cluster, node, "GET", "/v1/private/deals/records/po-1")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert "does not read this record" in refused.json()["error"]["reason"]
    # Let the outsiders commit a few more blocks, so their files and captures hold whatever
    # they were ever going to get of the write.
    cluster.wait_for_height(list(NODES), deals["height"] + 3, wait_s)
    frames = captures(cluster)
    for node in NODES:
        assert frames[node].stat().st_size > 0, f"no capture of {node}'s traffic"
        # The capture shows the write's traffic: its commitment travelled in the transaction.
        assert deals["commitment"].encode() in frames[node].read_bytes(), node
        assert files_holding([*node_files(cluster, node), frames[node]], CANARY.encode()) == []
    # The readers hold the envelope; the outsiders never received it.
    envelope_name = deals["cipher_hash"]
    for node in READERS:
        assert any(path.name == envelope_name for path in node_files(cluster, node)), node
    for node in OUTSIDERS:
        assert not any(path.name == envelope_name for path in node_files(cluster, node)), node
        assert b"private_data" not in frames[node].read_bytes(), node


def test_an_org_outside_the_collection_votes_and_every_node_holds_the_same_chain(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    height = min(h for h in cluster.heights(NODES).values() if h is not None)
    assert height > deals["height"]
    reference = cluster.block_hashes(PLATFORM, height)
    for node in NODES:
        assert cluster.block_hashes(node, height) == reference, node
    states = {
        node: cluster.get(node, f"/v1/blocks/{height}").json()["header"]["state_hash"]
        for node in NODES
    }
    assert len(set(states.values())) == 1, states


def test_a_removed_org_cannot_read_what_is_written_after(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    define(cluster, "later", "brand,bank", "--no-regulator")
    keys_registered(cluster, "later")
    put(cluster, BRAND, "later", "before", {"note": "bank may read this"})
    assert read_when_there(cluster, BANK, "later", "before")["value"]["note"]
    define(cluster, "later", "brand", "--no-regulator")  # bank removed
    after = put(cluster, BRAND, "later", "after", {"note": "after bank left"})
    assert after["orgs"] == ["brand"]
    refused = request(cluster, BANK, "GET", "/v1/private/later/records/after")
    assert refused.status_code == 403, refused.text
    # Even with the envelope in hand (copied from brand's disk), bank's keys do not open it.
    envelope = next(
        path for path in node_files(cluster, BRAND) if path.name == after["cipher_hash"]
    ).read_bytes()
    with pytest.raises(PrivateDataError, match="holds none of the keys"):
        open_envelope(envelope, Keyring(cluster.home / "keys" / "bank.enc"))
    assert open_envelope(envelope, Keyring(cluster.home / "keys" / "brand.enc"))["value"] == {
        "note": "after bank left"
    }
    # What bank read before its removal stays readable to it.
    assert read_when_there(cluster, BANK, "later", "before")["value"]["note"]


def test_a_purged_record_leaves_its_hash_and_its_receipt_still_verifies(
    cluster: Cluster, deals: dict[str, Any], tmp_path: Path
) -> None:
    define(cluster, "short", "brand,bank", "--block-to-live", "3")
    keys_registered(cluster, "short")
    written = put(cluster, BRAND, "short", "quote-1", {"price_cny": 88, "note": "short-lived"})
    assert written["purge_at"] == written["height"] + 3
    assert read_when_there(cluster, BANK, "short", "quote-1")["value"]["price_cny"] == 88
    receipt = request(cluster, BANK, "GET", "/v1/private/short/receipts/quote-1")
    assert receipt.status_code == 200, receipt.text
    receipt_path = tmp_path / "quote-1.receipt.json"
    receipt_path.write_text(receipt.text)
    envelope = next(
        path for path in node_files(cluster, BRAND) if path.name == written["cipher_hash"]
    ).read_bytes()
    sealed = codec.decode(envelope)
    assert isinstance(sealed, dict)
    chunk = sealed["ct"][:48]  # the sealed record: nowhere but in this envelope
    cluster.wait_for_height(list(NODES), written["purge_at"] + 1, wait_s)
    deadline = time.monotonic() + wait_s
    while any(files_holding(node_files(cluster, node), chunk) for node in NODES):
        assert time.monotonic() < deadline, "the envelope outlived its purge height"
        time.sleep(0.3)
    for node in (BRAND, BANK):
        gone = request(cluster, node, "GET", "/v1/private/short/records/quote-1")
        assert gone.status_code == 410, gone.text
        assert f"purged at height {written['purge_at']}" in gone.json()["error"]["reason"]
    for node in NODES:
        kept = cluster.get(node, "/v1/private/short/hashes/quote-1").json()
        assert kept["commitment"] == written["commitment"], node
    genesis_hash = cluster.status(PLATFORM)["genesis_hash"]
    verified = cli("verify", str(receipt_path), "--genesis-hash", genesis_hash)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "valid: private record quote-1 of short" in verified.stdout


def test_the_regulator_audits_and_its_reads_are_on_chain(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    read_when_there(cluster, REGULATOR, "deals", "po-1")
    found = request(cluster, REGULATOR, "GET", "/v1/audit/search", params={"counterparty": "bank"})
    assert found.status_code == 200, found.text
    answer = found.json()
    assert [r["value"]["note"] for r in answer["records"]] == [CANARY]
    log = cluster.get(PLATFORM, "/v1/audit/log").json()["audits"]
    entry = next(a for a in log if a["tx"] == answer["audit_tx"])
    assert entry["org"] == "regulator" and entry["query"] == {"counterparty": "bank"}
    assert entry["read"] == [deals["cipher_hash"]]
    searched = cli("audit", "search", "--collection", "deals", "--home", str(cluster.home))
    assert searched.returncode == 0 and CANARY in searched.stdout, searched.stderr
    for node in (BRAND, PLATFORM):
        refused = request(cluster, node, "GET", "/v1/audit/search")
        assert refused.status_code == 403, refused.text
        assert "regulator" in refused.json()["error"]["reason"]


def test_a_rotated_key_seals_later_records_and_the_older_ones_stay_readable(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    before = read_when_there(cluster, BANK, "deals", "po-1")
    rotated = cli("private", "rotate-key", "--org", "bank", "--home", str(cluster.home))
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    kid = json.loads(rotated.stdout)["kid"]
    deadline = time.monotonic() + wait_s
    while True:  # bank's node registers the new key on its own
        found = request(cluster, BRAND, "GET", "/v1/private/collections").json()
        if next(c for c in found["collections"] if c["name"] == "deals")["keys"]["bank"] == kid:
            break
        assert time.monotonic() < deadline, "bank's new key was never registered"
        time.sleep(0.5)
    after = put(cluster, BRAND, "deals", "after-rotation", {"note": "sealed to the new key"})
    envelope = next(
        path for path in node_files(cluster, BRAND) if path.name == after["cipher_hash"]
    ).read_bytes()
    assert kid in envelope_kids(envelope)
    assert read_when_there(cluster, BANK, "deals", "after-rotation")["value"]["note"]
    assert read_when_there(cluster, BANK, "deals", "po-1") == before


def test_a_writer_that_seals_a_bad_key_to_one_reader_is_disputed_by_it(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    """Brand's operator, turned Byzantine, seals the record properly to itself and the
    regulator but wraps a wrong content key for bank: bank's node finds out when the envelope
    arrives and disputes the record on chain; the regulator still opens it."""
    collections = request(cluster, BRAND, "GET", "/v1/private/collections").json()["collections"]
    readers = next(c for c in collections if c["name"] == "deals")["keys"]
    genesis = Home(cluster.home).genesis()
    recipients = []
    for org, kid in sorted(readers.items()):
        key = Keyring(cluster.home / "keys" / f"{org}.enc").get(kid)
        assert key is not None
        recipients.append(Recipient(org, kid, key.public))
    record = private_record("deals", "forged", {"note": "bank gets a wrong key"}, "brand")
    sealed = codec.decode(seal(genesis.chain_id, record, recipients))
    assert isinstance(sealed, dict)
    header = envelope_header(genesis.chain_id, "deals", "forged", [r.kid for r in recipients])
    for entry in sealed["to"]:
        if entry["org"] == "bank":
            enc, sender = HPKE.create_sender_context(
                HPKE.kem.deserialize_public_key(recipients[0].public), HPKE_INFO
            )
            entry["enc"], entry["wrapped"] = enc, sender.seal(os.urandom(16), header)
    envelope = codec.encode(sealed)
    hashed = cipher_hash(envelope)
    EnvelopeStore(cluster.node_dir(BRAND) / "private").put(hashed, envelope)
    args = {
        "collection": "deals",
        "key": "forged",
        "commitment": commitment(record),
        "cipher_hash": hashed,
        "kids": [r.kid for r in recipients],
        "bytes": len(envelope),
        "contract": "",
    }
    member = Member(genesis, "brand", Home(cluster.home).org_key(genesis.suite, "brand"))
    with Client(cluster.api(BRAND)) as client:
        client.member_call(member, "private", "put", args)
    deadline = time.monotonic() + wait_s
    while True:
        disputes = cluster.get(PLATFORM, "/v1/private/deals/hashes/forged").json()["disputes"]
        if disputes:
            break
        assert time.monotonic() < deadline, "bank never disputed the record"
        time.sleep(0.3)
    assert [(d["org"], d["reason"]) for d in disputes] == [("bank", "does_not_open")]
    refused = request(cluster, BANK, "GET", "/v1/private/deals/records/forged")
    assert refused.status_code == 400 and "disputed it on chain" in refused.text
    opened = read_when_there(cluster, REGULATOR, "deals", "forged")
    assert opened["value"] == {"note": "bank gets a wrong key"}


def test_bad_requests_are_refused_naming_what_was_wrong(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    def refused(node: str, path: str, body: Any, status: int, field: str) -> str:
        answer = request(cluster, node, "PUT", path, json=body)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["field"] == field, error
        return str(error["reason"])

    reason = refused(BRAND, "/v1/private/deals/records/po-9", {"value": {"x": 1.5}}, 400, "value")
    assert "JSON object of text, integers" in reason
    refused(BRAND, "/v1/private/deals/records/po-9", {"value": [1]}, 422, "value")
    refused(BRAND, "/v1/private/nothing/records/po-9", {"value": {}}, 404, "collection")
    reason = refused(PLATFORM, "/v1/private/deals/records/po-9", {"value": {}}, 403, "collection")
    assert "may not write collection 'deals'" in reason
    refused(BRAND, "/v1/private/deals/records/-bad", {"value": {}}, 400, "key")
    anonymous = httpx.put(
        cluster.api(BRAND) + "/v1/private/deals/records/po-9", json={"value": {}}, timeout=30
    )
    assert anonymous.status_code == 403 and anonymous.json()["error"]["field"] == "authorization"
    missing = request(cluster, BANK, "GET", "/v1/private/deals/records/never-written")
    assert missing.status_code == 404 and "holds no record" in missing.text
    # Nothing refused was committed, and the node goes on.
    hashes = cluster.get(BRAND, "/v1/private/deals/hashes/po-9")
    assert hashes.status_code == 404
    assert read_when_there(cluster, BANK, "deals", "po-1")["value"]["note"] == CANARY


def test_a_member_killed_after_acknowledging_keeps_its_private_data(
    cluster: Cluster, deals: dict[str, Any]
) -> None:
    own = put(cluster, BANK, "deals", "bank-own", {"note": "written by bank"})
    fetched = put(cluster, BRAND, "deals", "for-bank", {"note": "fetched by bank"})
    assert read_when_there(cluster, BANK, "deals", "for-bank")["value"]["note"]
    cluster.kill9(BANK)
    cluster.restart(BANK)
    for key, answer in (("bank-own", own), ("for-bank", fetched)):
        record = request(cluster, BANK, "GET", f"/v1/private/deals/records/{key}")
        assert record.status_code == 200, record.text
        assert record.json()["cipher_hash"] == answer["cipher_hash"]
