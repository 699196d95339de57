"""The fuzz targets of long/fuzz.py accept their own seeds and refuse garbage cleanly, so that
the hour-long runs (docs/reliability.md) start from working targets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "long" / "fuzz.py"


def _fuzz_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("xinchain_fuzz", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["xinchain_fuzz"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["transaction", "receipt", "epcis"])
def test_a_target_runs_its_seeds_and_garbage_without_crashing(name: str) -> None:
    fuzz = _fuzz_module()
    target, seeds = fuzz.TARGETS[name]
    run = target()
    found = seeds()
    assert found, f"no seeds for {name}"
    for data in [
        *found,
        b"",
        b"\x00" * 10,
        b"{",
        b"\xa1\x61x\x01",
        *(s[: len(s) // 2] for s in found),
    ]:
        run(data)
