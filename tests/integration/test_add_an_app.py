"""Adding an app touches its folder and the registry line, nothing else (docs/architecture.md,
"Adding an app").

The notice app (tests/fixture_apps/notice/) is added to a copy of the source tree by following
the checklist: its folder becomes `xinchain/apps/notice/`, and one line naming it goes into the
registry. Then, on that copy:

* the import-linter contracts hold, and the copy differs from this tree only in the new folder
  and the registry;
* a real node (`xinchain up`) runs the app: `xinchain notice post` signs and submits a notice
  and writes its receipt, the app's REST route serves the notice;
* `xinchain verify` accepts the notice receipt offline, says what it proves, and writes a
  report that describes the notice; a receipt whose notice text was changed is refused;
* this tree's own `xinchain verify`, whose registry has no notice app, refuses the receipt: the
  verifier accepts only record kinds an app declares.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import XINCHAIN, running_node

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixture_apps" / "notice"
REGISTRY = Path("xinchain/apps/registry.py")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def add_notice_app(source: Path) -> None:
    """The checklist's two steps: the folder, and its line in the registry."""
    shutil.copytree(FIXTURE, source / "xinchain" / "apps" / "notice")
    registry = source / REGISTRY
    text = registry.read_text(encoding="utf-8")
    last = '    "copyright",\n'
    assert last in text, "the registry lists the apps one a line"
    registry.write_text(text.replace(last, last + '    "notice",\n'), encoding="utf-8")


def changed_files(ours: Path, theirs: Path) -> set[str]:
    """Paths (relative) that differ between two trees, ignoring byte-code caches."""
    found: set[str] = set()

    def walk(comparison: filecmp.dircmp[str], prefix: str) -> None:
        for name in comparison.left_only + comparison.right_only + comparison.diff_files:
            if name != "__pycache__":
                found.add(f"{prefix}{name}")
        for name, sub in comparison.subdirs.items():
            if name != "__pycache__":
                walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(ours, theirs), "")
    return found


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("with-notice")
    shutil.copytree(
        ROOT / "src" / "xinchain", root / "xinchain", ignore=shutil.ignore_patterns("__pycache__")
    )
    add_notice_app(root)
    return root


@pytest.fixture(scope="module")
def environment(source: Path) -> Iterator[dict[str, str]]:
    """The environment that runs the copy: its package first on the path."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(source)  # running_node's `xinchain up` inherits it
    try:
        yield {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def run(environment: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XINCHAIN), *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_only_the_folder_and_the_registry_line_change(source: Path) -> None:
    changed = changed_files(ROOT / "src" / "xinchain", source / "xinchain")
    assert changed == {"apps/notice", "apps/registry.py"}
    ours = (ROOT / "src" / REGISTRY).read_text(encoding="utf-8").splitlines()
    theirs = (source / REGISTRY).read_text(encoding="utf-8").splitlines()
    assert [line for line in theirs if line not in ours] == ['    "notice",']
    assert len(theirs) == len(ours) + 1


def test_the_contracts_hold_with_the_new_app(source: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(ROOT / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_real_node_runs_the_new_app(
    source: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    with running_node(tmp_path / "home", "ed25519-sha256") as node:
        receipt_path = tmp_path / "notice.receipt.json"
        text = (
            "2026 双11 物流公告：保税仓 11 月 12 日起恢复发货 (bonded warehouse resumes shipping)"
        )
        posted = run(
            environment,
            *("notice", "post", text, "--out", receipt_path),
            *("--home", node.home, "--api", node.api),
        )
        assert posted.returncode == 0, posted.stdout + posted.stderr
        receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
        tx_id = receipt["result"]["tx_id"]
        served = httpx.get(f"{node.api}/v1/notice/{tx_id}", timeout=30).json()
        assert served["text"] == text and served == receipt["notice"]
        genesis_hash = httpx.get(f"{node.api}/v1/status", timeout=30).json()["genesis_hash"]

    report = tmp_path / "notice.html"
    checked = run(
        environment, "verify", receipt_path, "--genesis-hash", genesis_hash, "--report", report
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(rf"^valid: notice by {served['org']} ", checked.stdout, re.MULTILINE)
    page = report.read_text(encoding="utf-8")
    assert "posts a public notice" in page and "保税仓" in page and "公告" in page

    forged = json.loads(json.dumps(receipt))
    forged["notice"]["text"] = text.replace("12", "20")
    forged_path = tmp_path / "forged.receipt.json"
    forged_path.write_text(json.dumps(forged), encoding="utf-8")
    refused = run(environment, "verify", forged_path, "--genesis-hash", genesis_hash)
    assert refused.returncode == 1 and "invalid" in refused.stdout

    plain = {key: value for key, value in environment.items() if key != "PYTHONPATH"}
    unknown = run(plain, "verify", receipt_path, "--genesis-hash", genesis_hash)
    assert unknown.returncode == 1, unknown.stdout
    assert "unexpected ['notice']" in unknown.stdout
