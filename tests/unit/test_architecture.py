"""The architecture is checked, not hoped for (docs/architecture.md).

* The import-linter contracts in pyproject.toml hold on this source tree (`lint-imports`).
* Each contract fails when broken: a copy of the source where a contract module imports
  consensus, an app imports another app, or the core imports an app is refused, with the
  offending import named.
* Importing consensus loads no contract and no app.
* The registry refuses apps that clash: two apps of one name, a receipt method declared twice,
  a record kind named like a receipt field.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xinchain.apps.registry import APPS
from xinchain.appspec import check_apps
from xinchain.errors import ConfigError
from xinchain.records import ReceiptKinds

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(source_root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repository's contracts, on the package under `source_root`."""
    environment = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold_on_this_tree() -> None:
    done = _lint(ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.slow  # copies the tree and runs lint-imports on it, about 2 s each
@pytest.mark.parametrize(
    ("module", "added", "contract", "named"),
    [
        (
            "apps/notary/contract.py",
            "import xinchain.consensus.safety",
            "Contracts run inside execution only",
            "xinchain.apps.notary.contract is not allowed to import xinchain.consensus",
        ),
        (
            "contracts/governance.py",
            "from xinchain.mempool import pool",
            "Contracts run inside execution only",
            "xinchain.contracts is not allowed to import xinchain.mempool",
        ),
        (
            "apps/promo/view.py",
            "from xinchain.apps.copyright import perceptual",
            "Apps never import each other",
            "xinchain.apps.promo is not allowed to import xinchain.apps.copyright",
        ),
        (
            "consensus/safety.py",
            "import xinchain.apps.notary.contract",
            "The chain's core never imports an app",
            "xinchain.consensus is not allowed to import xinchain.apps",
        ),
        (
            "storage/memory.py",
            "import xinchain.execution.state",
            "Layers",
            "xinchain.storage is not allowed to import xinchain.execution",
        ),
    ],
)
def test_a_broken_contract_is_refused(
    tmp_path: Path, module: str, added: str, contract: str, named: str
) -> None:
    shutil.copytree(ROOT / "src" / "xinchain", tmp_path / "xinchain")
    target = tmp_path / "xinchain" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{added}  # noqa\n")
    done = _lint(tmp_path)
    output = " ".join(done.stdout.split())  # the report wraps long names
    assert done.returncode == 1, output
    assert f"{contract}" in output and "BROKEN" in output
    assert " ".join(named.split()) in output, output


def test_importing_consensus_loads_no_contract_and_no_app() -> None:
    probe = (
        "import sys, xinchain.consensus.safety, xinchain.consensus.core; "
        "print([m for m in sys.modules if 'apps' in m or 'contracts' in m])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_registry_refuses_clashing_apps() -> None:
    notary = next(app for app in APPS if app.name == "notary")
    with pytest.raises(ConfigError, match="two apps"):
        check_apps([*APPS, notary])
    with pytest.raises(ConfigError, match=r"notary\.anchor is declared by two receipt kinds"):
        ReceiptKinds.gather([notary.receipts, notary.receipts])
    evidence = next(app for app in APPS if app.name == "copyright").receipts.records[1]
    with pytest.raises(ConfigError, match="names a receipt field"):
        ReceiptKinds.gather([ReceiptKinds(records=(evidence,))], reserved={"evidence"})
