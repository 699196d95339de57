"""Private data in process: HPKE against RFC 9180's own vector, envelopes, and what every node
checks of a private write (contracts/private.py, governance's collections and keys).

- RFC 9180 A.1.1 (X25519, HKDF-SHA256, AES-128-GCM, base mode), vendored unchanged: the
  derived key pairs, the sender's `enc` from the vector's ephemeral key, all ten ciphertexts,
  the recipient's opens and the five exported secrets
- an envelope opens for each recipient and for no other key; a changed header, ciphertext or
  recipient list does not open; the record's commitment is the SHA-256 of its canonical CBOR
- collections and keys are governance: defined by a 2/3 vote, each org sets its own key; rules
  below 3 and the SM suite refuse private data naming why
- a put is refused unless its sender writes the collection and its key ids are exactly the
  readers' current keys, in reader order; the regulator reads when the collection says so
- an org removed from a collection is not a reader of later writes: the writer must leave its
  key out, and the envelope does not open with it
- purge entries are indexed by height; audit is the regulator's only
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from chain_helpers import Chain, make_consortium
from pyhpke import AEADId, CipherSuite, KDFId, KEMId
from receipts import verify_receipt

from xinchain import codec
from xinchain.contracts.governance import RULES_3_GENESIS_MS, approvals_needed
from xinchain.errors import ReceiptInvalid
from xinchain.merkle import MerkleTree
from xinchain.private.crypto import (
    EncryptionKey,
    Keyring,
    PrivateDataError,
    Recipient,
    cipher_hash,
    commitment,
    envelope_kids,
    open_envelope,
    private_record,
    seal,
)
from xinchain.receipt import TxProof, build_receipts, load_receipt_json

VECTOR = Path(__file__).parents[1] / "data" / "hpke" / "rfc9180-a1-1.json"


def test_rfc9180_a_1_1_vector() -> None:
    """The RFC's own vector: key derivation, the sender's enc from the vector's ephemeral key,
    the six listed ciphertexts (the context's sequence advanced between them), the recipient's
    opens and the three exports."""
    vector = json.loads(VECTOR.read_text())
    assert (vector["mode"], vector["kem_id"], vector["kdf_id"], vector["aead_id"]) == (0, 32, 1, 1)
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    h = bytes.fromhex
    recipient = suite.kem.derive_key_pair(h(vector["ikmR"]))
    ephemeral = suite.kem.derive_key_pair(h(vector["ikmE"]))
    assert recipient.private_key.to_private_bytes() == h(vector["skRm"])
    assert recipient.public_key.to_public_bytes() == h(vector["pkRm"])
    assert ephemeral.private_key.to_private_bytes() == h(vector["skEm"])
    assert ephemeral.public_key.to_public_bytes() == h(vector["pkEm"])
    enc, sender = suite.create_sender_context(
        recipient.public_key, h(vector["info"]), eks=ephemeral
    )
    assert enc == h(vector["enc"])
    opener = suite.create_recipient_context(enc, recipient.private_key, h(vector["info"]))
    sequence = 0
    for encryption in vector["encryptions"]:
        while sequence < encryption["sequence"]:  # the RFC lists a few sequence numbers
            opener.open(sender.seal(b"skipped", b""), b"")
            sequence += 1
        sealed = sender.seal(h(encryption["pt"]), h(encryption["aad"]))
        assert sealed == h(encryption["ct"])
        assert opener.open(sealed, h(encryption["aad"])) == h(encryption["pt"])
        sequence += 1
    for export in vector["exports"]:
        value = opener.export(h(export["exporter_context"]), export["L"])
        assert value == h(export["exported_value"])
    # Our keys load the vector's recipient key and derive its public half.
    assert EncryptionKey(h(vector["skRm"])).public == h(vector["pkRm"])


def keyring_with(tmp_path: Path, name: str, key: EncryptionKey) -> Keyring:
    ring = Keyring(tmp_path / name)
    ring.add(key)
    return ring


def test_an_envelope_opens_for_its_recipients_only(tmp_path: Path) -> None:
    bank, brand, outsider = (EncryptionKey.generate() for _ in range(3))
    record = private_record("deals", "po-1", {"amount": 125_000, "counterparty": "brand"}, "bank")
    to = [Recipient("bank", bank.kid, bank.public), Recipient("brand", brand.kid, brand.public)]
    envelope = seal("chain-a", record, to)
    assert envelope_kids(envelope) == [bank.kid, brand.kid]
    assert b"125000" not in envelope and b"counterparty" not in envelope
    for key, name in ((bank, "bank"), (brand, "brand")):
        assert open_envelope(envelope, keyring_with(tmp_path, name, key)) == record
    with pytest.raises(PrivateDataError, match="holds none of the keys"):
        open_envelope(envelope, keyring_with(tmp_path, "outsider", outsider))
    assert commitment(record) == hashlib.sha256(codec.encode(record)).hexdigest()


def test_a_changed_envelope_does_not_open(tmp_path: Path) -> None:
    bank = EncryptionKey.generate()
    ring = keyring_with(tmp_path, "bank", bank)
    record = private_record("deals", "po-1", {"amount": 1}, "bank")
    envelope = codec.decode(seal("chain-a", record, [Recipient("bank", bank.kid, bank.public)]))
    assert isinstance(envelope, dict)
    for name, changed in (
        ("key", "po-2"),
        ("collection", "other"),
        ("chain", "chain-b"),
        ("ct", envelope["ct"][:-1] + bytes([envelope["ct"][-1] ^ 1])),
    ):
        with pytest.raises(PrivateDataError, match="does not open"):
            open_envelope(codec.encode({**envelope, name: changed}), ring)


# --- the chain's checks ------------------------------------------------------------------------


def make_chain(time_ms: int = RULES_3_GENESIS_MS, suite: str = "ed25519-sha256") -> Chain:
    roles = {"org0": ["bank"], "org1": ["brand"], "org2": ["platform"], "org3": ["regulator"]}
    return Chain(make_consortium(suite, org_count=4, roles=roles, time_ms=time_ms))


def govern(c: Chain, action: dict[str, Any]) -> Any:
    first = c.call("org0", "governance", "propose", {"action": action})
    assert first.ok, first.error
    number = first.data["proposal"]
    result = first
    for org in ("org1", "org2", "org3")[: approvals_needed(4) - 1]:
        result = c.call(org, "governance", "approve", {"proposal": number})
    return result


def define(
    c: Chain,
    members: list[str],
    *,
    regulator: bool = True,
    ttl: int = 0,
    writers: list[str] | None = None,
    name: str = "deals",
) -> None:
    result = govern(
        c,
        {
            "kind": "set_collection",
            "name": name,
            "members": members,
            "regulator_reads": regulator,
            "block_to_live": ttl,
            "writers": writers or [],
        },
    )
    assert result.ok and result.data["executed"], result.error


def register_keys(c: Chain) -> dict[str, EncryptionKey]:
    keys = {}
    for org in ("org0", "org1", "org2", "org3"):
        keys[org] = EncryptionKey.generate()
        result = c.call(org, "governance", "set_enc_key", {"key": keys[org].public.hex()})
        assert result.ok, result.error
    return keys


def put_args(record: dict[str, Any], envelope: bytes, kids: list[str]) -> dict[str, Any]:
    return {
        "collection": record["collection"],
        "key": record["key"],
        "commitment": commitment(record),
        "cipher_hash": cipher_hash(envelope),
        "kids": kids,
        "bytes": len(envelope),
        "contract": "",
    }


def sealed_put(
    c: Chain, keys: dict[str, EncryptionKey], writer: str, readers: list[str], key: str = "po-1"
) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    record = private_record("deals", key, {"amount": 125_000, "counterparty": "org1"}, writer)
    envelope = seal(
        c.consortium.genesis.chain_id,
        record,
        [Recipient(o, keys[o].kid, keys[o].public) for o in readers],
    )
    return record, envelope, put_args(record, envelope, [keys[o].kid for o in readers])


def test_a_put_names_exactly_the_readers_keys() -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"], ttl=5)
    readers = ["org0", "org1", "org3"]  # the members and the regulator, in id order
    record, _, args = sealed_put(c, keys, "org0", readers)
    for wrong in (
        [keys["org0"].kid, keys["org1"].kid],
        list(reversed(args["kids"])),
        [*args["kids"], keys["org2"].kid],
    ):
        refused = c.call("org0", "private", "put", {**args, "kids": wrong})
        assert not refused.ok and "must be sealed to the current keys" in refused.error
    done = c.call("org0", "private", "put", args)
    assert done.ok, done.error
    assert done.data == {
        "root": MerkleTree(c.suite.hash, [bytes.fromhex(commitment(record))]).root().hex(),
        "size": 1,
    }
    stored = c.app.chain.read_state("private", f"hash/{args['cipher_hash']}")
    assert stored["orgs"] == readers and stored["purge_at"] == c.app.tip().height + 5
    again = c.call("org0", "private", "put", args)
    assert not again.ok and "written already" in again.error
    outsider = c.call("org2", "private", "put", sealed_put(c, keys, "org2", readers, "x")[2])
    assert not outsider.ok and "may not write" in outsider.error
    stored = c.app.chain.read_state("private", f"hash/{args['cipher_hash']}")
    assert stored["commitment"] == commitment(record) and stored["writer"] == "org0"
    purge_keys = list(c.app.chain.scan_state_keys("private", "purge/", "purge0"))
    assert purge_keys == [f"purge/{stored['purge_at']:012d}/{args['cipher_hash']}"]


def test_a_removed_org_cannot_open_later_writes(tmp_path: Path) -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"], regulator=False)
    define(c, ["org0"], regulator=False)  # org1 removed
    record, envelope, args = sealed_put(c, keys, "org0", ["org0", "org1"])
    refused = c.call("org0", "private", "put", args)
    assert not refused.ok and "org0" in refused.error
    record, envelope, args = sealed_put(c, keys, "org0", ["org0"])
    assert c.call("org0", "private", "put", args).ok
    with pytest.raises(PrivateDataError, match="holds none of the keys"):
        open_envelope(envelope, keyring_with(tmp_path, "org1", keys["org1"]))
    assert open_envelope(envelope, keyring_with(tmp_path, "org0", keys["org0"])) == record


def test_a_rotated_key_is_the_one_later_writes_use() -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"], regulator=False)
    newer = EncryptionKey.generate()
    assert c.call("org1", "governance", "set_enc_key", {"key": newer.public.hex()}).ok
    args = sealed_put(c, keys, "org0", ["org0", "org1"])[2]
    assert not c.call("org0", "private", "put", args).ok
    keys["org1"] = newer
    assert c.call("org0", "private", "put", sealed_put(c, keys, "org0", ["org0", "org1"])[2]).ok


def test_older_rules_and_the_sm_suite_refuse_private_data() -> None:
    old = make_chain(time_ms=RULES_3_GENESIS_MS - 1)
    result = old.call(
        "org0", "governance", "set_enc_key", {"key": EncryptionKey.generate().public.hex()}
    )
    assert not result.ok and "chain rules 3" in result.error
    sm = make_chain(suite="sm2-sm3")
    result = sm.call(
        "org0", "governance", "set_enc_key", {"key": EncryptionKey.generate().public.hex()}
    )
    assert not result.ok and "sm2-sm3 suite" in result.error


def test_collection_actions_are_checked() -> None:
    c = make_chain()
    base = {
        "kind": "set_collection",
        "name": "deals",
        "members": ["org0"],
        "regulator_reads": True,
        "block_to_live": 0,
        "writers": [],
    }
    for change, reason in (
        ({"members": ["nobody"]}, "not a member"),
        ({"members": []}, "at least one member"),
        ({"writers": ["org1"]}, "not members of the collection"),
        ({"regulator_reads": 1}, "true or false"),
        ({"block_to_live": -1}, "expected blocks"),
        ({"members": ["org0", "org0"]}, "listed twice"),
    ):
        result = c.call("org0", "governance", "propose", {"action": {**base, **change}})
        assert not result.ok and reason in result.error, (change, result.error)
    result = c.call("org0", "governance", "set_enc_key", {"key": "00" * 31})
    assert not result.ok and "64 lowercase hex" in result.error


def test_only_a_regulator_audits() -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"])
    _, _, args = sealed_put(c, keys, "org0", ["org0", "org1", "org3"])
    assert c.call("org0", "private", "put", args).ok
    query = {"org": "org0"}
    refused = c.call("org1", "private", "audit", {"query": query, "read": [args["cipher_hash"]]})
    assert not refused.ok and "regulator" in refused.error
    done = c.call("org3", "private", "audit", {"query": query, "read": [args["cipher_hash"]]})
    assert done.ok, done.error
    logged = list(c.app.chain.scan_state("private", "audit/"))
    assert [entry["read"] for _, entry in logged] == [[args["cipher_hash"]]]
    assert logged[0][1]["org"] == "org3"


def test_a_receipt_reveals_and_proves_one_private_record() -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"])
    record, _, args = sealed_put(c, keys, "org0", ["org0", "org1", "org3"])
    block = c.commit_txs([c.sign("org0", "private", "put", args)])
    results = block.results
    assert results[0].ok, results[0].error
    proof = TxProof(
        result=results[0],
        result_proof=MerkleTree(c.suite.hash, [r.encode() for r in results]).inclusion_proof(0),
        header=block.header,
        certificate=block.certificate,
        genesis=c.consortium.genesis,
    )
    digest = bytes.fromhex(commitment(record))
    receipt = build_receipts(proof, [digest], None, [record], "private_record")[0]
    loaded = load_receipt_json(json.dumps(receipt))
    genesis_hash = c.consortium.genesis.hash_hex()
    verified = verify_receipt(loaded, None, expected_genesis_hash=genesis_hash)
    assert verified.record == record and verified.record_kind == "private_record"
    for name, changed in (
        ("value", {**record["value"], "amount": 125_001}),
        ("salt", "0" * 64),
        ("key", "po-2"),
    ):
        forged = json.loads(json.dumps(receipt))
        forged["private_record"][name] = changed
        with pytest.raises(ReceiptInvalid, match="hash mismatch"):
            verify_receipt(forged, None, expected_genesis_hash=genesis_hash)
    forged = json.loads(json.dumps(receipt))
    forged["private_record"]["writer"] = "org1"
    with pytest.raises(ReceiptInvalid):
        verify_receipt(forged, None, expected_genesis_hash=genesis_hash)


def test_only_a_reader_disputes_a_record_and_only_once() -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"], regulator=False)
    _, _, args = sealed_put(c, keys, "org0", ["org0", "org1"])
    assert c.call("org0", "private", "put", args).ok
    cipher = args["cipher_hash"]
    outsider = c.call(
        "org2", "private", "dispute", {"cipher_hash": cipher, "reason": "does_not_open"}
    )
    assert not outsider.ok and "not a reader" in outsider.error
    wrong = c.call("org1", "private", "dispute", {"cipher_hash": cipher, "reason": "bored"})
    assert not wrong.ok and "expected one of" in wrong.error
    done = c.call(
        "org1", "private", "dispute", {"cipher_hash": cipher, "reason": "commitment_mismatch"}
    )
    assert done.ok and done.data == {"cipher_hash": cipher, "org": "org1", "writer": "org0"}
    again = c.call("org1", "private", "dispute", {"cipher_hash": cipher, "reason": "does_not_open"})
    assert not again.ok and "already" in again.error
    unknown = c.call(
        "org1", "private", "dispute", {"cipher_hash": "0" * 64, "reason": "does_not_open"}
    )
    assert not unknown.ok and "no private record" in unknown.error


def test_under_older_rules_collection_actions_are_unknown_as_they_were() -> None:
    """An older block's refusal text is in its results: replaying it must read the same."""
    old = make_chain(time_ms=RULES_3_GENESIS_MS - 1)
    action = {
        "kind": "set_collection",
        "name": "deals",
        "members": ["org0"],
        "regulator_reads": True,
        "block_to_live": 0,
        "writers": [],
    }
    refused = old.call("org0", "governance", "propose", {"action": action})
    assert not refused.ok
    assert refused.error.startswith("unknown action 'set_collection'; expected one of [")
    assert "collection" not in refused.error.split("expected one of")[1]
    assert "'set_rules'" in refused.error


def test_a_put_names_the_app_it_is_written_for_and_versions_are_indexed() -> None:
    c = make_chain()
    keys = register_keys(c)
    define(c, ["org0", "org1"], regulator=False)
    _, _, args = sealed_put(c, keys, "org0", ["org0", "org1"])
    refused = c.call("org0", "private", "put", {**args, "contract": "Not An App"})
    assert not refused.ok and "args.contract" in refused.error
    assert c.call("org0", "private", "put", {**args, "contract": "receivables"}).ok
    _, _, second = sealed_put(c, keys, "org0", ["org0", "org1"])
    assert c.call("org0", "private", "put", second).ok
    chain = c.app.chain
    assert chain.read_state("private", f"hash/{args['cipher_hash']}")["contract"] == "receivables"
    assert chain.read_state("private", "ver/deals/po-1/000000001") == args["cipher_hash"]
    assert chain.read_state("private", "ver/deals/po-1/000000002") == second["cipher_hash"]
    assert chain.read_state("private", "rec/deals/po-1")["version"] == 2
