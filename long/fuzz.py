"""Coverage-guided fuzzing (atheris, libFuzzer) of what a node or a verifier parses from others.

    .venv/bin/python long/fuzz.py TARGET [-max_total_time=3600] [libFuzzer options...]

TARGET is one of:

* `transaction`: the transaction decoder (`Transaction.decode`), then signature and form
  checks as admission runs them, on bytes a peer or client sends;
* `receipt`: the strict receipt parser (`load_receipt_json`) and the verifier
  (`inspect_receipt`) on text a court or a customer is handed;
* `epcis`: the EPCIS 2.0 import (`document_events_to_chain`) on a document a brand uploads.

Each input must end in the target's own refusal (an `XinchainError`, e.g. DecodeError,
ReceiptInvalid, EpcisInvalid) or be accepted; any other exception is a crash, and libFuzzer
stops on it, writes the input to crash-<hash> in the current directory and exits non-zero.
Seeds: a genuine signed transaction built here, the receipts in tests/data, and GS1's EPCIS
examples in ../shared/interop/epcis. Never part of CI (tests/unit/test_fuzz_targets.py runs
each target on its seeds).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from xinchain.errors import XinchainError  # noqa: E402


def _chain() -> tuple[object, object, object]:
    """An in-memory chain of one org and one validator: (application, genesis, org key)."""
    from xinchain.apps.registry import APPS
    from xinchain.crypto import suite_named
    from xinchain.execution.app import Application
    from xinchain.genesis import Genesis
    from xinchain.storage import MemoryStore

    suite = suite_named("ed25519-sha256")
    org_key, validator_key = suite.generate_key(), suite.generate_key()
    genesis = Genesis.from_value(
        {
            "chain_id": "fuzz",
            "suite": suite.name,
            "time_ms": 0,
            "orgs": [
                {
                    "id": "platform",
                    "name": "Platform",
                    "roles": ["platform", "merchant", "brand"],
                    "keys": [org_key.public_bytes().hex()],
                }
            ],
            "validators": [
                {
                    "name": "validator-0",
                    "org": "platform",
                    "public_key": validator_key.public_bytes().hex(),
                }
            ],
            "params": {},
        }
    )
    application = Application(MemoryStore(), genesis, [spec.contract() for spec in APPS])
    return application, genesis, org_key


def transaction_seeds() -> list[bytes]:
    from xinchain.client.sdk import sign_transaction

    _, genesis, key = _chain()
    return [
        sign_transaction(
            genesis.suite,  # type: ignore[attr-defined]
            key,  # type: ignore[arg-type]
            chain_id="fuzz",
            sender="platform",
            contract="notary",
            method="anchor",
            args={"hash": bytes(range(32))},
            valid_until=10,
        ).encode()
    ]


def transaction_target() -> Callable[[bytes], None]:
    application, _, _ = _chain()

    def run(data: bytes) -> None:
        try:
            application.verify_tx(data)  # type: ignore[attr-defined]
        except XinchainError:
            return

    return run


def receipt_target() -> Callable[[bytes], None]:
    from xinchain.apps.registry import RECEIPT_KINDS
    from xinchain.receipt import inspect_receipt, load_receipt_json

    def run(data: bytes) -> None:
        try:
            receipt = load_receipt_json(data)
            inspect_receipt(receipt, None, kinds=RECEIPT_KINDS)
        except XinchainError:
            return

    return run


def epcis_target() -> Callable[[bytes], None]:
    from xinchain.apps.provenance.epcis import document_events_to_chain

    def run(data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return
        try:
            document_events_to_chain(text)
        except XinchainError:
            return

    return run


def receipt_seeds() -> list[bytes]:
    return [path.read_bytes() for path in sorted((REPO / "tests" / "data").rglob("*.receipt.json"))]


def epcis_seeds() -> list[bytes]:
    examples = REPO.parent / "shared" / "interop" / "epcis"
    return [path.read_bytes() for path in sorted(examples.glob("*.jsonld"))]


# name → (the target, given its seeds)
TARGETS: dict[str, tuple[Callable[[], Callable[[bytes], None]], Callable[[], list[bytes]]]] = {
    "transaction": (transaction_target, transaction_seeds),
    "receipt": (receipt_target, receipt_seeds),
    "epcis": (epcis_target, epcis_seeds),
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print(f"usage: long/fuzz.py {{{','.join(TARGETS)}}} [libFuzzer options]", file=sys.stderr)
        return 2
    import atheris

    name = sys.argv[1]
    target, seeds = TARGETS[name]
    with atheris.instrument_imports():
        run = target()
    # The corpus grows as libFuzzer finds new paths; it starts from the seeds.
    corpus = Path(tempfile.mkdtemp(prefix=f"xinchain-fuzz-{name}-"))
    for index, seed in enumerate(seeds()):
        (corpus / f"seed-{index}").write_bytes(seed)
    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], run)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
