"""Connection caps (xinchain.p2p.guard) and the open-file budget (xinchain.node.limits)."""

from __future__ import annotations

import pytest

from xinchain.errors import ConfigError
from xinchain.node.limits import NodeLimits, connection_budget
from xinchain.p2p.guard import ConnectionGuard


class Closed:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_an_address_at_its_cap_is_refused_and_others_are_not() -> None:
    guard = ConnectionGuard("api", per_address=2, total=10)
    closed = Closed()
    slots = [guard.admit("10.0.0.1", closed) for _ in range(2)]
    assert all(slots)
    assert guard.admit("10.0.0.1", closed) is None
    assert guard.admit("10.0.0.2", closed) is not None
    assert guard.status()["refused"] == 1
    slots[0].release()  # type: ignore[union-attr]
    assert guard.admit("10.0.0.1", closed) is not None


def test_at_the_total_the_longest_idle_connection_makes_room() -> None:
    guard = ConnectionGuard("api", per_address=10, total=3)
    closes = [Closed() for _ in range(4)]
    first = guard.admit("a", closes[0])
    second = guard.admit("b", closes[1])
    third = guard.admit("c", closes[2])
    assert first and second and third
    first.busy()  # serving a request: never evicted
    newcomer = guard.admit("d", closes[3])
    assert newcomer is not None
    assert [c.count for c in closes] == [0, 1, 0, 0]  # the oldest idle one, b, was closed
    assert second.released and guard.open_total == 3
    second.release()  # its connection_lost comes later: releasing twice counts once
    assert guard.open_total == 3 and guard.status()["evicted"] == 1


def test_at_the_total_with_nothing_idle_the_newcomer_is_refused() -> None:
    guard = ConnectionGuard("p2p", per_address=10, total=2)
    for address in ("a", "b"):
        slot = guard.admit(address, Closed())
        assert slot is not None
        slot.busy()
    assert guard.admit("c", Closed()) is None
    assert guard.status() == {
        "open": 2,
        "idle": 0,
        "addresses": 2,
        "per_address_max": 10,
        "total_max": 2,
        "refused": 1,
        "evicted": 0,
        "timed_out": 0,
    }


def test_refusals_are_logged_with_the_worst_address(caplog: pytest.LogCaptureFixture) -> None:
    guard = ConnectionGuard("api", per_address=1, total=10)
    guard.admit("203.0.113.9", Closed())
    for _ in range(50):
        guard.admit("203.0.113.9", Closed())
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1  # rate-limited: one line, not fifty
    assert "203.0.113.9" in lines[0] and "1 connections from one address" in lines[0]


def test_the_budget_keeps_a_reserve_under_a_low_open_file_limit() -> None:
    budget = connection_budget(NodeLimits(), 1024)
    held = budget.api.total + budget.p2p.total + budget.api_backlog + budget.p2p_backlog
    assert held <= 1024 - NodeLimits().fd_reserve
    assert budget.p2p.total >= 16 and budget.api.total >= 512
    roomy = connection_budget(NodeLimits(), 1 << 20)
    assert (roomy.api.total, roomy.p2p.total) == (4096, 256)


def test_a_limit_too_low_for_a_node_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="ulimit -n 320"):
        connection_budget(NodeLimits(), 300)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be an object"),
        ({"head_timeout": 3}, "unknown field"),
        ({"api_total": 0}, 'limits.api_total" must be a positive integer'),
        ({"api_total": 2.5}, 'limits.api_total" must be a positive integer'),
        ({"head_timeout_s": "fast"}, 'limits.head_timeout_s" must be a positive number'),
        ({"keep_alive_s": True}, 'limits.keep_alive_s" must be a positive integer'),
    ],
)
def test_bad_limits_in_node_json_are_named(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NodeLimits.from_value(value)


def test_limits_read_back_as_written() -> None:
    limits = NodeLimits.from_value({"head_timeout_s": 2.5, "api_per_address": 16})
    assert limits.head_timeout_s == 2.5 and limits.api_per_address == 16
    assert NodeLimits.from_value(limits.to_value()) == limits


def test_failed_accepts_are_logged_once_a_minute_without_a_traceback() -> None:
    import logging

    from xinchain.node.limits import AcceptErrorsOncePerMinute

    accept_filter = AcceptErrorsOncePerMinute()
    kept = []
    for second in range(0, 130, 1):
        record = logging.LogRecord(
            "asyncio",
            logging.ERROR,
            __file__,
            1,
            "socket.accept() out of system resource",
            None,
            (OSError, OSError(24, "Too many open files"), None),
        )
        record.created = 1000.0 + second
        if accept_filter.filter(record):
            kept.append(record)
    assert len(kept) == 3  # seconds 0, 60 and 120
    assert kept[1].getMessage().startswith("accept() failed 60 time(s)")
    assert all(record.exc_info is None for record in kept)
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", None, None)
    assert accept_filter.filter(other)
