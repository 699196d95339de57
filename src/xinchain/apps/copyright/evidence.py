"""Evidence packages: one zip a court can check offline, whole.

Layout of a package (format ``xinchain-evidence/1``):

    manifest.json             {format, genesis_hash, work, evidence, files: [{path, sha256}]}
    receipts/work.json        the receipt of the work's registration (it carries the work)
    receipts/evidence.json    the receipt of the infringement evidence (it carries the record)
    report.html               the same facts for a person to read
    original/<name>           optional: the registered image itself
    capture/<name>            optional: the captured files the evidence names

`verify_package` checks every file, so any change to any of them is found:

* the two receipts verify offline (docs/receipts.md), on the same chain, and the evidence is
  about the registered work;
* the original's SHA-256 is the work's, and each captured file's SHA-256 is the one the
  evidence recorded under its name;
* the manifest lists exactly the files in the zip with their SHA-256;
* the manifest, the receipts and the report are byte for byte what `build_package` writes for
  those receipts, so not even whitespace in them can change unnoticed.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from xinchain.apps.copyright.feature_codec import inliers_min
from xinchain.apps.copyright.receipts import COPYRIGHT_RECEIPTS
from xinchain.errors import ReceiptInvalid, XinchainError
from xinchain.receipt import (
    VerifiedReceipt,
    anchoring_text,
    load_receipt_json,
    pinning_text,
    verify_receipt,
)

FORMAT = "xinchain-evidence/1"
MANIFEST = "manifest.json"
WORK_RECEIPT = "receipts/work.json"
EVIDENCE_RECEIPT = "receipts/evidence.json"
REPORT = "report.html"
# Limits on a package read: members, and bytes once decompressed.
members_max = 64
package_bytes_max = 512 * 1024 * 1024
# Every member gets this time stamp, so the same evidence always makes the same zip.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,100}$")
_BEIJING = timezone(timedelta(hours=8))


class EvidenceInvalid(XinchainError):
    code = "evidence_invalid"


@dataclass(frozen=True)
class VerifiedPackage:
    work: dict[str, Any]
    evidence: dict[str, Any]
    work_receipt: VerifiedReceipt
    evidence_receipt: VerifiedReceipt
    files: tuple[str, ...]  # paths of the original and captured files included


def canonical_json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def build_package(
    work_receipt: dict[str, Any],
    evidence_receipt: dict[str, Any],
    original: tuple[str, bytes] | None = None,
    captures: dict[str, bytes] | None = None,
) -> bytes:
    """The zip for one piece of evidence; `original` (name, bytes) and `captures` (name →
    bytes, names as recorded on chain) are included when the exporter has them. The receipts
    are checked first: a package is never built from receipts that do not verify."""
    work_checked, evidence_checked = _check_receipts(work_receipt, evidence_receipt)
    members: dict[str, bytes] = {
        WORK_RECEIPT: canonical_json(work_receipt),
        EVIDENCE_RECEIPT: canonical_json(evidence_receipt),
    }
    if original is not None:
        name, data = original
        members[f"original/{_file_name(name)}"] = data
    for name, data in sorted((captures or {}).items()):
        members[f"capture/{_file_name(name)}"] = data
    _check_files(work_receipt["work"], evidence_receipt["evidence"], members)
    members[REPORT] = render_report(
        work_receipt["work"],
        evidence_receipt["evidence"],
        work_checked,
        evidence_checked,
        sorted(path for path in members if path.startswith(("original/", "capture/"))),
    )
    members[MANIFEST] = canonical_json(
        _manifest(work_checked.genesis_hash, work_receipt, evidence_receipt, members)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in [MANIFEST, *sorted(p for p in members if p != MANIFEST)]:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[path])
    return buffer.getvalue()


def verify_package(
    data: bytes,
    *,
    expected_genesis_hash: str | None = None,
    trusted_chains: Mapping[str, str] | None = None,
) -> VerifiedPackage:
    """Check a package whole; raise EvidenceInvalid (or ReceiptInvalid) naming what is wrong."""
    members = _read_zip(data)
    for required in (MANIFEST, WORK_RECEIPT, EVIDENCE_RECEIPT, REPORT):
        if required not in members:
            raise EvidenceInvalid(f"the package has no {required}", field=required)
    receipts = {}
    for path in (WORK_RECEIPT, EVIDENCE_RECEIPT):
        try:
            value = load_receipt_json(members[path])
        except ReceiptInvalid as exc:
            raise EvidenceInvalid(f"{path}: {exc.reason}", field=path) from exc
        if canonical_json(value) != members[path]:
            raise EvidenceInvalid(
                f"{path} was changed: it is not the receipt as exported", field=path
            )
        receipts[path] = value
    work_receipt, evidence_receipt = receipts[WORK_RECEIPT], receipts[EVIDENCE_RECEIPT]
    if "work" not in work_receipt or "evidence" not in evidence_receipt:
        raise EvidenceInvalid("expected a work receipt and an evidence receipt", field="receipts")
    work_checked, evidence_checked = _check_receipts(
        work_receipt, evidence_receipt, expected_genesis_hash, trusted_chains
    )
    work, evidence = work_receipt["work"], evidence_receipt["evidence"]
    _check_files(work, evidence, members)
    included = sorted(path for path in members if path.startswith(("original/", "capture/")))
    report = render_report(work, evidence, work_checked, evidence_checked, included)
    if members[REPORT] != report:
        raise EvidenceInvalid(
            "report.html was changed: it does not match the receipts", field=REPORT
        )
    body = {path: content for path, content in members.items() if path != MANIFEST}
    manifest = _manifest(work_checked.genesis_hash, work_receipt, evidence_receipt, body)
    if members[MANIFEST] != canonical_json(manifest):
        raise EvidenceInvalid(
            "manifest.json was changed: it does not list exactly the package's files and "
            "their SHA-256",
            field=MANIFEST,
        )
    return VerifiedPackage(
        work=work,
        evidence=evidence,
        work_receipt=work_checked,
        evidence_receipt=evidence_checked,
        files=tuple(included),
    )


def package_lines(
    data: bytes, expected_genesis_hash: str | None, trusted_chains: Mapping[str, str] | None
) -> list[str]:
    """What `xinchain verify PACKAGE.zip` prints for a valid package; raises as
    `verify_package` does for an invalid one."""
    checked = verify_package(
        data, expected_genesis_hash=expected_genesis_hash, trusted_chains=trusted_chains
    )
    work, evidence = checked.work, checked.evidence
    owner = f"seller {work['seller']} of {work['org']}" if work["seller"] else work["org"]
    likeness = f"PDQ distance {evidence['distance']}"
    if "inliers" in evidence:
        likeness += f", {evidence['inliers']} of {evidence['points']} points in place"
    return [
        f"valid: evidence package for work {work['title']!r} ({work['sha256']}) of {owner}",
        f"  registration {anchoring_text(checked.work_receipt)}",
        f"  copy at {evidence['url']} ({likeness}) {anchoring_text(checked.evidence_receipt)}",
        f"  files checked against the chain: {', '.join(checked.files) or 'none'}",
        pinning_text(checked.work_receipt),
    ]


def _check_receipts(
    work_receipt: dict[str, Any],
    evidence_receipt: dict[str, Any],
    expected_genesis_hash: str | None = None,
    trusted_chains: Mapping[str, str] | None = None,
) -> tuple[VerifiedReceipt, VerifiedReceipt]:
    try:
        work_checked = verify_receipt(
            work_receipt,
            None,
            kinds=COPYRIGHT_RECEIPTS,
            expected_genesis_hash=expected_genesis_hash,
            trusted_chains=trusted_chains,
        )
    except ReceiptInvalid as exc:
        raise EvidenceInvalid(f"{WORK_RECEIPT}: {exc.reason}", field=WORK_RECEIPT) from exc
    try:
        evidence_checked = verify_receipt(
            evidence_receipt,
            None,
            kinds=COPYRIGHT_RECEIPTS,
            expected_genesis_hash=work_checked.genesis_hash,
        )
    except ReceiptInvalid as exc:
        raise EvidenceInvalid(f"{EVIDENCE_RECEIPT}: {exc.reason}", field=EVIDENCE_RECEIPT) from exc
    work, evidence = work_receipt.get("work"), evidence_receipt.get("evidence")
    if not isinstance(work, dict) or not isinstance(evidence, dict):
        raise EvidenceInvalid("expected a work receipt and an evidence receipt", field="receipts")
    if evidence.get("work") != work.get("sha256"):
        raise EvidenceInvalid(
            f"the evidence is about work {evidence.get('work')}, the registration is of "
            f"{work.get('sha256')}",
            field=EVIDENCE_RECEIPT,
        )
    return work_checked, evidence_checked


def _check_files(work: dict[str, Any], evidence: dict[str, Any], members: dict[str, bytes]) -> None:
    recorded = {item["name"]: item["sha256"] for item in evidence["files"]}
    for path, content in members.items():
        digest = hashlib.sha256(content).hexdigest()
        if path.startswith("original/"):
            if digest != work["sha256"]:
                raise EvidenceInvalid(
                    f"{path} hashes to {digest}; the registered image is {work['sha256']}",
                    field=path,
                )
        elif path.startswith("capture/"):
            name = path.removeprefix("capture/")
            if name not in recorded:
                raise EvidenceInvalid(
                    f"{path} is not among the captured files the evidence names: "
                    f"{sorted(recorded)}",
                    field=path,
                )
            if digest != recorded[name]:
                raise EvidenceInvalid(
                    f"{path} hashes to {digest}; the evidence recorded {recorded[name]}",
                    field=path,
                )
        elif path not in (MANIFEST, WORK_RECEIPT, EVIDENCE_RECEIPT, REPORT):
            raise EvidenceInvalid(f"unexpected file {path} in the package", field=path)
    if sum(path.startswith("original/") for path in members) > 1:
        raise EvidenceInvalid("more than one original image in the package", field="original")


def _manifest(
    genesis_hash: str,
    work_receipt: dict[str, Any],
    evidence_receipt: dict[str, Any],
    members: dict[str, bytes],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "genesis_hash": genesis_hash,
        "work": work_receipt["work"]["sha256"],
        "evidence": evidence_receipt["document"]["hash"],
        "files": [
            {"path": path, "sha256": hashlib.sha256(content).hexdigest()}
            for path, content in sorted(members.items())
        ],
    }


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise EvidenceInvalid(f"not a zip file: {exc}", field="package") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > members_max:
            raise EvidenceInvalid(
                f"{len(infos)} files in the package; at most {members_max}", field="package"
            )
        if sum(info.file_size for info in infos) > package_bytes_max:
            raise EvidenceInvalid(
                f"the package unpacks to more than {package_bytes_max} bytes", field="package"
            )
        members: dict[str, bytes] = {}
        for info in infos:
            path = info.filename
            top, _, name = path.partition("/")
            plain = path in (MANIFEST, WORK_RECEIPT, EVIDENCE_RECEIPT, REPORT)
            if not plain and not (top in ("original", "capture") and _NAME.fullmatch(name)):
                raise EvidenceInvalid(f"unexpected file {path!r} in the package", field=path)
            if path in members:
                raise EvidenceInvalid(f"{path} appears twice in the package", field=path)
            try:
                members[path] = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise EvidenceInvalid(f"{path} cannot be read: {exc}", field=path) from exc
    return members


def _file_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name in {".", ".."}:
        raise EvidenceInvalid(
            f"file name {name!r}: expected 1-100 letters, digits or _.-", field="name"
        )
    return name


def _time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    beijing = moment.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    return f"{beijing} 北京时间 ({moment.isoformat(timespec='milliseconds')})"


def render_report(
    work: dict[str, Any],
    evidence: dict[str, Any],
    work_checked: VerifiedReceipt,
    evidence_checked: VerifiedReceipt,
    included: list[str],
) -> bytes:
    """The human-readable report: the facts the receipts prove, nothing else."""

    def row(label: str, value: str) -> str:
        return f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"

    owner = (
        f"seller {work['seller']} (vouched for by {work['org']})"
        if work["seller"]
        else f"org {work['org']}"
    )
    distance = evidence["distance"]
    if distance < 0:
        likeness = "no image of the copy was hashed"
    else:
        verdict = "a match" if distance <= 31 else "not within the match threshold"
        likeness = f"{distance} of 256 bits differ ({verdict}; PDQ matches at ≤ 31)"
    if "inliers" in evidence:
        found_in_place = (
            f"{evidence['inliers']} of the work's {evidence['points']} registered points found "
            "where one shift, scale and turn of the picture puts them ("
            + ("a match" if evidence["inliers"] >= inliers_min else "not a match")
            + f"; a match at ≥ {inliers_min}, different photos keep a handful): this finds a "
            "copy cropped, bannered, screenshotted or tilted, which moves its PDQ hash"
        )
    else:
        found_in_place = "the work registered no local features"
    files = "".join(
        f"<li><code>{html.escape(item['name'])}</code> SHA-256 "
        f"<code>{html.escape(item['sha256'])}</code>"
        f"{' (included)' if 'capture/' + item['name'] in included else ' (not included)'}</li>"
        for item in evidence["files"]
    )
    original = [path for path in included if path.startswith("original/")]

    def anchoring(checked: VerifiedReceipt) -> str:
        return (
            f"block {checked.height}, {_time(checked.time_ms)}, certified by "
            f"{checked.signers} of {checked.validators} validators"
        )

    rows = [
        row("Registered work 登记作品", work["title"]),
        row("Owner 权利人", owner),
        row("Image SHA-256", work["sha256"]),
        row("Original included 原图", original[0] if original else "not included"),
        row("PDQ hash", f"{work['pdq']} (quality {work['quality']})"),
        row("Registered 登记时间", anchoring(work_checked)),
        row("Copy found at 侵权地址", evidence["url"]),
        row("Captured 取证时间", _time(evidence["captured_ms"])),
        row("Copy PDQ hash", evidence["copy_pdq"] or "none"),
        row("Likeness 相似度", likeness),
        row("Points in place 特征点", found_in_place),
        row("Recorded by 存证方", evidence["recorder"]),
        row("Evidence recorded 存证上链", anchoring(evidence_checked)),
        row("Note 备注", evidence["note"] or "—"),
        row("Chain 链", f"{work_checked.chain_id}, genesis {work_checked.genesis_hash}"),
    ]
    page = f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>侵权存证报告 Infringement evidence report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5rem; max-width: 60rem; line-height: 1.5; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #bbb; padding: .4rem .6rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }}
th {{ width: 14rem; background: #f3f3f3; }}
code {{ overflow-wrap: anywhere; }}
</style>
</head>
<body>
<h1>侵权存证报告 · Infringement evidence report</h1>
<table>
{chr(10).join(rows)}
</table>
<h2>Captured files 取证文件</h2>
<ul>{files}</ul>
<h2>How to check 如何核验</h2>
<p>Run <code>xinchain verify</code> on this zip, pinning the chain with
<code>--genesis-hash {html.escape(work_checked.genesis_hash)}</code>. It checks both receipts
offline against the validators' signatures, every file's SHA-256, and that this report is
the one the receipts produce. The receipt format is documented field by field so that the
check can be redone by hand.</p>
</body>
</html>
"""
    return page.encode()
