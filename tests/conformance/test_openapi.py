"""The node's API answers as its OpenAPI description says (issue 13): schemathesis, all checks.

A real single-validator node (`xinchain up`) is started; schemathesis reads /openapi.json and
runs every check on every operation (status codes, content types, bodies and headers as
described, no server error, schema-violating input refused, schema-valid input accepted
except where tests/conformance/schemathesis.toml says why not). CI runs a short pass; the
long run is in docs/reliability.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ports import free_ports

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).with_name("schemathesis.toml")
examples_in_ci = 25
ready_timeout_s = 60.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("conformance") / "home"
    (port,) = free_ports(1)
    log = (home.parent / "node.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "xinchain"), "up", "--home", str(home), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            assert process.poll() is None, (home.parent / "node.log").read_text()
            try:
                if httpx.get(url + "/v1/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the node did not answer"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_every_operation_answers_as_described(node: str) -> None:
    command = [
        str(BIN / "st"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{node}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples_in_ci),
        "--request-timeout",
        "20",
        "--seed",
        "20261204",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=500, env={**os.environ, "NO_COLOR": "1"}
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert " passed" in summary and "failures" not in summary.split("SUMMARY")[-1], summary
