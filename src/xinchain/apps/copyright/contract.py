"""The copyright contract: sellers' photos registered by hash, and evidence of copies found.

* `register` records works: each is an image's SHA-256, its PDQ perceptual hash with PDQ's
  quality score, the PDQ hashes of its registered crops (copyright/perceptual.py says why),
  optionally its local features (copyright/features.py: ORB points, for copies a hash cannot
  find), a title, and its owner. The owner is the sending org itself, or a seller that a platform
  org vouches for (the platform sends the transaction and names the seller). The time is
  the block's. Only hashes go on chain: the image stays with its owner. An image's SHA-256
  is registered once: the first registration stands, a later one is refused and names it.
* `evidence` records a suspected copy of a registered work: where it was found (URL), the
  captured files by SHA-256 (the page, a screenshot, the copied image), when they were
  captured, and the copy's PDQ hash; the contract computes the Hamming distance to the work
  itself, so the distance on chain is not the recorder's claim. The work's owner org (for a
  seller, the vouching platform), a regulator or a court records evidence.

Both return an RFC 9162 root over the digests of the records they wrote, so each work and
each piece of evidence gets its own receipt; the receipt carries the record itself.

State (key space ``copyright/``): ``work/<sha256>`` ({record, tx_id, position, n}),
``count`` and ``at/<n>`` (works in registration order: the search index loads from them),
``owner/<org>/<n>`` (an org's works, with those of sellers it vouches for),
``evidence/<id>`` ({record, tx_id}), ``of/<sha256>/<i>`` (evidence ids of a work) and
``by/<org>/<i>`` (evidence an org recorded), ``tx/<tx_id>`` (the evidence a transaction
recorded).
"""

from __future__ import annotations

import re
from typing import Any

from xinchain import codec
from xinchain.apps.copyright.feature_codec import FeaturesInvalid, LocalFeatures
from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.errors import ContractError
from xinchain.merkle import MerkleTree

NAME = "copyright"
# Works in one registration transaction: a seller's catalogue upload. Each work is about
# 1.8 KB of arguments, so a full batch stays well inside the transaction size limit.
works_per_tx_max = 256
# Crop hashes carried by a registration (perceptual.crop_hashes makes 25).
crop_hashes_max = 25
# Captured files per piece of evidence, and pieces of evidence kept per work.
evidence_files_max = 16
evidence_per_work_max = 10_000
# How far in the future (of the block time) a capture time may lie: clock drift, no more.
capture_skew_ms = 5 * 60 * 1000
# Who may record evidence besides the work's owner org.
EVIDENCE_ROLES = frozenset({"regulator", "court"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SELLER = re.compile(r"^[0-9A-Za-z_.@-]{1,64}$")
# From these chain rules a seller may be named by its DID on this chain (a merchant's identity
# across platforms, docs/did-method.md); the id part as did:xin allows it.
SELLER_DID_RULES = 4
_DID_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _seller_ok(context: CallContext, seller: str) -> bool:
    if _SELLER.fullmatch(seller):
        return True
    prefix = f"did:xin:{context.chain_id}:"
    return (
        context.rules >= SELLER_DID_RULES
        and seller.startswith(prefix)
        and bool(_DID_ID.fullmatch(seller[len(prefix) :]))
    )


_FILE_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,100}$")
_URL = re.compile(r"^https?://[^\s]{1,2040}$")


def record_digest(hasher: Any, record: dict[str, Any]) -> bytes:
    """The leaf a record's receipt proves: the hash of its canonical encoding."""
    return bytes(hasher(codec.encode(record)))


def hamming(a_hex: str, b_hex: str) -> int:
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


class Copyright(Contract):
    name = NAME

    def methods(self) -> dict[str, Handler]:
        return {"register": self.register, "evidence": self.evidence}

    def register(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"works"})
        works = args["works"]
        if not isinstance(works, list) or not 1 <= len(works) <= works_per_tx_max:
            raise ContractError(
                f"expected a list of 1 to {works_per_tx_max} works", field="args.works"
            )
        count = context.read(NAME, "count") or 0
        digests = []
        for position, work in enumerate(works):
            record = self._work(context, work, f"args.works[{position}]")
            key = f"work/{record['sha256']}"
            existing = context.read(NAME, key)
            if existing is not None:
                first = existing["record"]
                raise ContractError(
                    f"image {record['sha256']} is already registered, by "
                    f"{_owner_text(first)} at block time {first['time_ms']}",
                    field=f"args.works[{position}].sha256",
                )
            context.write(
                NAME,
                key,
                {"record": record, "tx_id": context.tx_id, "position": position, "n": count},
            )
            context.write(NAME, f"at/{count}", record["sha256"])
            context.write(NAME, f"owner/{context.sender}/{count:012d}", record["sha256"])
            count += 1
            digests.append(record_digest(context.suite.hash, record))
        context.write(NAME, "count", count)
        return {"root": MerkleTree(context.suite.hash, digests).root().hex(), "size": len(digests)}

    def _work(self, context: CallContext, work: object, where: str) -> dict[str, Any]:
        if not isinstance(work, dict):
            raise ContractError("expected a work object", field=where)
        expected = {"sha256", "pdq", "quality", "crops", "title", "seller"}
        if set(work) - {"features"} != expected:
            raise ContractError(
                f"expected fields {sorted(expected)} and optionally features, found {sorted(work)}",
                field=where,
            )
        quality = work["quality"]
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
            raise ContractError("expected a PDQ quality from 0 to 100", field=f"{where}.quality")
        crops = work["crops"]
        if not isinstance(crops, list) or len(crops) > crop_hashes_max:
            raise ContractError(
                f"expected a list of at most {crop_hashes_max} PDQ hashes", field=f"{where}.crops"
            )
        title = work["title"]
        if not isinstance(title, str) or not 1 <= len(title) <= 200 or not title.isprintable():
            raise ContractError(
                "expected a title of 1-200 printable characters", field=f"{where}.title"
            )
        seller = work["seller"]
        if not isinstance(seller, str) or (seller and not _seller_ok(context, seller)):
            if context.rules >= SELLER_DID_RULES:
                raise ContractError(
                    "expected a seller id of 1-64 letters, digits or _.@-, or the seller's DID "
                    f"did:xin:{context.chain_id}:<id> (empty when the sending org owns the work)",
                    field=f"{where}.seller",
                )
            raise ContractError(
                "expected a seller id of 1-64 letters, digits or _.@- (empty when the sending "
                "org owns the work)",
                field=f"{where}.seller",
            )
        if seller and "platform" not in context.sender_roles:
            raise ContractError(
                f"org {context.sender!r} is not a platform and cannot vouch for seller "
                f"{seller!r}; a platform registers its sellers' works",
                field=f"{where}.seller",
            )
        described = {}
        if "features" in work:
            try:
                LocalFeatures.decode_canonical(work["features"], f"{where}.features")
            except FeaturesInvalid as exc:
                raise ContractError(exc.reason, field=exc.field) from None
            described = {"features": work["features"]}
        return {
            **described,
            "sha256": _hex64(work["sha256"], f"{where}.sha256"),
            "pdq": _hex64(work["pdq"], f"{where}.pdq"),
            "quality": quality,
            "crops": [_hex64(crop, f"{where}.crops[{i}]") for i, crop in enumerate(crops)],
            "title": title,
            "org": context.sender,
            "seller": seller,
            "time_ms": context.time_ms,
        }

    def evidence(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        # inliers is optional: a recorder whose search found the copy by its points says so.
        require_args(
            {key: value for key, value in args.items() if key != "inliers"},
            {"work", "url", "files", "captured_ms", "copy_pdq", "note"},
        )
        work_hash = _hex64(args["work"], "args.work")
        stored = context.read(NAME, f"work/{work_hash}")
        if stored is None:
            raise ContractError(f"no registered work with SHA-256 {work_hash}", field="args.work")
        work = stored["record"]
        if context.sender != work["org"] and not EVIDENCE_ROLES & context.sender_roles:
            raise ContractError(
                f"org {context.sender!r} may not record evidence for work {work_hash}: its "
                f"owner org {work['org']!r}, a regulator or a court does",
                field="sender",
            )
        url = args["url"]
        if not isinstance(url, str) or not _URL.fullmatch(url):
            raise ContractError(
                "expected an http:// or https:// URL of at most 2048 characters", field="args.url"
            )
        files = _files(args["files"])
        captured = args["captured_ms"]
        if isinstance(captured, bool) or not isinstance(captured, int) or captured < 0:
            raise ContractError("expected a time in milliseconds", field="args.captured_ms")
        if captured > context.time_ms + capture_skew_ms:
            raise ContractError(
                f"capture time {captured} is after the block time {context.time_ms}",
                field="args.captured_ms",
            )
        copy_pdq = args["copy_pdq"]
        distance = -1
        if copy_pdq != "":
            copy_pdq = _hex64(copy_pdq, "args.copy_pdq")
            distance = min(hamming(copy_pdq, known) for known in [work["pdq"], *work["crops"]])
        note = args["note"]
        if not isinstance(note, str) or len(note) > 500:
            raise ContractError("expected a note of at most 500 characters", field="args.note")
        matched = _points_found(work, args["inliers"]) if "inliers" in args else {}
        record = {
            **matched,
            "work": work_hash,
            "url": url,
            "files": files,
            "captured_ms": captured,
            "copy_pdq": copy_pdq,
            "distance": distance,
            "note": note,
            "recorder": context.sender,
            "time_ms": context.time_ms,
        }
        digest = record_digest(context.suite.hash, record)
        evidence_id = digest.hex()
        if context.read(NAME, f"evidence/{evidence_id}") is not None:
            raise ContractError("this evidence is already recorded", field="args")
        of_work = context.read(NAME, f"of/{work_hash}/count") or 0
        if of_work >= evidence_per_work_max:
            raise ContractError(f"work {work_hash} already has {of_work} pieces of evidence")
        by_org = context.read(NAME, f"by/{context.sender}/count") or 0
        context.write(NAME, f"evidence/{evidence_id}", {"record": record, "tx_id": context.tx_id})
        context.write(NAME, f"of/{work_hash}/{of_work:08d}", evidence_id)
        context.write(NAME, f"of/{work_hash}/count", of_work + 1)
        context.write(NAME, f"by/{context.sender}/{by_org:012d}", evidence_id)
        context.write(NAME, f"by/{context.sender}/count", by_org + 1)
        context.write(NAME, f"tx/{context.tx_id}", evidence_id)
        return {"root": MerkleTree(context.suite.hash, [digest]).root().hex(), "size": 1}


def _points_found(work: dict[str, Any], inliers: object) -> dict[str, int]:
    """`inliers` and the work's `points` for the record, when the recorder says how many of
    the work's registered points its search found in place in the copy (features.verify):
    its claim, as copy_pdq is; the chain only checks it is possible."""
    if "features" not in work:
        raise ContractError(
            "the work registered no local features: no points can be found in a copy",
            field="args.inliers",
        )
    points = len(LocalFeatures.decode(work["features"]))
    if isinstance(inliers, bool) or not isinstance(inliers, int) or not 0 <= inliers <= points:
        raise ContractError(
            f"expected the points found in place, from 0 to the work's {points}",
            field="args.inliers",
        )
    return {"inliers": inliers, "points": points}


def _owner_text(record: dict[str, Any]) -> str:
    if record["seller"]:
        return f"seller {record['seller']!r} vouched for by org {record['org']!r}"
    return f"org {record['org']!r}"


def _files(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or not 1 <= len(value) <= evidence_files_max:
        raise ContractError(
            f"expected a list of 1 to {evidence_files_max} captured files", field="args.files"
        )
    files = []
    names = set()
    for i, item in enumerate(value):
        where = f"args.files[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "sha256"}:
            raise ContractError("expected {name, sha256}", field=where)
        name = item["name"]
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or name in {".", ".."}:
            raise ContractError(
                "expected a file name of 1-100 letters, digits or _.-", field=f"{where}.name"
            )
        if name in names:
            raise ContractError(f"file name {name!r} appears twice", field=f"{where}.name")
        names.add(name)
        files.append({"name": name, "sha256": _hex64(item["sha256"], f"{where}.sha256")})
    return files


def _hex64(value: object, where: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ContractError("expected 64 lowercase hex digits", field=where)
    return value
