"""Scan flags: a node anchors on chain the codes its scan page saw scanned suspiciously often.

Flags are evidence, not alarms: a minute's delay costs nothing and batching keeps them cheap.
A node flags only when its org may (platform or regulator) and the org's key is in its home.
"""

from __future__ import annotations

import asyncio
import logging
import os

from xinchain.apps.provenance.contract import NAME
from xinchain.apps.provenance.view import suspects_to_anchor
from xinchain.errors import XinchainError
from xinchain.node.node import Node

_log = logging.getLogger(__name__)
# How often a node anchors the suspected copies it counted, and how many per round.
flag_anchor_interval_s = float(os.environ.get("XINCHAIN_FLAG_INTERVAL_S", "60"))
flags_per_round_max = 200
FLAGGING_ROLES = frozenset({"platform", "regulator"})


def anchor_flags(node: Node) -> int:
    """Submit a `provenance.flag` for each suspected code this node counted; returns how many
    were submitted."""
    if node.validator_index is None:
        return 0
    org = node.genesis.validators[node.validator_index].org
    record = node.chain.read_state("governance", f"org/{org}") or {}
    if not FLAGGING_ROLES & set(record.get("roles", [])):
        return 0
    if not node.home.org_key_path(org).exists():
        return 0
    member = node.member(org)
    submitted = 0
    for epc, scans in suspects_to_anchor(node.chain)[:flags_per_round_max]:
        args = {"epc": epc, "scans": scans["count"], "places": len(scans["places"])}
        try:
            node.submit_call(member, NAME, "flag", args)
            submitted += 1
        except XinchainError as exc:
            _log.warning("flag for %s not submitted: %s", epc, exc)
    return submitted


async def anchor_flags_forever(node: Node) -> None:
    while True:
        await asyncio.sleep(flag_anchor_interval_s)
        anchor_flags(node)
