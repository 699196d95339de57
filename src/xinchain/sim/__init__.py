"""Deterministic simulation of consensus with faulty networks and Byzantine validators."""

from xinchain.sim.network import SimConfig, Simulation, Violation, run_seed

__all__ = ["SimConfig", "Simulation", "Violation", "run_seed"]
