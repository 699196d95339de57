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
  agreement violation (the simulator would find such a bug before users do).

`python -m xinchain.sim --seeds 100000` runs the long version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import pytest

from xinchain.consensus.messages import Vote
from xinchain.consensus.safety import SafetyRules
from xinchain.sim import SimConfig, Simulation, Violation

CI_SEEDS = range(2_000)
# Work is split in chunks over both cores of the CI machine.
CHUNK = 250


class SafetyRulesWithoutLock(SafetyRules):
    """Deliberately broken: prevotes any block, whatever it is locked on."""

    def _check_lock(self, height: int, block_hash: str, polka: Sequence[Vote]) -> None:
        return


def _failures(seeds: range, weakened: bool) -> list[tuple[int, str]]:
    logging.disable(logging.WARNING)
    config = SimConfig(safety_factory=SafetyRulesWithoutLock) if weakened else None
    failures = []
    for seed in seeds:
        try:
            Simulation(seed, config).run()
        except Violation as exc:
            failures.append((seed, str(exc)))
    return failures


def _run_all(weakened: bool) -> list[tuple[int, str]]:
    chunks = [CI_SEEDS[i : i + CHUNK] for i in range(0, len(CI_SEEDS), CHUNK)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = pool.map(_failures, chunks, [weakened] * len(chunks))
        return [failure for chunk in results for failure in chunk]


@pytest.mark.timeout(600)
def test_no_seed_violates_safety_or_liveness() -> None:
    failures = _run_all(weakened=False)
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
    logging.disable(logging.WARNING)
    first, second = Simulation(7), Simulation(7)
    first.run()
    second.run()
    assert first.trace == second.trace
    assert first.committed == second.committed
    assert first.events == second.events
    assert len(first.committed) > 5


def test_a_crashing_seed_restarts_nodes_and_still_agrees() -> None:
    logging.disable(logging.WARNING)
    crashing = next(seed for seed in range(100) if any("crash" in line for line in _trace_of(seed)))
    assert any("restart" in line for line in _trace_of(crashing))


def _trace_of(seed: int) -> list[str]:
    simulation = Simulation(seed)
    simulation.run()
    return simulation.trace


@pytest.mark.timeout(600)
def test_safety_rules_without_the_lock_check_are_caught() -> None:
    failures = _run_all(weakened=True)
    agreement = [(seed, reason) for seed, reason in failures if reason.startswith("agreement")]
    assert agreement, "the simulator did not catch SafetyRules that ignore their lock"
    print("weakened SafetyRules caught by seeds:", [seed for seed, _ in agreement])
