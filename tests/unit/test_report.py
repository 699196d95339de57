"""The verification report (xinchain.report) made from real receipts.

Receipts come from a real node (api_harness, receipt_kinds: one of every kind) and from a chain
of four validators built here with the real application and four real signatures. Scenarios:

* a valid file receipt, on both suites (ed25519-sha256, sm2-sm3): the HTML page shows the
  document hash, the block time in Beijing time and UTC, every validator's key fingerprint and
  "not pinned"; pinned, it says so and never "not pinned"
* the PDF of the same receipt: starts with %PDF, is one or two pages, and the text pdftotext
  extracts holds the Chinese title and the block height; the same input gives the same bytes
* a receipt of four validators: "4 of 4 validators signed, quorum 3", each validator listed,
  still at most two pages
* an invalid receipt (one byte of the file flipped): INVALID with the reason, the checks up to
  the failing one and none after it, in HTML and PDF; a receipt that is not one at all too
* a record title holding `<script>` is escaped; the page loads nothing and runs nothing
* a record with very long text and many files is cut, and stays within two pages; a character
  the PDF's font has no glyph for is spelled out, not left out
* describe_record says what each kind of record says, in English and Chinese
* find_cjk_font honours XINCHAIN_REPORT_FONT, refuses a missing one, and names the Debian
  package when no font is found
* line breaking for the PDF: Chinese breaks between characters, never before a closing mark,
  and a hash wider than a line is cut
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from api_harness import SUITE_NAMES, Harness, open_harness
from app_contracts import APP_CONTRACTS
from receipt_kinds import Issued, issue_every_kind
from receipts import describe_record, inspect_receipt

from xinchain.apps.registry import RECEIPT_KINDS
from xinchain.client.sdk import sign_transaction
from xinchain.crypto import SUITES
from xinchain.errors import ConfigError
from xinchain.execution.app import Application
from xinchain.genesis import Genesis
from xinchain.merkle import MerkleTree
from xinchain.receipt import (
    TxProof,
    Verification,
    build_receipts,
    load_receipt_json,
)
from xinchain.report import (
    FONT_VARIABLE,
    ReportInput,
    _line_breaks,
    find_cjk_font,
    render_html,
    render_pdf,
)
from xinchain.storage import MemoryStore
from xinchain.types import (
    CommitCertificate,
    ExecuteBlockRequest,
    ValidatorSignature,
    commit_statement,
)

DOCUMENT = b"contract of sale 2026-11-11, signed copy"
HOSTILE_TITLE = "<script>alert('x')</script> & \"quoted\""
HOSTILE_SHA256 = hashlib.sha256(b"a photo with a hostile title").hexdigest()
# 2026-11-11 00:00:00 Beijing time, when the reports say they were made.
GENERATED_MS = 1_794_326_400_000
# Blocks anchored before DOCUMENT, so that its block height is not a digit found anywhere.
EARLIER_BLOCKS = 10
BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Chain:
    suite_name: str
    genesis_hash: str
    file_receipt: dict[str, Any]
    hostile_work: dict[str, Any]
    issued: dict[str, Issued]


@pytest.fixture(scope="module", params=SUITE_NAMES)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """A real node: one of every kind of receipt, a work with a hostile title, then DOCUMENT
    anchored after EARLIER_BLOCKS blocks of other documents."""
    with open_harness(tmp_path_factory.mktemp("chain"), request.param) as harness:
        issued = issue_every_kind(harness)
        hostile_work = _register_hostile_work(harness)
        for number in range(EARLIER_BLOCKS):
            harness.anchor([f"earlier document {number}".encode()])
        harness.anchor([DOCUMENT])
        yield Chain(
            request.param,
            harness.genesis_hash(),
            harness.receipt(DOCUMENT),
            hostile_work,
            issued,
        )


def _register_hostile_work(harness: Harness) -> dict[str, Any]:
    work = {
        "sha256": HOSTILE_SHA256,
        "pdq": "5a" * 32,
        "quality": 90,
        "crops": [],
        "title": HOSTILE_TITLE,
        "seller": "",
    }
    harness.submit(harness.sign("copyright", "register", {"works": [work]}, sender="brand"))
    harness.commit()
    response = harness.get(f"/v1/copyright/works/{HOSTILE_SHA256}/receipt")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _report(verification: Verification, document_name: str | None = "contract.pdf") -> ReportInput:
    command = "xinchain verify contract.pdf.receipt.json"
    if document_name is not None:
        command += f" --file {document_name}"
    return ReportInput(
        verification=verification,
        receipt_name="contract.pdf.receipt.json",
        document_name=document_name,
        generated_ms=GENERATED_MS,
        command=command,
    )


def _verify(receipt: dict[str, Any], document: bytes | None, pinned: str | None) -> Verification:
    return inspect_receipt(copy.deepcopy(receipt), document, expected_genesis_hash=pinned)


def _html(report: ReportInput) -> str:
    return render_html(report).decode("utf-8")


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """What pdftotext (poppler-utils) reads in the PDF, laid out; pages end with a form feed."""
    program = shutil.which("pdftotext")
    if program is None:
        pytest.skip("pdftotext is missing: scripts/setup-browser installs poppler-utils")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    extracted = subprocess.run(
        [program, "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return extracted.stdout.decode("utf-8")


def _pages(text: str) -> int:
    return text.rstrip("\f").count("\f") + 1


def _beijing_and_utc(ms: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    beijing = moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") + " 北京时间"
    return beijing, moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# --- valid file receipts ------------------------------------------------------------------------


def test_unpinned_html_shows_hash_time_validators_and_not_pinned(chain: Chain) -> None:
    verification = _verify(chain.file_receipt, DOCUMENT, pinned=None)
    verified = verification.verified
    assert verified is not None and not verified.pinned
    page = _html(_report(verification))
    assert "VALID 有效" in page and "INVALID" not in page
    assert SUITES[chain.suite_name].hash(DOCUMENT).hex() in page
    assert "contract.pdf" in page
    assert "not pinned" in page and "未锁定链身份" in page
    assert chain.genesis_hash in page
    for signer in verified.certified_by:
        assert signer.fingerprint in page and signer.name in page
    beijing, utc = _beijing_and_utc(verified.time_ms)
    assert beijing in page and utc in page
    assert verified.tx_id in page and verified.block_hash in page
    assert f"{verified.contract}.{verified.method}" in page


def test_pinned_html_says_pinned_and_never_not_pinned(chain: Chain) -> None:
    verification = _verify(chain.file_receipt, DOCUMENT, pinned=chain.genesis_hash)
    assert verification.verified is not None and verification.verified.pinned
    page = _html(_report(verification))
    assert "not pinned" not in page.lower()
    assert "Chain pinned" in page and "已锁定链身份" in page


@dataclass(frozen=True)
class RenderedPdf:
    report: ReportInput
    pdf: bytes
    text: str  # as pdftotext reads it


@pytest.fixture(scope="module")
def unpinned_pdf(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> RenderedPdf:
    """The PDF of the valid, unpinned file receipt (made once: a PDF takes a second)."""
    report = _report(_verify(chain.file_receipt, DOCUMENT, pinned=None))
    pdf = render_pdf(report)
    return RenderedPdf(report, pdf, _pdf_text(pdf, tmp_path_factory.mktemp("pdf")))


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
def test_pdf_holds_the_chinese_title_and_the_block_height(unpinned_pdf: RenderedPdf) -> None:
    verified = unpinned_pdf.report.verification.verified
    assert verified is not None
    assert unpinned_pdf.pdf.startswith(b"%PDF-")
    text = unpinned_pdf.text
    assert "区块链存证核验报告" in text
    assert "VALID" in text and "not pinned" in text
    assert re.findall(r"Block height\s+(\d+)", text) == [str(verified.height)]
    assert verified.height > EARLIER_BLOCKS
    assert 1 <= _pages(text) <= 2


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
def test_same_input_gives_the_same_pdf(unpinned_pdf: RenderedPdf) -> None:
    assert render_pdf(unpinned_pdf.report) == unpinned_pdf.pdf


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
def test_pdf_creation_date_is_the_generation_time(unpinned_pdf: RenderedPdf) -> None:
    assert b"/CreationDate (D:20261110160000Z" in unpinned_pdf.pdf


# --- four validators ----------------------------------------------------------------------------


def four_validator_receipt(suite_name: str, document: bytes) -> tuple[dict[str, Any], str]:
    """A genuine receipt of `document` from a chain of four validators that all signed its
    block, built with the real application; and the chain's genesis hash."""
    suite = SUITES[suite_name]
    sender_key = suite.generate_key()
    validator_keys = [suite.generate_key() for _ in range(4)]
    operators = [("sipg", "上海国际港务集团"), ("customs", "海关总署数据中心")]
    orgs = [
        {"id": "tradeco", "name": "Cross-border trade co.", "roles": ["member"], "keys": []},
        *({"id": org, "name": name, "roles": ["member"], "keys": []} for org, name in operators),
    ]
    orgs[0]["keys"] = [sender_key.public_bytes().hex()]
    genesis = Genesis.from_value(
        {
            "chain_id": "trade-consortium",
            "suite": suite_name,
            "time_ms": GENERATED_MS - 86_400_000,
            "orgs": orgs,
            "validators": [
                {
                    "name": f"validator-{index}",
                    "org": operators[index % 2][0],
                    "public_key": key.public_bytes().hex(),
                }
                for index, key in enumerate(validator_keys)
            ],
            "params": {},
        }
    )
    application = Application(MemoryStore(), genesis, APP_CONTRACTS)
    digest = suite.hash(document)
    transaction = sign_transaction(
        suite,
        sender_key,
        chain_id=genesis.chain_id,
        sender="tradeco",
        contract="notary",
        method="anchor",
        args={"hash": digest},
        valid_until=10,
    )
    request = ExecuteBlockRequest(
        height=1,
        time_ms=GENERATED_MS - 3_600_000,
        txs=(application.check_tx(transaction.encode()),),
    )
    execution = application.execute_block(request)
    header = application.make_header(request, execution, round_number=0, proposer=0)
    block_hash = application.block_hash(header)
    statement = commit_statement(genesis.chain_id, header.height, 0, block_hash)
    signatures = tuple(
        ValidatorSignature(index, key.sign(statement).hex())
        for index, key in enumerate(validator_keys)
    )
    results = execution.results
    proof = TxProof(
        result=results[0],
        result_proof=MerkleTree(
            suite.hash, [result.encode() for result in results]
        ).inclusion_proof(0),
        header=header,
        certificate=CommitCertificate(header.height, 0, block_hash, signatures),
        genesis=genesis,
    )
    receipt = build_receipts(proof, [digest])[0]
    return load_receipt_json(json.dumps(receipt)), genesis.hash_hex()


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_four_validators_are_listed_and_fit_two_pages(suite_name: str, tmp_path: Path) -> None:
    receipt, genesis_hash = four_validator_receipt(suite_name, DOCUMENT)
    verification = _verify(receipt, DOCUMENT, pinned=genesis_hash)
    verified = verification.verified
    assert verified is not None and len(verified.certified_by) == 4, verification.reason
    page = _html(_report(verification))
    assert "4 of 4 validators signed, quorum 3" in page
    assert "上海国际港务集团" in page and "海关总署数据中心" in page
    text = _pdf_text(render_pdf(_report(verification)), tmp_path)
    assert _pages(text) <= 2
    assert "Chain pinned" in text and "not pinned" not in text
    for signer in verified.certified_by:
        assert signer.fingerprint in page and signer.fingerprint in text


# --- invalid receipts ---------------------------------------------------------------------------


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
def test_flipped_byte_renders_invalid_with_the_reason(chain: Chain, tmp_path: Path) -> None:
    tampered = DOCUMENT[:-1] + bytes([DOCUMENT[-1] ^ 0x01])
    verification = _verify(chain.file_receipt, tampered, pinned=None)
    assert verification.verified is None and "hash mismatch" in verification.reason
    page = _html(_report(verification))
    assert "INVALID 无效" in page and "VALID 有效" not in page
    assert "hash mismatch" in page
    failing = verification.checks[-1]
    assert failing.outcome == "fail" and failing.name in page
    assert "Merkle proof of the document" not in page  # the checks after the failing one
    text = _pdf_text(render_pdf(_report(verification)), tmp_path)
    assert "INVALID" in text and "hash mismatch" in text


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
def test_a_receipt_that_is_no_receipt_renders_invalid(tmp_path: Path) -> None:
    verification = inspect_receipt({"format": "something else"}, None)
    assert verification.verified is None
    report = _report(verification, document_name=None)
    assert "INVALID" in _html(report)
    assert "INVALID" in _pdf_text(render_pdf(report), tmp_path)


# --- hostile and long records -------------------------------------------------------------------


def test_html_escapes_a_record_title_holding_a_script(chain: Chain) -> None:
    verification = _verify(chain.hostile_work, None, pinned=None)
    assert verification.verified is not None, verification.reason
    page = _html(_report(verification, document_name=None))
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "<script" not in page.lower()


def test_html_loads_nothing_from_elsewhere(chain: Chain) -> None:
    page = _html(_report(_verify(chain.file_receipt, DOCUMENT, pinned=None))).lower()
    for reference in ("<script", "<link", "<img", "src=", "href=", "url(", "@import"):
        assert reference not in page
    assert "content-security-policy" in page and "default-src 'none'" in page


@pytest.mark.slow  # renders a PDF with the CJK font: about a second each
def test_long_record_text_is_cut_and_stays_within_two_pages(tmp_path: Path) -> None:
    # Four validators' receipt made to carry the longest evidence a report meets: the renderer
    # takes what inspect_receipt found, so the record need not be one the chain wrote.
    receipt, genesis_hash = four_validator_receipt(SUITE_NAMES[0], DOCUMENT)
    verification = _verify(receipt, DOCUMENT, pinned=genesis_hash)
    verified = verification.verified
    assert verified is not None
    record = {
        **evidence_record(distance=12, copy_pdq="a4" * 32),
        "url": "https://shop.example/" + "very-long-path/" * 300,
        "note": "\U0001f642 " + "备注" * 2000,  # an emoji the CJK font has no glyph for
        "files": [{"name": f"capture-{i}.jpg", "sha256": f"{i % 10}" * 64} for i in range(40)],
    }
    long = dataclasses.replace(
        verification,
        verified=dataclasses.replace(
            verified, record_kind="evidence", record=record, kind=RECEIPT_KINDS.record("evidence")
        ),
    )
    page = _html(_report(long, document_name=None))
    assert "备注" * 2000 not in page and "+34" in page  # 40 files, 6 shown
    text = _pdf_text(render_pdf(_report(long, document_name=None)), tmp_path)
    assert _pages(text) <= 2
    assert "\\U0001f642 备注备注" in text  # spelled out, not left out


def test_every_kind_of_record_receipt_renders_its_description(chain: Chain) -> None:
    for name in ("event", "entry-1001", "work", "evidence"):
        verification = _verify(chain.issued[name].receipt, None, pinned=None)
        verified = verification.verified
        assert verified is not None and verified.record is not None, verification.reason
        english, chinese = describe_record(verified.record_kind, verified.record)
        page = _html(_report(verification, document_name=None))
        assert html.escape(english) in page and html.escape(chinese) in page, name


# --- describe_record ----------------------------------------------------------------------------

# 2026-11-11 00:00:01.234 Beijing time
PAID_MS = int(datetime(2026, 11, 11, 0, 0, 1, 234_000, tzinfo=BEIJING).timestamp() * 1000)


def test_describe_entry() -> None:
    entry = {
        "promo": "double11-gift",
        "rank": 3,
        "order_no": "1001",
        "paid_ms": PAID_MS,
        "buyer_hash": "ab" * 32,
        "buyer_mask": "c***3",
    }
    assert describe_record("entry", entry) == (
        "Order 1001 is No. 3 in promotion double11-gift "
        "(paid 2026-11-11 00:00:01.234 Beijing time, buyer c***3).",
        "订单 1001 在促销 double11-gift 中排名第 3（付款时间 2026-11-11 00:00:01.234 北京时间，"
        "买家 c***3）。",
    )


def test_describe_survives_a_time_beyond_the_calendar() -> None:
    entry = {
        "promo": "p",
        "rank": 1,
        "order_no": "1",
        "paid_ms": 2**64 - 1,  # a uint, as the schema allows; no calendar date
        "buyer_hash": "ab" * 32,
        "buyer_mask": "b",
    }
    english, chinese = describe_record("entry", entry)
    assert f"paid {2**64 - 1} ms" in english and f"{2**64 - 1} ms" in chinese


def test_describe_event() -> None:
    event = {
        "event_id": "",
        "type": "ObjectEvent",
        "action": "ADD",
        "biz_step": "commissioning",
        "disposition": "active",
        "event_time_us": PAID_MS * 1000,
        "epcs": [f"urn:epc:id:sgtin:8712345.067890.{serial}" for serial in range(9)],
        "parent_id": "",
        "read_point": "urn:epc:id:sgln:8712345.00001.0",
        "biz_location": "",
        "customs_declaration": "",
        "json": "{}",
    }
    english, chinese = describe_record("event", event)
    assert english.startswith(
        "GS1 EPCIS ObjectEvent (ADD, commissioning, active) at 2026-11-11 00:00:01.234 "
        "Beijing time at read point urn:epc:id:sgln:8712345.00001.0 for 9 items: "
        "urn:epc:id:sgtin:8712345.067890.0, "
    )
    assert english.endswith("urn:epc:id:sgtin:8712345.067890.2 and 6 more.")
    assert "发生于 2026-11-11 00:00:01.234 北京时间" in chinese
    assert "涉及 9 个物品" in chinese and "另 6 个" in chinese


def test_describe_work() -> None:
    work = {
        "sha256": "12" * 32,
        "pdq": "a5" * 32,
        "quality": 100,
        "crops": ["a5" * 32, "a4" * 32],
        "title": "Tin on a white table",
        "org": "brand",
        "seller": "",
        "time_ms": PAID_MS,
    }
    english, chinese = describe_record("work", work)
    assert english == (
        'Photo "Tin on a white table" registered by org brand (image SHA-256 '
        "1212121212121212…, PDQ quality 100, 2 crop hashes)."
    )
    assert chinese.startswith("作品《Tin on a white table》由机构 brand 登记")


def evidence_record(distance: int, copy_pdq: str) -> dict[str, Any]:
    return {
        "work": "34" * 32,
        "url": "https://shop.example/item/9",
        "files": [{"name": "copy.jpg", "sha256": "56" * 32}],
        "captured_ms": PAID_MS,
        "copy_pdq": copy_pdq,
        "distance": distance,
        "note": "",
        "recorder": "brand",
        "time_ms": PAID_MS + 5_000,
    }


@pytest.mark.parametrize(
    ("distance", "copy_pdq", "english_says", "chinese_says"),
    [
        (12, "a4" * 32, "differs from the work's in 12 of 256 bits", "相差 12/256 位"),
        (-1, "", "no copy image was hashed", "未对复制图片计算哈希"),
    ],
)
def test_describe_evidence(
    distance: int, copy_pdq: str, english_says: str, chinese_says: str
) -> None:
    english, chinese = describe_record("evidence", evidence_record(distance, copy_pdq))
    assert english.startswith(
        "Org brand recorded a suspected copy of work 3434343434343434… at "
        "https://shop.example/item/9, captured 2026-11-11 00:00:01 Beijing time in 1 file;"
    )
    assert english_says in english and chinese_says in chinese


def test_describe_spells_out_invisible_characters() -> None:
    entry = {
        "promo": "gift\u202eevil",  # a right-to-left override would reorder the line
        "rank": 1,
        "order_no": "1",
        "paid_ms": 0,
        "buyer_hash": "ab" * 32,
        "buyer_mask": "a\x00b",
    }
    english, chinese = describe_record("entry", entry)
    assert "\u202e" not in english + chinese and "\x00" not in english + chinese
    assert "gift\\u202eevil" in english and "a\\u0000b" in chinese


# --- the font -----------------------------------------------------------------------------------


def test_font_variable_names_the_font(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    font = tmp_path / "chosen.ttf"
    font.write_bytes(b"not read here")
    monkeypatch.setenv(FONT_VARIABLE, str(font))
    assert find_cjk_font() == font


def test_font_variable_naming_a_missing_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(FONT_VARIABLE, str(tmp_path / "missing.ttf"))
    with pytest.raises(ConfigError, match=FONT_VARIABLE):
        find_cjk_font()


def test_a_file_that_is_no_font_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    font = tmp_path / "broken.ttf"
    font.write_bytes(b"this is not a TrueType font")
    monkeypatch.setenv(FONT_VARIABLE, str(font))
    report = _report(inspect_receipt({}, None), document_name=None)
    with pytest.raises(ConfigError, match=re.escape("broken.ttf is not a font")):
        render_pdf(report)


def test_no_font_found_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(FONT_VARIABLE, raising=False)
    monkeypatch.setattr("xinchain.report.CJK_FONT_PATHS", (tmp_path / "absent.ttc",))
    monkeypatch.setenv("PATH", str(tmp_path))  # no fc-list to ask
    with pytest.raises(ConfigError, match="fonts-wqy-microhei"):
        find_cjk_font()


# --- line breaking ------------------------------------------------------------------------------


def _width(text: str) -> float:
    """Every character one unit wide."""
    return float(len(text))


def test_chinese_breaks_between_characters_not_before_closing_marks() -> None:
    lines = _line_breaks("请将创世哈希与联盟公布的核对。然后再看", 7, _width)
    assert lines == ["请将创世哈希与", "联盟公布的核对。", "然后再看"]  # "。" hangs
    assert all(not line.startswith(("。", "，")) for line in lines)


def test_words_move_whole_and_an_overlong_hash_is_cut() -> None:
    lines = _line_breaks("hash " + "ab" * 10, 8, _width)
    assert lines == ["hash aba", "babababa", "babababa", "b"]
    assert _line_breaks("one two three", 8, _width) == ["one two", "three"]
