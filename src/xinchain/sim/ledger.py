"""The ledger the simulator's nodes run: the real `Application` (admission, execution, commit)
on the in-memory store, behind the real `LedgerSource`, with the real mempool.

Only three things are the simulator's own: the genesis (made from the seed, so a seed replays
exactly), the client that signs transactions (deterministic keys and nonces) and one small
contract, `tally`, whose state depends on every transaction and its order. The chain's core
knows no app, and neither does the simulator: `tally` is not an app of the registry.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import nacl.signing

from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.crypto.suites import Ed25519Key
from xinchain.errors import ContractError
from xinchain.genesis import Genesis
from xinchain.types import Transaction, TransactionBody

CHAIN_ID = "sim"
GENESIS_TIME_MS = 0
TALLY = "tally"
# Blocks a client transaction stays valid after the height its client last saw.
tx_validity_blocks = 50
amount_max = 1_000_000


class Tally(Contract):
    """Each transaction adds its amount to its sender's total."""

    name = TALLY

    def methods(self) -> dict[str, Handler]:
        return {"add": self.add}

    def add(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"amount"})
        amount = args["amount"]
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= amount_max:
            raise ContractError(f"expected an amount from 0 to {amount_max}", field="args.amount")
        total = (context.read(TALLY, context.sender) or 0) + amount
        context.write(TALLY, context.sender, total)
        return {"total": total}


def _key(seed: int, name: str) -> Ed25519Key:
    secret = hashlib.sha256(f"xinchain-sim/{seed}/{name}".encode()).digest()
    return Ed25519Key(nacl.signing.SigningKey(secret))


class SimClient:
    """The consortium's members: one org a validator, each signing its own transactions."""

    def __init__(self, seed: int, validators: int) -> None:
        self.orgs = [f"org{i}" for i in range(validators)]
        self.keys = {org: _key(seed, org) for org in self.orgs}
        validator_keys = [_key(seed, f"validator-{i}") for i in range(validators)]
        self.genesis = Genesis.from_value(
            {
                "chain_id": CHAIN_ID,
                "suite": "ed25519-sha256",
                "time_ms": GENESIS_TIME_MS,
                "orgs": [
                    {
                        "id": org,
                        "name": f"Simulated org {org}",
                        "roles": ["member"],
                        "keys": [self.keys[org].public_bytes().hex()],
                    }
                    for org in self.orgs
                ],
                "validators": [
                    {
                        "name": f"validator-{i}",
                        "org": self.orgs[i],
                        "public_key": key.public_bytes().hex(),
                    }
                    for i, key in enumerate(validator_keys)
                ],
                "params": {},
            }
        )

    def transaction(self, rng: random.Random, seen_height: int) -> bytes:
        """A signed `tally.add` of a random org, valid for a while after `seen_height`."""
        org = rng.choice(self.orgs)
        key = self.keys[org]
        body = TransactionBody(
            chain_id=CHAIN_ID,
            sender=org,
            public_key=key.public_bytes(),
            contract=TALLY,
            method="add",
            args={"amount": rng.randint(0, amount_max)},
            nonce=rng.getrandbits(63),
            valid_until=seen_height + tx_validity_blocks,
        )
        return Transaction(body=body, signature=key.sign(body.signing_message())).encode()
