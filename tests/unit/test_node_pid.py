"""node.pid names the running node only while it is that node's: a stale or reused pid is no node.

A node killed with SIGKILL leaves its node.pid behind, and the kernel may give its number to any
later process; `Home.running_node_pid` must answer None for those, or an operator's second start
would be refused, or worse, the supervisor would signal a stranger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xinchain.node.home import Home

NAME = "validator-0"


def _home(tmp_path: Path, content: str) -> Home:
    home = Home(tmp_path)
    home.node_dir(NAME).mkdir(parents=True)
    (home.node_dir(NAME) / "node.pid").write_text(content)
    return home


def test_no_pid_file_is_no_running_node(tmp_path: Path) -> None:
    assert Home(tmp_path).running_node_pid(NAME) is None


@pytest.mark.parametrize("content", ["", "not a pid\n", "-1\n", "99999999999\n"])
def test_a_garbled_pid_file_is_no_running_node(tmp_path: Path, content: str) -> None:
    assert _home(tmp_path, content).running_node_pid(NAME) is None


def test_a_pid_of_another_program_is_no_running_node(tmp_path: Path) -> None:
    assert _home(tmp_path, "1\n").running_node_pid(NAME) is None  # init, running since boot


def test_the_reading_process_is_not_its_own_running_node(tmp_path: Path) -> None:
    assert _home(tmp_path, f"{os.getpid()}\n").running_node_pid(NAME) is None


@pytest.mark.slow
def test_a_reused_pid_is_no_running_node_and_the_writer_is(tmp_path: Path) -> None:
    program = "import sys, time; time.sleep(float(sys.argv[1]))"
    writer = subprocess.Popen([sys.executable, "-c", program, "30", "xinchain"])
    try:
        home = _home(tmp_path, f"{writer.pid}\n")
        assert home.running_node_pid(NAME) == writer.pid
        later = subprocess.Popen([sys.executable, "-c", program, "30", "xinchain"])
        try:
            # A file written 2.5 s before `later` started (past the boot time's whole-second
            # slack) that names it: its number was reused.
            pid_path = home.node_dir(NAME) / "node.pid"
            pid_path.write_text(f"{later.pid}\n")
            os.utime(pid_path, (time.time() - 2.5,) * 2)
            assert home.running_node_pid(NAME) is None
        finally:
            later.kill()
            later.wait()
    finally:
        writer.kill()
        writer.wait()
