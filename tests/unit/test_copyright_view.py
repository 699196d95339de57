"""The node's copyright search index, as a node keeps it.

* A node's first search starts a follower that loads works as they commit; a search finds a
  work committed just before it (the search loads a short backlog itself).
* Far behind (a first search over a large registry), a search answers at once from the index
  as it stands, says how far it is, and the follower catches up while searches go on.
* `close` stops the follower.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import image_set
import pytest

from xinchain.apps.copyright import view as view_module
from xinchain.apps.copyright.perceptual import hash_image, work_hashes
from xinchain.apps.copyright.view import CopyrightView

SEED = 20261204


class Chain:
    """The committed state the view reads: the contract's keys for registered works."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def read_state(self, contract: str, key: str) -> Any:
        assert contract == "copyright"
        return self.state.get(key)

    def register(self, data: bytes) -> str:
        record = work_hashes(data).work_args("a photo", "")
        number = self.state.get("count", 0)
        self.state[f"at/{number}"] = record["sha256"]
        self.state[f"work/{record['sha256']}"] = {"record": record}
        self.state["count"] = number + 1
        return str(record["sha256"])


def photo(index: int) -> bytes:
    return image_set.generate_photo(index, SEED).data


@pytest.fixture()
def chain() -> Chain:
    return Chain()


def found(view: CopyrightView, data: bytes) -> list[str]:
    return [match.work["sha256"] for match in view.search(list(hash_image(data).hashes))]


def wait_indexed(view: CopyrightView, works: int) -> None:
    deadline = time.monotonic() + 30
    while view.status()["indexed"] < works:
        assert time.monotonic() < deadline, view.status()
        time.sleep(0.05)


def test_a_search_finds_what_committed_just_before_it(chain: Chain) -> None:
    view = CopyrightView(chain)  # type: ignore[arg-type]
    try:
        assert view.status() == {
            "registered": 0, "indexed": 0, "hashes": 0, "points": 0, "following": False
        }  # fmt: skip
        first = chain.register(photo(0))
        assert found(view, photo(0)) == [first]
        second = chain.register(photo(1))
        assert found(view, photo(1)) == [second]
        status = view.status()
        assert (status["registered"], status["indexed"], status["following"]) == (2, 2, True)
        assert status["hashes"] == 2 * 26
        assert status["points"] > 0
    finally:
        view.close()


def test_far_behind_a_search_answers_at_once_and_the_follower_catches_up(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(view_module, "wait_backlog_max", 2)
    monkeypatch.setattr(view_module, "load_chunk_works", 1)
    shas = [chain.register(photo(i)) for i in range(5)]
    view = CopyrightView(chain)  # type: ignore[arg-type]
    try:
        # Loads are held back: a search that waited for them would not return.
        view._lock.acquire()
        answered: list[list[str]] = []
        searching = threading.Thread(target=lambda: answered.append(found(view, photo(4))))
        searching.start()
        searching.join(timeout=10)
        assert answered == [[]], "a search far behind should answer from the index as it is"
        assert view.status()["indexed"] == 0
        view._lock.release()
        wait_indexed(view, 5)
        assert found(view, photo(4)) == [shas[4]]
    finally:
        if view._lock.locked():
            view._lock.release()
        view.close()
    assert view._follower is not None and not view._follower.is_alive()
