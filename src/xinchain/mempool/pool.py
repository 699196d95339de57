"""The mempool: admitted transactions in arrival order, bounded in count and bytes.

Admission (`Application.check_tx`) happens before `add`; the pool only dedupes, bounds and
hands out transactions in arrival order. When full it refuses with `MempoolFull`, which the
REST layer turns into HTTP 429 with Retry-After: back-pressure instead of unbounded memory.
"""

from __future__ import annotations

from collections import OrderedDict

from xinchain.errors import MempoolFull
from xinchain.types import CheckedTx

# Pending transactions: about four seconds of the throughput we aim for, so a client that
# outruns the chain learns it quickly.
mempool_txs_max = 20_000
# Pending bytes: enough for dozens of full notary batches, far below the machine's memory.
mempool_bytes_max = 256 * 1024 * 1024


class Mempool:
    def __init__(self, txs_max: int = mempool_txs_max, bytes_max: int = mempool_bytes_max) -> None:
        self._pending: OrderedDict[str, CheckedTx] = OrderedDict()
        # The same transactions by their exact bytes: a proposed block lists raw
        # transactions, and finding the admitted ones this way skips decoding them again.
        self._by_raw: dict[bytes, CheckedTx] = {}
        self._bytes = 0
        self._txs_max = txs_max
        self._bytes_max = bytes_max

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, tx_id: str) -> bool:
        return tx_id in self._pending

    def get(self, tx_id: str) -> CheckedTx | None:
        return self._pending.get(tx_id)

    def get_raw(self, raw: bytes) -> CheckedTx | None:
        """The pending transaction with exactly these bytes, if any."""
        return self._by_raw.get(raw)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, checked: CheckedTx) -> bool:
        """Queue `checked`; False if it was already pending (submitting twice is harmless)."""
        if checked.tx_id in self._pending:
            return False
        size = len(checked.raw)
        if len(self._pending) >= self._txs_max or self._bytes + size > self._bytes_max:
            raise MempoolFull(
                f"mempool holds {len(self._pending)} transactions ({self._bytes} bytes), its "
                f"limit is {self._txs_max} ({self._bytes_max} bytes); retry shortly"
            )
        self._pending[checked.tx_id] = checked
        self._by_raw[checked.raw] = checked
        self._bytes += size
        return True

    def take(self, txs_max: int, bytes_max: int) -> list[CheckedTx]:
        """The oldest pending transactions that fit a block; they stay pending until removed."""
        chosen: list[CheckedTx] = []
        total = 0
        for checked in self._pending.values():
            size = len(checked.raw)
            if len(chosen) >= txs_max or (chosen and total + size > bytes_max):
                break
            chosen.append(checked)
            total += size
        return chosen

    def remove(self, tx_ids: list[str]) -> None:
        for tx_id in tx_ids:
            checked = self._pending.pop(tx_id, None)
            if checked is not None:
                self._bytes -= len(checked.raw)
                self._by_raw.pop(checked.raw, None)

    def drop_expired(self, next_height: int) -> list[str]:
        expired = [
            tx_id
            for tx_id, checked in self._pending.items()
            if checked.tx.body.valid_until < next_height
        ]
        self.remove(expired)
        return expired
