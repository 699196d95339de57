"""kill -9 of a node while clients anchor batches, then `xinchain up` again on the same home.

One module-scoped history drives the assertions: for `kill_rounds` rounds, a client thread
signs notary batches with the platform key from the home and submits them through the SDK,
keeping several in flight and turning each committed one into receipts; once a few receipts
have come back, the node is sent SIGKILL at a random moment and restarted on the same home.

Scenarios:

* Durability: every receipt returned before a kill verifies and names the block the restarted
  chain holds at that height; every batch a client saw committed is committed after restart;
  the restarted node starts at or above the highest height any client saw.
* Atomicity: a committed batch has a record for every one of its hashes; a batch that was not
  committed (in flight at the kill, or lost with the mempool) has a record for none; the node's
  LMDB is read for every hash, /v1/notary/{hash} for three per batch; a guard checks that some
  batches were indeed lost, so that this is not vacuous.
* The chain: heights 1..tip all present, each block's parent_hash the previous block's hash
  (genesis hash for block 1), each certificate naming its block; nothing past the tip.
* Liveness: after the last restart a `notary put` succeeds in a block above the old tip.
* A `notary put` of 2,000 files whose node is SIGKILLed 0 to 250 ms after the command starts
  sending its transaction: after restart the chain holds all of its hashes or none; all (and
  every receipt written) if it exited 0, and no receipt written if it did not.
* Process contract: node.pid holds the pid while running; SIGTERM exits 0, removes node.pid,
  and a restart resumes the same chain: same genesis, the old tip block unchanged.
"""

from __future__ import annotations

import os
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from app_contracts import APP_CONTRACTS
from conftest import free_port
from receipts import verify_receipt

from xinchain.apps.notary.contract import anchor_records
from xinchain.client.sdk import Client, sign_transaction, validity_blocks
from xinchain.crypto import Suite
from xinchain.errors import XinchainError
from xinchain.execution.app import Application
from xinchain.node.home import Home
from xinchain.receipt import build_receipts
from xinchain.storage import LmdbStore

if TYPE_CHECKING:
    import subprocess

    from conftest import InterruptedPut, RunningNode

    Cli = Callable[..., subprocess.CompletedProcess[str]]

kill_rounds = 3
hashes_per_batch = 500
# Threads posting batches at once: together they outrun the node, so it always has admitted
# batches queued and a kill lands while one is admitted, executing or committing.
posting_threads = 3
# Batches admitted but not yet seen committed: bounds the backlog (and the work to check).
batches_outstanding_max = 12
# Batches whose receipts come back in a round before the kill may fire.
receipts_before_kill = 2
kill_delay_s_max = 1.0
round_timeout_s = 60.0
SENDER = "platform"
# Files of the `notary put` a kill interrupts: a batch the node takes tens of ms to apply.
interrupted_put_files = 2_000
VALIDATOR_NAME = "validator-0"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@dataclass
class Batch:
    round: int
    tx_id: str
    documents: list[bytes]
    digests: list[bytes]
    sampled_position: int  # a position, besides first and last, whose receipt is returned
    accepted: bool = False  # the node answered 202 to its submission
    seen_committed_height: int | None = None  # a client saw it committed at this height


@dataclass(frozen=True)
class ReturnedReceipt:
    round: int
    receipt: dict[str, Any]
    document: bytes


@dataclass
class KillRound:
    round: int
    delay_s: float
    highest_seen_before_kill: int
    height_after_restart: int = -1
    unexpected_errors: list[str] = field(default_factory=list)


@dataclass
class History:
    seed: int
    node: RunningNode
    batches: list[Batch] = field(default_factory=list)
    receipts: list[ReturnedReceipt] = field(default_factory=list)
    rounds: list[KillRound] = field(default_factory=list)

    def __repr__(self) -> str:  # what a failing assertion shows
        return (
            f"History(seed={self.seed}, batches={len(self.batches)}, "
            f"receipts={len(self.receipts)}, rounds={self.rounds})"
        )


class RoundClients:
    """Posting threads and one collector, anchoring batches until the node is killed.

    Every batch is recorded before it is sent: the node may admit it even if no answer comes
    back. The collector waits for admitted batches in order and turns each committed one into
    receipts (three per batch: first, a random one, last).
    """

    def __init__(self, history: History, round_number: int, rng: random.Random) -> None:
        self.history = history
        self.round = round_number
        self.rng = rng
        self.killing = threading.Event()  # set just before SIGKILL: errors after it are expected
        self.returned_batches = 0
        self.errors: list[str] = []
        self._outstanding = threading.BoundedSemaphore(batches_outstanding_max)
        self._admitted: queue.Queue[Batch | None] = queue.Queue()
        self._lock = threading.Lock()
        with Client(history.node.api) as client:
            self.genesis = client.genesis()
            self.valid_until = client.status()["height"] + validity_blocks
        self.key = Home(history.node.home).org_key(self.genesis.suite, SENDER)
        self.threads = [
            threading.Thread(target=self._guarded, args=(self._post,), daemon=True)
            for _ in range(posting_threads)
        ]
        self.threads.append(
            threading.Thread(target=self._guarded, args=(self._collect,), daemon=True)
        )

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self._admitted.put(None)  # wakes the collector when nothing else will
        for thread in self.threads:
            thread.join(round_timeout_s)

    def batch_in_flight(self) -> bool:
        return any(not batch.accepted for batch in self.history.batches[-posting_threads:])

    def _guarded(self, work: Callable[[Client], None]) -> None:
        client = Client(self.history.node.api, timeout_s=30)
        try:
            work(client)
        except (httpx.HTTPError, XinchainError, OSError, TimeoutError) as exc:
            if not self.killing.is_set():
                self.errors.append(f"round {self.round}: {exc!r}")
        finally:
            client.close()

    def _post(self, client: Client) -> None:
        suite = self.genesis.suite
        while not self.killing.is_set():
            if not self._outstanding.acquire(timeout=0.05):
                continue
            batch = self._new_batch(suite)
            tx = sign_transaction(
                suite,
                self.key,
                chain_id=self.genesis.chain_id,
                sender=SENDER,
                contract="notary",
                method="anchor_batch",
                args={"hashes": batch.digests},
                valid_until=self.valid_until,
            )
            batch.tx_id = suite.hash(tx.body.encode()).hex()
            self.history.batches.append(batch)
            client.submit(tx)
            batch.accepted = True
            self._admitted.put(batch)

    def _new_batch(self, suite: Suite) -> Batch:
        with self._lock:
            salts = [self.rng.getrandbits(64) for _ in range(hashes_per_batch)]
            position = self.rng.randrange(hashes_per_batch)
        documents = [
            f"round {self.round} document {index} {salt:016x}\n".encode()
            for index, salt in enumerate(salts)
        ]
        return Batch(self.round, "", documents, [suite.hash(d) for d in documents], position)

    def _collect(self, client: Client) -> None:
        while True:
            batch = self._admitted.get()
            if batch is None:
                return
            answer = client.wait_committed(batch.tx_id, timeout_s=30)
            if not answer["result"]["ok"]:
                raise XinchainError(f"batch {batch.tx_id} failed: {answer['result']['error']}")
            batch.seen_committed_height = int(answer["height"])
            self._outstanding.release()
            positions = [0, batch.sampled_position, hashes_per_batch - 1]
            receipts = build_receipts(client.proof(batch.tx_id), batch.digests, positions)
            for position, receipt in zip(positions, receipts, strict=True):
                self.history.receipts.append(
                    ReturnedReceipt(self.round, receipt, batch.documents[position])
                )
            self.returned_batches += 1


def run_kill_round(history: History, round_number: int, rng: random.Random) -> None:
    node = history.node
    clients = RoundClients(history, round_number, rng)
    clients.start()
    deadline = time.monotonic() + round_timeout_s
    while clients.returned_batches < receipts_before_kill and not clients.errors:
        assert time.monotonic() < deadline, f"round {round_number}: no receipts in time"
        time.sleep(0.005)
    delay_s = rng.uniform(0.0, kill_delay_s_max)
    time.sleep(delay_s)
    # Then the first moment a batch is on its way (sent, not yet answered): the node is
    # admitting, queueing, executing or committing it.
    while not clients.batch_in_flight() and time.monotonic() < deadline:
        time.sleep(0.0005)
    clients.killing.set()
    node.kill9()
    clients.join()
    highest = max((b.seen_committed_height or 0 for b in history.batches), default=0)
    record = KillRound(round_number, delay_s, highest, unexpected_errors=clients.errors)
    history.rounds.append(record)
    node.start()
    record.height_after_restart = int(node.ready_line.split(" height ")[1].split(",")[0])


@pytest.fixture(scope="module")
def history(module_node: RunningNode) -> History:
    seed = int(os.environ.get("XINCHAIN_TEST_SEED", secrets.randbits(32)))
    print(f"crash recovery seed {seed} (replay the choices with XINCHAIN_TEST_SEED={seed})")
    rng = random.Random(seed)
    recorded = History(seed, module_node)
    for round_number in range(kill_rounds):
        run_kill_round(recorded, round_number, rng)
    return recorded


@pytest.fixture(scope="module")
def committed(history: History) -> dict[str, bool]:
    """For every batch ever submitted: does the restarted node say it is committed?"""
    states: dict[str, bool] = {}
    with httpx.Client(base_url=history.node.api, timeout=30) as http:
        for batch in history.batches:
            response = http.get(f"/v1/transactions/{batch.tx_id}")
            assert response.status_code in (200, 404), response.text
            if response.status_code == 200:
                assert response.json()["status"] == "committed", response.text
            states[batch.tx_id] = response.status_code == 200
    return states


@pytest.fixture(scope="module")
def records_on_disk(history: History) -> dict[bytes, list[tuple[str, int]]]:
    """(tx id, position) of every notary record of every submitted hash, read from LMDB.

    The node is stopped meanwhile and started again after: the API answers one hash per
    request, too slow for every hash here, so it is checked on a sample (below) and the
    node's own store is read for all of them.
    """
    node = history.node
    assert node.stop() == 0, node.output()
    store = LmdbStore(node.home / "nodes" / VALIDATOR_NAME / "data")
    try:
        app = Application(store, Home(node.home).genesis(), APP_CONTRACTS)
        found = {
            digest: [
                (record["tx_id"], record["position"])
                for record in anchor_records(app.chain, digest)[0]
            ]
            for batch in history.batches
            for digest in batch.digests
        }
    finally:
        store.close()
    node.start()
    return found


def api_records(node: RunningNode, digests: list[bytes]) -> list[list[tuple[str, int]] | None]:
    """Records (tx id, position) per hash through /v1/notary/{hash}; None for a 404."""
    answers: list[list[tuple[str, int]] | None] = []
    with httpx.Client(base_url=node.api, timeout=30) as http:
        for digest in digests:
            response = http.get(f"/v1/notary/{digest.hex()}")
            assert response.status_code in (200, 404), response.text
            records = response.json()["records"] if response.status_code == 200 else None
            answers.append(
                None if records is None else [(r["tx_id"], r["position"]) for r in records]
            )
    return answers


# --- durability ----------------------------------------------------------------------------


def test_the_kill_rounds_ran_without_unexpected_client_errors(history: History) -> None:
    assert len(history.rounds) == kill_rounds
    assert [error for r in history.rounds for error in r.unexpected_errors] == [], history


def test_every_receipt_returned_before_a_kill_verifies_and_names_a_block_the_chain_holds(
    history: History,
) -> None:
    assert len(history.receipts) >= kill_rounds * receipts_before_kill * 3, history
    mismatches = []
    with httpx.Client(base_url=history.node.api, timeout=30) as http:
        for returned in history.receipts:
            verify_receipt(returned.receipt, returned.document)
            certificate = returned.receipt["certificate"]
            block = http.get(f"/v1/blocks/{certificate['height']}")
            if block.status_code != 200 or block.json()["hash"] != certificate["block_hash"]:
                mismatches.append((certificate, block.status_code, block.text[:200]))
    assert mismatches == [], history


def test_every_batch_a_client_saw_committed_is_committed_after_restart(
    history: History, committed: dict[str, bool]
) -> None:
    seen = [batch for batch in history.batches if batch.seen_committed_height is not None]
    assert seen, history
    lost = [batch.tx_id for batch in seen if not committed[batch.tx_id]]
    assert lost == [], history


def test_each_restart_resumes_at_or_above_the_highest_height_a_client_saw(
    history: History,
) -> None:
    behind = [r for r in history.rounds if r.height_after_restart < r.highest_seen_before_kill]
    assert behind == [], history


# --- atomicity -----------------------------------------------------------------------------


def test_every_committed_batch_has_a_record_for_each_of_its_hashes(
    history: History, committed: dict[str, bool], records_on_disk: dict[bytes, Any]
) -> None:
    batches = [batch for batch in history.batches if committed[batch.tx_id]]
    assert batches, history
    missing = [
        (batch.tx_id, position, records_on_disk[digest])
        for batch in batches
        for position, digest in enumerate(batch.digests)
        if records_on_disk[digest] != [(batch.tx_id, position)]
    ]
    assert missing == [], f"{len(missing)} hashes, first {missing[:3]}; {history}"


def test_no_hash_of_a_batch_lost_in_a_kill_has_a_record(
    history: History, committed: dict[str, bool], records_on_disk: dict[bytes, Any]
) -> None:
    batches = [batch for batch in history.batches if not committed[batch.tx_id]]
    recorded = [
        (batch.tx_id, position, records_on_disk[digest])
        for batch in batches
        for position, digest in enumerate(batch.digests)
        if records_on_disk[digest]
    ]
    assert recorded == [], f"{len(recorded)} hashes, first {recorded[:3]}; {history}"


def test_the_notary_lookup_agrees_for_first_sampled_and_last_hash_of_every_batch(
    history: History, committed: dict[str, bool], records_on_disk: dict[bytes, Any]
) -> None:
    disagreements = []
    for batch in history.batches:
        positions = [0, batch.sampled_position, hashes_per_batch - 1]
        digests = [batch.digests[p] for p in positions]
        expected = [[(batch.tx_id, p)] if committed[batch.tx_id] else None for p in positions]
        found = api_records(history.node, digests)
        if found != expected:
            disagreements.append((batch.tx_id, expected, found))
    assert disagreements == [], f"first {disagreements[:3]}; {history}"


def test_the_kills_caught_batches_in_flight(history: History, committed: dict[str, bool]) -> None:
    """Guard: without batches lost in flight the test above could not fail.

    A batch counts from the moment it is recorded, just before it is sent; a lost one may have
    been admitted by the node or not. (The node answers 202 only after the block that holds
    the batch, in practice, so admitted-and-answered batches are rarely lost.)
    """
    lost = [batch for batch in history.batches if not committed[batch.tx_id]]
    assert lost, history


# --- the chain ---------------------------------------------------------------------------------


def test_blocks_run_from_1_to_the_tip_each_linked_to_its_parent(history: History) -> None:
    with httpx.Client(base_url=history.node.api, timeout=30) as http:
        status = http.get("/v1/status").json()
        tip = status["height"]
        assert tip >= max(batch.seen_committed_height or 0 for batch in history.batches)
        parent = status["genesis_hash"]
        for height in range(1, tip + 1):
            block = http.get(f"/v1/blocks/{height}").json()
            assert block["header"]["height"] == height, block
            assert block["header"]["parent_hash"] == parent, (height, block)
            assert block["certificate"]["block_hash"] == block["hash"], (height, block)
            assert block["certificate"]["height"] == height, (height, block)
            parent = block["hash"]
        assert parent == status["block_hash"]
        # The chain keeps growing (a block a second when idle), so probe far past the tip.
        assert http.get(f"/v1/blocks/{tip + 100_000}").status_code == 404


def test_after_the_last_restart_a_put_succeeds_above_the_old_tip(
    history: History, cli: Cli, tmp_path: Path
) -> None:
    old_tip = max(
        history.rounds[-1].height_after_restart, history.rounds[-1].highest_seen_before_kill
    )
    document = tmp_path / "after-crash.txt"
    document.write_text(f"anchored after {kill_rounds} kills, seed {history.seed}\n")
    node = history.node
    put = cli("notary", "put", document, "--home", node.home, "--api", node.api, "--out", tmp_path)
    assert put.returncode == 0, put.stdout + put.stderr
    verified = cli("verify", tmp_path / "after-crash.txt.receipt.json", "--file", document)
    assert verified.returncode == 0, verified.stdout
    height = int(verified.stdout.split(" in block ")[1].split(" ")[0])
    assert height > old_tip


# --- a `notary put` interrupted by kill -9 ------------------------------------------------------


@pytest.mark.parametrize("delay_ms", [0, 5, 15, 40, 250])
def test_a_put_whose_node_is_killed_while_it_submits_keeps_all_or_none_of_its_hashes(
    node: RunningNode,
    tmp_path: Path,
    interrupted_put: Callable[..., InterruptedPut],
    delay_ms: int,
) -> None:
    directory = tmp_path / "files"
    directory.mkdir()
    paths = []
    for index in range(interrupted_put_files):
        path = directory / f"interrupted-{index:05d}.txt"
        path.write_text(f"{tmp_path.name} interrupted document {index}\n")
        paths.append(path)
    result = interrupted_put(node, paths, tmp_path / "receipts", delay_ms / 1000)
    assert all(result.recorded) or not any(result.recorded), str(result)
    if result.returncode == 0:
        assert all(result.recorded) and result.receipts_written == len(paths), str(result)
    else:
        assert result.receipts_written == 0, str(result)


# --- process contract --------------------------------------------------------------------------


def test_node_pid_holds_the_pid_of_the_running_process(node: RunningNode) -> None:
    assert node.process is not None
    assert node.pid_path.read_text().strip() == str(node.process.pid)


def test_a_second_start_of_a_running_node_is_refused_and_leaves_its_node_pid(
    node: RunningNode, cli: Cli
) -> None:
    assert node.process is not None
    for command in (
        ("node", "--home", node.home, "--name", VALIDATOR_NAME, "--port", free_port()),
        ("up", "--home", node.home, "--port", free_port(), "--validators", "1"),
    ):
        second = cli(*command)
        assert second.returncode != 0, second.stdout
        assert f"already running (pid {node.process.pid})" in second.stderr, second.stderr
        assert node.pid_path.read_text().strip() == str(node.process.pid)
    assert httpx.get(f"{node.api}/v1/status", timeout=30).status_code == 200


def test_sigterm_exits_0_and_removes_node_pid(node: RunningNode) -> None:
    assert node.stop() == 0, node.output()
    assert not node.pid_path.exists()


def test_a_restart_after_sigterm_resumes_the_same_chain_with_its_blocks(
    node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    document = tmp_path / "before-restart.txt"
    document.write_text("anchored before a graceful restart\n")
    put = cli("notary", "put", document, "--home", node.home, "--api", node.api, "--out", tmp_path)
    assert put.returncode == 0, put.stderr
    before = httpx.get(f"{node.api}/v1/status", timeout=30).json()
    assert before["height"] >= 1
    node.restart()
    after = httpx.get(f"{node.api}/v1/status", timeout=30).json()
    block = httpx.get(f"{node.api}/v1/blocks/{before['height']}", timeout=30).json()
    assert after["genesis_hash"] == before["genesis_hash"]
    assert after["height"] >= before["height"]
    assert block["hash"] == before["block_hash"]
