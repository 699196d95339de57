"""A node's clock moved ahead of the machine's, for tests that would otherwise wait it out (a
promotion's grace period): libfaketime preloaded into the node's own process.

The `faketime` command would run the node as its child, which a signal to the parent does not
stop; preloading the library leaves one process. Timers (asyncio's monotonic clock) keep the
machine's pace: only the wall clock, which dates blocks, moves.
"""

from __future__ import annotations

import glob


def clock_ahead_env(ahead_s: int) -> dict[str, str]:
    """Environment variables that start a process with its clock `ahead_s` seconds ahead."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is missing: scripts/setup-browser installs faketime"
    return {
        "LD_PRELOAD": found[0],
        "FAKETIME": f"+{ahead_s}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # The monotonic clock is not faked, so its workaround only costs time: requests to a
        # node with it were about a third slower.
        "FAKETIME_FORCE_MONOTONIC_FIX": "0",
    }
