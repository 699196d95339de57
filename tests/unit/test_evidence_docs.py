"""docs/copyright.md says enough to check an evidence package byte for byte.

The report template and the package JSON layout are rebuilt here from the page's words (the
template is read out of the page itself), and compared with what the exporter writes for
genuine receipts of a real node on both suites.

Scenarios:

* the JSON layout described in the page reproduces receipts/*.json and manifest.json
* the template in the page, filled in by the page's rules, reproduces report.html, with the
  original and a capture included or left out
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import SUITE_NAMES, open_harness
from receipt_kinds import CAPTURE, CAPTURE_NAME, WORK_IMAGE, Issued, issue_every_kind

from xinchain.apps.copyright.evidence import build_package

DOCS = Path(__file__).resolve().parents[2] / "docs" / "copyright.md"


@pytest.fixture(scope="module", params=SUITE_NAMES)
def issued(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Issued]]:
    with open_harness(tmp_path_factory.mktemp("package"), request.param) as harness:
        yield issue_every_kind(harness)


# --- the page's rules, written out -----------------------------------------------------------


def layout(value: Any, level: int = 0) -> str:
    """The package JSON layout, as the page words it."""
    inner, outer = "  " * (level + 1), "  " * level
    if isinstance(value, dict):
        if not value:
            return "{}"
        members = [
            f"{inner}{string(key)}: {layout(value[key], level + 1)}" for key in sorted(value)
        ]
        return "{\n" + ",\n".join(members) + "\n" + outer + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return (
            "[\n"
            + ",\n".join(inner + layout(item, level + 1) for item in value)
            + "\n"
            + outer
            + "]"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return string(value)


def string(text: str) -> str:
    named = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
             "\f": "\\f"}  # fmt: skip
    out = []
    for character in text:
        if character in named:
            out.append(named[character])
        elif ord(character) < 0x20:
            out.append(f"\\u{ord(character):04x}")
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def escape(text: str) -> str:
    for plain, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                          ("'", "&#x27;")):  # fmt: skip
        text = text.replace(plain, entity)
    return text


def when(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    utc = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    beijing = (utc + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    return f"{beijing} 北京时间 ({utc.strftime('%Y-%m-%dT%H:%M:%S')}.{millis:03d}+00:00)"


def anchoring(receipt: dict[str, Any]) -> str:
    header = receipt["header"]
    signed = len(receipt["certificate"]["signatures"])
    validators = len(receipt["genesis"]["validators"])
    return (
        f"block {header['height']}, {when(header['time_ms'])}, certified by {signed} of "
        f"{validators} validators"
    )


def report_from_page(
    work_receipt: dict[str, Any], evidence_receipt: dict[str, Any], members: set[str]
) -> bytes:
    page = DOCS.read_text(encoding="utf-8")
    template = re.search(r"The report is\s+this text.*?```html\n(.*?)```", page, re.S)
    assert template, "the page no longer holds the report template"
    work, evidence = work_receipt["work"], evidence_receipt["evidence"]
    owner = (f"seller {work['seller']} (vouched for by {work['org']})" if work["seller"]
             else f"org {work['org']}")  # fmt: skip
    distance = evidence["distance"]
    if distance == -1:
        likeness = "no image of the copy was hashed"
    else:
        verdict = "a match" if distance <= 31 else "not within the match threshold"
        likeness = f"{distance} of 256 bits differ ({verdict}; PDQ matches at ≤ 31)"
    if "inliers" in evidence:
        inliers, points = evidence["inliers"], evidence["points"]
        in_place = (
            f"{inliers} of the work's {points} registered points found where one shift, scale "
            "and turn of the picture puts them ("
            + ("a match" if inliers >= 12 else "not a match")
            + "; a match at ≥ 12, different photos keep a handful): this finds a copy cropped, "
            "bannered, screenshotted or tilted, which moves its PDQ hash"
        )
    else:
        in_place = "the work registered no local features"
    originals = sorted(path for path in members if path.startswith("original/"))
    genesis_hash = work_receipt["header"]["genesis_hash"]
    rows = [
        ("Registered work 登记作品", work["title"]),
        ("Owner 权利人", owner),
        ("Image SHA-256", work["sha256"]),
        ("Original included 原图", originals[0] if originals else "not included"),
        ("PDQ hash", f"{work['pdq']} (quality {work['quality']})"),
        ("Registered 登记时间", anchoring(work_receipt)),
        ("Copy found at 侵权地址", evidence["url"]),
        ("Captured 取证时间", when(evidence["captured_ms"])),
        ("Copy PDQ hash", evidence["copy_pdq"] or "none"),
        ("Likeness 相似度", likeness),
        ("Points in place 特征点", in_place),
        ("Recorded by 存证方", evidence["recorder"]),
        ("Evidence recorded 存证上链", anchoring(evidence_receipt)),
        ("Note 备注", evidence["note"] or "—"),
        ("Chain 链", f"{work_receipt['genesis']['chain_id']}, genesis {genesis_hash}"),
    ]
    rows_text = "\n".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    files = "".join(
        f"<li><code>{escape(item['name'])}</code> SHA-256 <code>{escape(item['sha256'])}</code>"
        f"{' (included)' if 'capture/' + item['name'] in members else ' (not included)'}</li>"
        for item in evidence["files"]
    )
    text = template.group(1)
    text = text.replace("ROWS", rows_text).replace("FILES", files)
    text = text.replace("--genesis-hash G<", f"--genesis-hash {escape(genesis_hash)}<")
    return text.encode()


# --- against the exporter ----------------------------------------------------------------------


@pytest.mark.parametrize("with_files", [False, True])
@pytest.mark.parametrize("suffix", ["", "-features"])
def test_the_page_reproduces_every_file_of_a_package(
    issued: dict[str, Issued], with_files: bool, suffix: str
) -> None:
    work_receipt = issued["work" + suffix].receipt
    evidence_receipt = issued["evidence" + suffix].receipt
    captures = {CAPTURE_NAME: CAPTURE} if with_files else None
    image = WORK_IMAGE + b" with features" if suffix else WORK_IMAGE  # as receipt_kinds registers
    original = ("photo.jpg", image) if with_files else None
    package = build_package(work_receipt, evidence_receipt, original, captures)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    assert ("original/photo.jpg" in members) == with_files
    assert members["receipts/work.json"] == (layout(work_receipt) + "\n").encode()
    assert members["receipts/evidence.json"] == (layout(evidence_receipt) + "\n").encode()
    manifest = {
        "evidence": evidence_receipt["document"]["hash"],
        "files": [
            {"path": path, "sha256": hashlib.sha256(content).hexdigest()}
            for path, content in sorted(members.items())
            if path != "manifest.json"
        ],
        "format": "xinchain-evidence/1",
        "genesis_hash": work_receipt["header"]["genesis_hash"],
        "work": work_receipt["work"]["sha256"],
    }
    assert members["manifest.json"] == (layout(manifest) + "\n").encode()
    assert members["report.html"] == report_from_page(work_receipt, evidence_receipt, set(members))
