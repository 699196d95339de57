"""The consensus core in the deterministic simulator (src/xinchain/sim).

Scenarios:
- 2,000 seeds, 4 validators of which 1 Byzantine (equivocating proposer, double voter, invalid
  blocks, withholding, a lock attack, or a mix), over a network that delays, drops, duplicates
  and reorders messages, partitions validators and isolates a node that has just committed,
  with honest validators crashing and restarting: no seed breaks agreement, honest votes or
  state, and in every seed every honest node commits new blocks after the network heals;
- the seeds cover every Byzantine strategy and every kind of fault;
- a seed replays exactly: same commits, same fault schedule;
- a SafetyRules that skips its lock check is caught by at least one of those seeds, as an
  agreement violation (the simulator would find such a bug before users do);
- block sync that serves a lagging peer from the height after the one it asked for is caught
  by at least one of those seeds, as a liveness violation: the simulator runs the nodes' own
  sync rules (consensus/sync.py), the real ledger source and application, not copies;
- the simulated validators execute and commit client transactions through the real
  application: every honest node holds the same tally state, made of the transactions in its
  blocks.

`python -m xinchain.sim --seeds 100000` runs the long version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

import pytest

from xinchain.consensus.messages import CommitProof, Vote
from xinchain.consensus.safety import SafetyRules
from xinchain.consensus.sync import BlockSync
from xinchain.sim import SimConfig, Simulation, Violation
from xinchain.sim.ledger import TALLY

CI_SEEDS = range(2_000)
# Work is split in chunks over both cores of the CI machine.
CHUNK = 50


class SyncServingTheWrongHeight(BlockSync[int, CommitProof]):
    """Deliberately broken: serves a lagging peer from one height after the one it asked for."""

    def to_serve(self, peer: int, first: int, tip: int, now_ms: int) -> range:
        served = super().to_serve(peer, first, tip, now_ms)
        return range(served.start + 1, served.stop)


class SafetyRulesWithoutLock(SafetyRules):
    """Deliberately broken: prevotes any block, whatever it is locked on."""

    def _check_lock(self, height: int, block_hash: str, polka: Sequence[Vote]) -> None:
        return


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Refusals the cores log are expected under attack: silenced here, restored after."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


BROKEN = {
    "": SimConfig,
    "safety": lambda: SimConfig(safety_factory=SafetyRulesWithoutLock),
    "sync": lambda: SimConfig(sync_factory=SyncServingTheWrongHeight),
}


def _failures(seeds: range, broken: str, caught: str) -> list[tuple[int, str]]:
    """The seeds' violations; with `caught`, stop at the first whose reason starts with it.
    Runs in worker processes, whose logs are silenced like the tests'."""
    logging.disable(logging.WARNING)
    failures = []
    for seed in seeds:
        try:
            Simulation(seed, BROKEN[broken]()).run()
        except Violation as exc:
            failures.append((seed, str(exc)))
            if caught and str(exc).startswith(caught):
                break
    return failures


def _chunks() -> list[range]:
    return [CI_SEEDS[i : i + CHUNK] for i in range(0, len(CI_SEEDS), CHUNK)]


def _run_all(broken: str = "") -> list[tuple[int, str]]:
    """Every CI seed over both cores: all the violations."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        chunks = _chunks()
        results = pool.map(_failures, chunks, [broken] * len(chunks), [""] * len(chunks))
        return [failure for chunk in results for failure in chunk]


def _first_caught(broken: str, caught: str) -> list[int]:
    """The CI seeds in order over both cores until a violation starting with `caught` is
    found: the seeds that caught it (with those the chunks running then found too)."""
    found: list[int] = []
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_failures, chunk, broken, caught) for chunk in _chunks()]
        for future in futures:
            found += [seed for seed, reason in future.result() if reason.startswith(caught)]
            if found:
                pool.shutdown(wait=True, cancel_futures=True)
                break
    return found


@pytest.mark.slow  # 2,000 seeds: a large workload
@pytest.mark.timeout(600)
def test_no_seed_violates_safety_or_liveness() -> None:
    failures = _run_all()
    assert failures == [], "\n".join(f"seed {seed}: {reason}" for seed, reason in failures)


def test_seeds_cover_every_strategy_and_fault() -> None:
    strategies: set[str] = set()
    isolating = 0
    for seed in range(200):
        simulation = Simulation(seed)
        strategies.update(node.strategy for node in simulation.nodes if node.byzantine)
        isolating += simulation.isolate_on_decide
    expected = {"equivocate", "double_vote", "invalid_block", "withhold", "mixed", "lock_attack"}
    assert strategies == expected
    assert 0 < isolating < 200


def test_a_seed_replays_exactly() -> None:
    first, second = Simulation(7), Simulation(7)
    first.run()
    second.run()
    assert first.trace == second.trace
    assert first.committed == second.committed
    assert first.events == second.events
    assert len(first.committed) > 5


def test_a_crashing_seed_restarts_nodes_and_still_agrees() -> None:
    crashing = next(seed for seed in range(100) if any("crash" in line for line in _trace_of(seed)))
    assert any("restart" in line for line in _trace_of(crashing))


def _trace_of(seed: int) -> list[str]:
    simulation = Simulation(seed)
    simulation.run()
    return simulation.trace


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_safety_rules_without_the_lock_check_are_caught() -> None:
    agreement = _first_caught("safety", "agreement")
    assert agreement, "the simulator did not catch SafetyRules that ignore their lock"
    print("weakened SafetyRules caught by seeds:", agreement)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sync_serving_the_wrong_height_is_caught() -> None:
    liveness = _first_caught("sync", "liveness")
    assert liveness, "the simulator did not catch block sync serving the wrong heights"
    print("sync serving the wrong height caught by seeds:", liveness)


def test_validators_execute_client_transactions_through_the_application() -> None:
    simulation = Simulation(3)
    simulation.run()
    honest = [node for node in simulation.nodes if not node.byzantine]
    height = min(node.height for node in honest)
    included = [raw for h in range(1, height + 1) for raw in honest[0].app.block(h).txs]
    assert included, "no client transaction reached a block"
    for node in honest:
        assert [node.app.block(h) for h in range(1, height + 1)] == [
            honest[0].app.block(h) for h in range(1, height + 1)
        ]
    totals = {node.index: node.app.read_state(TALLY, "org0") for node in honest}
    assert len(set(totals.values())) == 1, totals
