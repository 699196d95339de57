"""The verification report a judge reads: what a receipt proves, in Chinese and English.

`xinchain verify RECEIPT --report OUT.pdf` (or `OUT.html`) writes it, for a valid receipt and an
invalid one alike (docs/receipts.md, "What `xinchain verify` says"). It is made from the
`Verification` that `xinchain.receipt.inspect_receipt` returns and adds nothing of its own: the
verdict, what is proven, by whom, when, where, which validators certified it, every check with
its outcome, and how to repeat the check without this program.

One content model (`_Report`, built by `_build`) is rendered twice, so the HTML page and the PDF
say the same thing:

* `render_html`: one self-contained UTF-8 page: inline CSS, no script, no external resource (a
  Content-Security-Policy says so to the browser), readable on a phone and printable on A4.
  Every piece of data is escaped.
* `render_pdf`: one or two A4 pages with fpdf2, with a CJK font embedded (subset) so that the
  Chinese prints on any machine. `find_cjk_font` says which font.

Times are printed twice: Beijing time (UTC+8, China keeps no daylight saving time) for the
reader, and UTC in ISO 8601 for the record.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from fontTools.ttLib import TTCollection  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import FontFace, TTFFont

from xinchain.errors import ConfigError
from xinchain.receipt import Check, Verification, VerifiedReceipt
from xinchain.types import quorum_size
from xinchain.wording import both_times, shown, spelled

# --- limits -------------------------------------------------------------------------------------

# (How much of a record's own text is shown: xinchain.wording.)
# A check's detail or an invalid receipt's reason shown up to this many characters.
check_detail_shown_chars_max = 400
# A file or receipt name, or a name from the genesis, shown up to this many characters.
name_shown_chars_max = 200
# The command that repeats the check is shown whole unless absurdly long: the reader types it.
command_shown_chars_max = 1000
# `fc-list` answers in well under a second; a hung fontconfig must not hang `xinchain verify`.
fontconfig_timeout_s = 10

# The environment variable that names the font file the PDF embeds.
FONT_VARIABLE = "XINCHAIN_REPORT_FONT"
# Where Debian and other distributions put a font with Chinese glyphs, best first. Looked at
# before asking fontconfig (`fc-list :lang=zh file`), which finds any other.
CJK_FONT_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # Debian: fonts-wqy-microhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # Debian: fonts-noto-cjk
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # Debian: fonts-wqy-zenhei
    Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"),  # Fedora
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),  # Arch
)
_FONT_SUFFIXES = (".ttf", ".ttc", ".otf", ".otc")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOCUMENTATION = "docs/receipts.md"
_DOCUMENTATION_SECTION = "Verifying by hand, step by step"

_Tone = Literal["", "pass", "fail", "warn"]
_SYMBOLS: dict[str, tuple[str, str, str]] = {  # outcome → (symbol, Chinese, English)
    "pass": ("✓", "通过", "pass"),
    "fail": ("✘", "失败", "fail"),
    "warn": ("!", "注意", "warning"),
}
_SUITE_WORDS: dict[str, tuple[str, str]] = {
    "ed25519-sha256": ("Ed25519 signatures, SHA-256 hashes", "Ed25519 签名，SHA-256 哈希"),
    "sm2-sm3": ("SM2 signatures, SM3 hashes (GB/T 32918, GB/T 32905)", "国密 SM2 签名，SM3 哈希"),
}


@dataclass(frozen=True)
class ReportInput:
    """Everything a report is made from."""

    verification: Verification
    receipt_name: str  # the receipt file's name as given
    document_name: str | None  # the --file name; None for a record receipt or when not given
    generated_ms: int  # when the report was made, ms since 1970 UTC
    command: str  # the exact `xinchain verify` command line that repeats the check


# --- the content model --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    """One statement in both languages."""

    chinese: str
    english: str


@dataclass(frozen=True)
class _Field:
    label: _Text
    value: str
    code: bool = False  # a hash, an id or a command: monospace, broken anywhere
    tone: _Tone = ""


@dataclass(frozen=True)
class _Cell:
    text: str
    code: bool = False
    tone: _Tone = ""


@dataclass(frozen=True)
class _Column:
    heading: _Text
    width: float  # share of the table's width


@dataclass(frozen=True)
class _Table:
    columns: tuple[_Column, ...]
    rows: tuple[tuple[_Cell, ...], ...]


@dataclass(frozen=True)
class _Section:
    title: _Text
    lead: tuple[_Text, ...] = ()  # sentences before the fields
    fields: tuple[_Field, ...] = ()
    table: _Table | None = None
    steps: tuple[_Text, ...] = ()  # a numbered list
    notes: tuple[_Text, ...] = ()  # sentences after everything else


@dataclass(frozen=True)
class _Verdict:
    valid: bool
    headline: _Text
    reason: str  # why it is invalid; "" when valid
    caution: _Text | None  # the warning for an unpinned chain
    caution_value: str  # the genesis hash to compare
    assurance: _Text | None  # what pinning established


@dataclass(frozen=True)
class _Report:
    title: _Text
    verdict: _Verdict
    sections: tuple[_Section, ...]
    footer: tuple[_Field, ...]
    metadata_subject: str


_TITLE = _Text("区块链存证核验报告", "Blockchain receipt verification report")


def _build(report: ReportInput) -> _Report:
    verification, verified = report.verification, report.verification.verified
    sections: tuple[_Section, ...]
    if verified is None:
        sections = (_refused_section(report), _checks_section(verification))
    else:
        sections = (
            _proven_section(report, verified),
            _party_section(verified),
            _time_section(verified),
            _place_section(verified),
            _certified_section(verified),
            _checks_section(verification),
        )
    footer = (
        _Field(_Text("生成时间", "Generated"), both_times(report.generated_ms)),
        _Field(_Text("收据文件", "Receipt file"), shown(report.receipt_name, name_shown_chars_max)),
    )
    return _Report(
        title=_TITLE,
        verdict=_verdict(verification),
        sections=(*sections, _repeat_section(report, verified)),
        footer=footer,
        metadata_subject=f"{'VALID' if verified else 'INVALID'}: {report.receipt_name}",
    )


def _verdict(verification: Verification) -> _Verdict:
    verified = verification.verified
    if verified is None:
        return _Verdict(
            valid=False,
            headline=_Text("无效", "INVALID"),
            reason=shown(verification.reason, check_detail_shown_chars_max),
            caution=None,
            caution_value="",
            assurance=None,
        )
    if not verified.pinned:
        caution = _Text(
            "未锁定链身份：请将下面的创世哈希与联盟公布的创世哈希核对。"
            "在核对之前，本收据只证明某一条以此为创世的链认证了它。",
            "Chain not pinned: compare the genesis hash with the one the consortium "
            "publishes. Until then the receipt proves only that some chain with this "
            "genesis certified it.",
        )
        return _Verdict(
            valid=True,
            headline=_Text("有效", "VALID"),
            reason="",
            caution=caution,
            caution_value=verified.genesis_hash,
            assurance=None,
        )
    named = f"（{verified.pinned_name}）" if verified.pinned_name else ""
    named_english = f" ({verified.pinned_name})" if verified.pinned_name else ""
    assurance = _Text(
        f"已锁定链身份{shown(named, name_shown_chars_max)}：创世哈希与核验者给定的一致。",
        f"Chain pinned{shown(named_english, name_shown_chars_max)}: the genesis hash is the "
        "one the verifier gave.",
    )
    return _Verdict(
        valid=True,
        headline=_Text("有效", "VALID"),
        reason="",
        caution=None,
        caution_value="",
        assurance=assurance,
    )


def _refused_section(report: ReportInput) -> _Section:
    fields = [
        _Field(_Text("收据文件", "Receipt file"), shown(report.receipt_name, name_shown_chars_max))
    ]
    if report.document_name is not None:
        document_name = shown(report.document_name, name_shown_chars_max)
        fields.append(_Field(_Text("核验的文件", "File checked"), document_name))
    return _Section(
        title=_Text("核验结论", "Conclusion"),
        lead=(
            _Text(
                "本收据未通过下列检查，其中的任何内容都不能作为证据采信。",
                "The receipt failed the check below: nothing in it can be relied on.",
            ),
        ),
        fields=tuple(fields),
    )


def _proven_section(report: ReportInput, verified: VerifiedReceipt) -> _Section:
    hash_label = _Text(f"文件哈希（{verified.hash_name}）", f"Document hash ({verified.hash_name})")
    spec, record = verified.kind, verified.record
    if spec is None or record is None:  # the receipt proves a file
        name = report.document_name or "—"
        return _Section(
            title=_Text("证明了什么", "What is proven"),
            lead=(
                _Text(
                    "该文件在下述时间之前已存在，且自那时起未被改动：其哈希已被写入区块链。",
                    "This file existed no later than the time below and has not changed "
                    "since: its hash was written to the blockchain.",
                ),
            ),
            fields=(
                _Field(_Text("文件名", "File name"), shown(name, name_shown_chars_max)),
                _Field(hash_label, verified.document_hash, code=True),
            ),
        )
    said = spec.describe(record)
    kind = _Field(
        _Text("记录类型", "Record kind"),
        f"{spec.is_a.chinese} · {spec.is_a.english} ({verified.record_kind})",
    )
    facts = tuple(
        _Field(_Text(fact.label.chinese, fact.label.english), fact.value, code=fact.code)
        for fact in spec.facts(record)
    )
    record_hash = _Field(
        _Text(f"记录哈希（{verified.hash_name}）", f"Record hash ({verified.hash_name})"),
        verified.document_hash,
        code=True,
    )
    return _Section(
        title=_Text("证明了什么", "What is proven"),
        lead=(_Text(said.chinese, said.english),),
        fields=(kind, *facts, record_hash),
    )


def _party_section(verified: VerifiedReceipt) -> _Section:
    sender = _org_text(verified.sender, verified.sender_name)
    does = verified.does
    called = f"{verified.contract}.{verified.method}"
    method = f"{called} · {does.chinese} · {does.english}" if does else called
    return _Section(
        title=_Text("由谁提交", "By whom"),
        fields=(
            _Field(_Text("提交机构", "Submitted by (org)"), shown(sender, name_shown_chars_max)),
            _Field(_Text("合约方法", "Contract method"), method),
            _Field(_Text("交易编号", "Transaction id"), verified.tx_id, code=True),
        ),
    )


def _time_section(verified: VerifiedReceipt) -> _Section:
    return _Section(
        title=_Text("时间", "When"),
        fields=(_Field(_Text("区块时间", "Block time"), both_times(verified.time_ms)),),
        notes=(
            _Text(
                "区块时间由出块的验证节点写入，并经法定数量的验证节点签名确认。",
                "The block time is set by the validator that proposed the block and signed "
                "by the quorum that certified it.",
            ),
        ),
    )


def _place_section(verified: VerifiedReceipt) -> _Section:
    english, chinese = _SUITE_WORDS.get(verified.suite, ("", ""))
    suite = f"{verified.suite} · {chinese} · {english}" if english else verified.suite
    if verified.pinned:
        named = f" ({verified.pinned_name})" if verified.pinned_name else ""
        pinned = shown(f"是 yes, pinned{named}", name_shown_chars_max)
        tone: _Tone = "pass"
    else:
        pinned = "否 no: not pinned, compare the genesis hash above"
        tone = "warn"
    return _Section(
        title=_Text("位置", "Where"),
        fields=(
            _Field(_Text("区块高度", "Block height"), str(verified.height)),
            _Field(_Text("区块哈希", "Block hash"), verified.block_hash, code=True),
            _Field(_Text("链标识", "Chain id"), shown(verified.chain_id, name_shown_chars_max)),
            _Field(_Text("创世哈希", "Genesis hash"), verified.genesis_hash, code=True),
            _Field(_Text("链身份锁定", "Chain pinned"), pinned, tone=tone),
            _Field(_Text("密码算法", "Cryptographic suite"), suite),
        ),
    )


def _certified_section(verified: VerifiedReceipt) -> _Section:
    quorum = quorum_size(verified.validators)
    rows = tuple(
        (
            _Cell(str(signer.index)),
            _Cell(shown(signer.name, name_shown_chars_max)),
            _Cell(shown(_org_text(signer.org, signer.org_name), name_shown_chars_max)),
            _Cell(signer.fingerprint, code=True),
        )
        for signer in verified.certified_by
    )
    columns = (
        _Column(_Text("序号", "#"), 0.08),
        _Column(_Text("验证节点", "Validator"), 0.19),
        _Column(_Text("机构", "Org"), 0.33),
        _Column(_Text("公钥指纹", "Key fingerprint"), 0.4),
    )
    return _Section(
        title=_Text("谁认证了它", "Who certified it"),
        lead=(
            _Text(
                f"{verified.validators} 个验证节点中有 {verified.signers} 个签名确认"
                f"（法定数 {quorum}），第 {verified.round} 轮。",
                f"{verified.signers} of {verified.validators} validators signed, quorum "
                f"{quorum} (round {verified.round}).",
            ),
        ),
        table=_Table(columns, rows),
        notes=(
            _Text(
                "公钥指纹为公钥哈希的前 16 字节，可与联盟公布的验证节点名单核对。",
                "A key fingerprint is the first 16 bytes of the hash of the public key: "
                "compare it with the validator list the consortium publishes.",
            ),
        ),
    )


def _checks_section(verification: Verification) -> _Section:
    rows = tuple(
        (
            _Cell(f"{check.name_zh}\n{check.name}"),
            _Cell(_outcome_text(check), tone=check.outcome),
            _Cell(shown(check.detail, check_detail_shown_chars_max)),
        )
        for check in verification.checks
    )
    columns = (
        _Column(_Text("检查", "Check"), 0.2),
        _Column(_Text("结果", "Result"), 0.09),
        _Column(_Text("详情", "Detail"), 0.71),
    )
    notes: tuple[_Text, ...] = ()
    if verification.verified is None:
        notes = (
            _Text(
                "核验在第一项失败的检查处停止，其后的检查未执行。",
                "Verification stops at the first check that fails; the checks after it "
                "were not run.",
            ),
        )
    return _Section(
        title=_Text("执行的检查", "Checks performed"),
        table=_Table(columns, rows),
        notes=notes,
    )


def _repeat_section(report: ReportInput, verified: VerifiedReceipt | None) -> _Section:
    hash_chinese = f" {verified.hash_name} " if verified else "链的哈希算法"
    hash_english = verified.hash_name if verified else "the chain's hash algorithm"
    if verified:
        quorum = quorum_size(verified.validators)
        signatures = _Text(
            f"验证至少 2f+1 个验证节点（此处 {verified.validators} 个中的 {quorum} 个）"
            "对提交声明（链标识、高度、轮次、区块哈希）的签名。",
            f"Verify at least 2f+1 validator signatures (here {quorum} of "
            f"{verified.validators}) over the commit statement (chain id, height, round, "
            "block hash).",
        )
    else:
        signatures = _Text(
            "验证至少 2f+1 个验证节点对提交声明（链标识、高度、轮次、区块哈希）的签名。",
            "Verify at least 2f+1 validator signatures over the commit statement (chain id, "
            "height, round, block hash).",
        )
    steps = (
        _Text(
            f"用{hash_chinese}计算文件（或记录的规范 CBOR 编码）的哈希，应等于文件哈希。",
            f"Hash the file (or the record's canonical CBOR) with {hash_english}: it must equal "
            "the document hash.",
        ),
        _Text(
            "按 RFC 9162 由锚定证明重新计算默克尔根，应等于交易结果中的批次根。",
            "Recompute the RFC 9162 Merkle root from the anchor proof: it must equal the "
            "batch root in the transaction result.",
        ),
        _Text(
            "由结果证明重新计算区块的结果根，应等于区块头中的结果根。",
            "Recompute the block's result root from the result proof: it must equal the "
            "header's result root.",
        ),
        _Text(
            "对区块头的规范 CBOR 编码求哈希，得到区块哈希。",
            "Hash the canonical CBOR header to get the block hash.",
        ),
        signatures,
        _Text(
            "将创世哈希与联盟公布的创世哈希比对。",
            "Compare the genesis hash with the one the consortium publishes.",
        ),
    )
    return _Section(
        title=_Text("如何独立复核", "How to repeat the check"),
        lead=(
            _Text(
                "用下面的命令重复本次核验（无需联网，也无需信任任何节点）：",
                "Repeat this verification with the command below (offline; no node is trusted):",
            ),
        ),
        fields=(
            _Field(
                _Text("命令", "Command"),
                shown(report.command, command_shown_chars_max),
                code=True,
            ),
        ),
        steps=steps,
        notes=(
            _Text(
                f"或不用本程序按步骤手工核验：完整规范见 {_DOCUMENTATION}"
                f"（“{_DOCUMENTATION_SECTION}”），只需 JSON、CBOR、哈希与签名算法。",
                f"Or check it without this program: the full procedure is in "
                f"{_DOCUMENTATION} (“{_DOCUMENTATION_SECTION}”); it needs only JSON, CBOR, "
                "the hash and the signature algorithm.",
            ),
        ),
    )


def _outcome_text(check: Check) -> str:
    symbol, chinese, english = _SYMBOLS[check.outcome]
    return f"{symbol} {chinese}\n{english}"


def _org_text(org: str, name: str) -> str:
    return f"{name} ({org})" if name else org


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
:root { --green: #17703a; --red: #b3261e; --amber: #8a5a00; --amber-bg: #fff4d6;
  --line: #d8dde3; --muted: #5b6570; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f4; color: #1b1f24; line-height: 1.5;
  font: 15px/1.5 "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
    "PingFang SC", "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 860px; margin: 24px auto; background: #fff; padding: 28px 36px;
  border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.08); overflow-wrap: anywhere; }
h1 { font-size: 26px; margin: 0; letter-spacing: .02em; }
h1 .en { display: block; font-size: 15px; font-weight: normal; color: var(--muted); }
h2 { font-size: 17px; margin: 22px 0 8px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
h2 .en { font-weight: normal; color: var(--muted); font-size: 14px; margin-left: .4em; }
.en { color: var(--muted); }
.verdict { margin: 18px 0 10px; padding: 12px 18px; border-radius: 6px; color: #fff;
  font-size: 30px; font-weight: bold; letter-spacing: .04em; }
.verdict.valid { background: var(--green); }
.verdict.invalid { background: var(--red); }
.box { padding: 10px 14px; border-radius: 6px; margin: 8px 0; }
.box p { margin: 2px 0; }
.reason { border: 2px solid var(--red); color: var(--red); }
.caution { background: var(--amber-bg); border: 2px solid #e0a800; color: var(--amber); }
.assurance { background: #e6f4ea; border: 1px solid #9fd3ae; color: var(--green); }
.lead p, .notes p { margin: 4px 0; }
.lead .zh { font-weight: 600; }
.fields { display: grid; grid-template-columns: 13em 1fr; margin: 6px 0; }
.fields dt, .fields dd { margin: 0; padding: 5px 8px; border-top: 1px solid var(--line); }
.fields dt { color: var(--muted); font-size: 13px; }
.fields dt .en { display: block; font-size: 12px; }
.fields dd { white-space: pre-line; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
.code { overflow-wrap: anywhere; word-break: break-all; }
table { width: 100%; border-collapse: collapse; margin: 6px 0; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
  border-top: 1px solid var(--line); white-space: pre-line; }
th { background: #f3f5f7; font-size: 13px; }
th .en { font-weight: normal; }
td.code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
.pass { color: var(--green); font-weight: 600; }
.fail { color: var(--red); font-weight: 600; }
.warn { color: var(--amber); font-weight: 600; }
tr.fail td { background: #fdeceb; }
ol { margin: 6px 0; padding-left: 1.6em; }
ol li { margin: 3px 0; }
footer { margin-top: 24px; padding-top: 8px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 12px; }
footer span { margin-right: 1.5em; display: inline-block; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  main { margin: 0; padding: 16px 14px; border-radius: 0; box-shadow: none; }
  h1 { font-size: 21px; }
  .verdict { font-size: 24px; }
  .fields { grid-template-columns: 1fr; }
  .fields dt { border-top: 1px solid var(--line); padding-bottom: 0; }
  .fields dd { border-top: none; padding-top: 0; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { display: none; }
  tr { border-top: 1px solid var(--line); padding: 4px 0; }
  td { border: none; padding: 2px 4px; }
  td::before { content: attr(data-label); display: block; font-size: 11px;
    color: var(--muted); font-family: sans-serif; font-weight: normal; }
}
@page { size: A4; margin: 12mm 14mm; }
@media print {
  body { background: #fff; font-size: 8.5pt; line-height: 1.35; }
  main { margin: 0; padding: 0; max-width: none; box-shadow: none; }
  h1 { font-size: 17pt; }
  h1 .en { font-size: 10pt; }
  h2 { font-size: 11pt; margin: 10px 0 4px; }
  h2 .en { font-size: 9pt; }
  .verdict { font-size: 18pt; padding: 6px 12px; margin: 8px 0 6px; }
  .box { padding: 5px 10px; margin: 4px 0; }
  .fields { grid-template-columns: 38mm 1fr; }
  .fields dt, .fields dd, th, td { padding: 2px 6px; }
  .fields dt, th { font-size: 7.5pt; }
  .fields dt .en { display: inline; font-size: 7.5pt; }
  table { font-size: 8pt; }
  code, td.code { font-size: 7.5pt; }
  ol li { margin: 1px 0; }
  footer { margin-top: 10px; font-size: 7pt; }
  .verdict, .caution, .assurance, tr.fail td, th { -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
  tr, .fields dt, .fields dd, li, .box { break-inside: avoid; }
  h2, .fields dt { break-after: avoid; }
}
"""
# No script, no style or image from elsewhere: the browser refuses them even if one slipped in.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render_html(report: ReportInput) -> bytes:
    """The report as one self-contained UTF-8 HTML page."""
    content = _build(report)
    title = f"{content.title.chinese} {content.title.english}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(content.verdict.headline.english)} · {_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body><main>",
        _html_header(content),
        *(_html_section(section) for section in content.sections),
        _html_footer(content.footer),
        "</main></body>",
        "</html>",
    ]
    return ("\n".join(parts) + "\n").encode("utf-8")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_header(content: _Report) -> str:
    verdict = content.verdict
    state = "valid" if verdict.valid else "invalid"
    parts = [
        f'<header><h1>{_e(content.title.chinese)}<span class="en">'
        f"{_e(content.title.english)}</span></h1>",
        f'<p class="verdict {state}">{_e(verdict.headline.english)} '
        f"{_e(verdict.headline.chinese)}</p>",
    ]
    if verdict.reason:
        parts.append(
            f'<div class="box reason"><p>原因 <span class="en">Reason</span>：'
            f"{_e(verdict.reason)}</p></div>"
        )
    if verdict.caution is not None:
        parts.append(
            f'<div class="box caution"><p><strong>{_e(verdict.caution.english)}</strong></p>'
            f"<p>{_e(verdict.caution.chinese)}</p>"
            f'<p>创世哈希 Genesis hash：<code class="code">{_e(verdict.caution_value)}</code></p>'
            "</div>"
        )
    if verdict.assurance is not None:
        parts.append(
            f'<div class="box assurance"><p>{_e(verdict.assurance.chinese)}</p>'
            f"<p>{_e(verdict.assurance.english)}</p></div>"
        )
    parts.append("</header>")
    return "\n".join(parts)


def _html_section(section: _Section) -> str:
    parts = [f"<section><h2>{_html_bilingual(section.title)}</h2>"]
    if section.lead:
        parts.append('<div class="lead">')
        for text in section.lead:
            parts.append(
                f'<p class="zh">{_e(text.chinese)}</p><p class="en">{_e(text.english)}</p>'
            )
        parts.append("</div>")
    if section.fields:
        parts.append(f'<dl class="fields">{"".join(map(_html_field, section.fields))}</dl>')
    if section.table is not None:
        parts.append(_html_table(section.table))
    if section.steps:
        items = "".join(
            f'<li>{_e(step.chinese)}<br><span class="en">{_e(step.english)}</span></li>'
            for step in section.steps
        )
        parts.append(f"<ol>{items}</ol>")
    if section.notes:
        notes = "".join(
            f'<p>{_e(note.chinese)}<br><span class="en">{_e(note.english)}</span></p>'
            for note in section.notes
        )
        parts.append(f'<div class="notes">{notes}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def _html_bilingual(text: _Text) -> str:
    return f'{_e(text.chinese)}<span class="en">{_e(text.english)}</span>'


def _html_field(field: _Field) -> str:
    value = f'<code class="code">{_e(field.value)}</code>' if field.code else _e(field.value)
    tone = f' class="{field.tone}"' if field.tone else ""
    return (
        f'<dt>{_e(field.label.chinese)} <span class="en">{_e(field.label.english)}</span></dt>'
        f"<dd{tone}>{value}</dd>"
    )


def _html_table(table: _Table) -> str:
    headings = "".join(
        f'<th style="width:{column.width * 100:.0f}%">{_e(column.heading.chinese)} '
        f'<span class="en">{_e(column.heading.english)}</span></th>'
        for column in table.columns
    )
    rows = []
    for row in table.rows:
        tones = {cell.tone for cell in row}
        row_class = ' class="fail"' if "fail" in tones else ""
        cells = "".join(
            _html_cell(cell, column) for cell, column in zip(row, table.columns, strict=True)
        )
        rows.append(f"<tr{row_class}>{cells}</tr>")
    return f"<table><thead><tr>{headings}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_cell(cell: _Cell, column: _Column) -> str:
    classes = " ".join(name for name in ("code" if cell.code else "", cell.tone) if name)
    label = f"{column.heading.chinese} {column.heading.english}"
    class_attribute = f' class="{classes}"' if classes else ""
    return f'<td{class_attribute} data-label="{_e(label)}">{_e(cell.text)}</td>'


def _html_footer(fields: Sequence[_Field]) -> str:
    spans = "".join(
        f"<span>{_e(field.label.chinese)} {_e(field.label.english)}：{_e(field.value)}</span>"
        for field in fields
    )
    return f"<footer>{spans}<span>xinchain verify</span></footer>"


# --- PDF ----------------------------------------------------------------------------------------


def find_cjk_font() -> Path:
    """A font file with Chinese glyphs for the PDF: the file `XINCHAIN_REPORT_FONT` names, else
    the first of `CJK_FONT_PATHS` present, else the first fontconfig lists for Chinese.
    Raises `ConfigError` when there is none (and when the variable names a missing file)."""
    named = os.environ.get(FONT_VARIABLE, "").strip()
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(
                f"{FONT_VARIABLE}={named}: no such font file; expected a TrueType or OpenType "
                "font with Chinese glyphs",
                field=FONT_VARIABLE,
            )
        return path
    for path in CJK_FONT_PATHS:
        if path.is_file():
            return path
    for path in _fontconfig_chinese_fonts():
        if path.suffix.lower() in _FONT_SUFFIXES and path.is_file():
            return path
    raise ConfigError(
        "no font with Chinese glyphs found for the PDF report: install one (Debian: apt-get "
        "install fonts-wqy-microhei, or fonts-noto-cjk), or set "
        f"{FONT_VARIABLE} to a TrueType or OpenType font file; an HTML report (--report "
        "OUT.html) needs no font",
        field="font",
    )


def _fontconfig_chinese_fonts() -> list[Path]:
    """What `fc-list :lang=zh file` lists, sorted; nothing when fontconfig is absent."""
    program = shutil.which("fc-list")
    if program is None:
        return []
    try:
        listing = subprocess.run(
            [program, ":lang=zh", "file"],
            capture_output=True,
            text=True,
            timeout=fontconfig_timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    lines = listing.stdout.splitlines() if listing.returncode == 0 else []
    return sorted(Path(line.strip().removesuffix(":")) for line in lines if line.strip())


def render_pdf(report: ReportInput) -> bytes:
    """The report as a PDF of one or two A4 pages, the CJK font embedded (subset). The same
    input gives the same bytes: the creation date is the report's `generated_ms`."""
    pdf = _ReportPdf(find_cjk_font(), _build(report), report.generated_ms)
    pdf.write_report()
    return bytes(pdf.output())


# Page geometry in millimetres, type sizes in points.
_MARGIN_MM = 15.0
_TOP_MARGIN_MM = 14.0
_BOTTOM_MARGIN_MM = 16.0
_LABEL_WIDTH_MM = 46.0
_CELL_PADDING_MM = (0.8, 1.2)  # vertical, horizontal
_BOX_PADDING_MM = 2.5
# fpdf2 measures a line a little wider than the sum of its glyphs: lines broken here are kept
# this much narrower, so that fpdf2 never breaks one again.
_WRAP_SLACK_MM = 0.8
_POINT_MM = 25.4 / 72
_BODY_PT = 8.2
_SMALL_PT = 7.2
_CODE_PT = 7.8
_HEADING_PT = 10.5
_LINE_MM = 3.8
_SMALL_LINE_MM = 3.3
_COLOURS: dict[str, tuple[int, int, int]] = {
    "text": (27, 31, 36),
    "muted": (91, 101, 112),
    "line": (200, 206, 212),
    "white": (255, 255, 255),
    "pass": (23, 112, 58),
    "fail": (179, 38, 30),
    "warn": (138, 90, 0),
    "warn-fill": (255, 244, 214),
    "warn-border": (224, 168, 0),
    "pass-fill": (230, 244, 234),
    "fail-fill": (253, 236, 235),
    "heading-fill": (243, 245, 247),
}


@dataclass(frozen=True)
class _Run:
    """A piece of text as the PDF sets it."""

    text: str
    size: float = _BODY_PT
    colour: str = "text"
    family: str = "cjk"  # "cjk", or "mono" for hashes and commands


class _ReportPdf(FPDF):
    """`_Report` laid out on A4 pages. Two faces of the CJK font: "cjk" (regular) and "mono"
    (the collection's monospaced face, for hashes; the regular one when there is none)."""

    def __init__(self, font: Path, content: _Report, generated_ms: int) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.content = content
        regular, mono = _font_faces(font)
        try:
            self.add_font("cjk", "", str(font), collection_font_number=regular)
            self.add_font("mono", "", str(font), collection_font_number=mono)
        except Exception as exc:  # fontTools refuses a bad file with many kinds of error
            raise ConfigError(
                f"{font} is not a font the PDF report can embed ({type(exc).__name__}: {exc}); "
                f"expected a TrueType or OpenType font with Chinese glyphs ({FONT_VARIABLE})",
                field="font",
            ) from exc
        self.set_margins(_MARGIN_MM, _TOP_MARGIN_MM, _MARGIN_MM)
        self.set_auto_page_break(True, margin=_BOTTOM_MARGIN_MM)
        self.set_creation_date(_EPOCH + timedelta(milliseconds=generated_ms))
        self.set_title(f"{content.title.chinese} {content.title.english}")
        self.set_subject(content.metadata_subject)
        self.set_creator("xinchain verify --report")
        self.set_lang("zh-CN")

    def write_report(self) -> None:
        self.add_page()
        self._header()
        for section in self.content.sections:
            self._section(section)

    def footer(self) -> None:
        text = " · ".join(
            f"{field.label.chinese} {field.label.english}: {field.value}"
            for field in self.content.footer
        )
        number_width = 14.0
        self.set_y(-11)
        self._use(_Run("", _SMALL_PT - 0.4, "muted"))
        width = self.epw - number_width
        self.multi_cell(
            width, 3, self._wrap_cell(text, width), new_x="RIGHT", new_y="TOP", align="L"
        )
        self.cell(number_width, 3, f"{self.page_no()}/{{nb}}", align="R")

    # --- text -------------------------------------------------------------------------------

    def _use(self, run: _Run) -> None:
        self.set_font(run.family, size=run.size)
        self.set_text_color(*_COLOURS[run.colour])

    def _wrap(self, text: str, width: float) -> str:
        """`text` broken into lines of at most `width` mm in the current font, the way
        Chinese is set (`_line_breaks`); fpdf2 alone breaks only at spaces."""
        hanging = self.font_size_pt * _POINT_MM  # room for punctuation that may not start a line
        room = width - _WRAP_SLACK_MM - hanging
        return "\n".join(_line_breaks(self._printable(text), room, self.get_string_width))

    def _printable(self, text: str) -> str:
        """`text` with each character the font has no glyph for spelled out (an emoji in a
        title, say): fpdf2 would leave it out, and the reader would see a different text."""
        font = self.current_font
        if not isinstance(font, TTFFont):
            return text
        glyphs = font.cmap
        return "".join(
            character if character == "\n" or ord(character) in glyphs else spelled(character)
            for character in text
        )

    def _wrap_cell(self, text: str, width: float) -> str:
        """`_wrap` for a `multi_cell` `width` wide: it keeps `c_margin` clear on each side."""
        return self._wrap(text, width - 2 * self.c_margin)

    def _lines(self, runs: Sequence[_Run], width: float, height: float = _LINE_MM) -> None:
        x = self.get_x()
        for run in runs:
            self._use(run)
            self.set_x(x)
            wrapped = self._wrap_cell(run.text, width)
            self.multi_cell(width, height, wrapped, new_x="LEFT", new_y="NEXT", align="L")
        self.set_x(self.l_margin)

    def _cell_text(self, text: str, width: float, run: _Run) -> str:
        self._use(run)
        return self._wrap(text, width - 2 * _CELL_PADDING_MM[1])

    def _style(self, run: _Run, fill: str | None = None) -> FontFace:
        return FontFace(
            family=run.family,
            size_pt=run.size,
            color=_COLOURS[run.colour],
            fill_color=_COLOURS[fill] if fill else None,
        )

    # --- parts ------------------------------------------------------------------------------

    def _header(self) -> None:
        content, verdict = self.content, self.content.verdict
        self._use(_Run("", 18))
        self.cell(0, 9, content.title.chinese, new_x="LMARGIN", new_y="NEXT")
        self._lines([_Run(content.title.english, 10.5, "muted")], self.epw, 5)
        self.ln(2)
        self.set_fill_color(*_COLOURS["pass" if verdict.valid else "fail"])
        self._use(_Run("", 20, "white"))
        headline = f"  {verdict.headline.english} {verdict.headline.chinese}"
        self.cell(0, 12, headline, fill=True, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)
        if verdict.reason:
            reason = _Run(f"原因 Reason：{verdict.reason}", _BODY_PT + 0.6, "fail")
            self._box([reason], border="fail", fill=None)
        if verdict.caution is not None:
            runs = [
                _Run(verdict.caution.english, _BODY_PT + 0.6, "warn"),
                _Run(verdict.caution.chinese, _BODY_PT + 0.6, "warn"),
                _Run("创世哈希 Genesis hash：", _BODY_PT, "warn"),
                _Run(verdict.caution_value, _CODE_PT + 0.4, "warn", "mono"),
            ]
            self._box(runs, border="warn-border", fill="warn-fill")
        if verdict.assurance is not None:
            runs = [
                _Run(verdict.assurance.chinese, _BODY_PT, "pass"),
                _Run(verdict.assurance.english, _BODY_PT, "pass"),
            ]
            self._box(runs, border="pass", fill="pass-fill")

    def _box(self, runs: Sequence[_Run], border: str, fill: str | None) -> None:
        """Lines of text in a coloured frame: measured first, then drawn, so the frame fits."""
        width = self.epw - 2 * _BOX_PADDING_MM
        lines = 0
        for run in runs:
            self._use(run)
            lines += self._wrap_cell(run.text, width).count("\n") + 1
        height = lines * _LINE_MM + 2 * _BOX_PADDING_MM
        if self.will_page_break(height):
            self.add_page()
        top = self.get_y()
        self.set_draw_color(*_COLOURS[border])
        self.set_line_width(0.5)
        self.set_fill_color(*_COLOURS[fill or "white"])
        self.rect(self.l_margin, top, self.epw, height, style="DF" if fill else "D")
        self.set_line_width(0.2)
        self.set_fill_color(*_COLOURS["white"])  # tables fill cells with the current colour
        self.set_xy(self.l_margin + _BOX_PADDING_MM, top + _BOX_PADDING_MM)
        self._lines(runs, width)
        self.set_y(top + height + 2)

    def _heading(self, title: _Text, kept_mm: float) -> None:
        """The section's title; on a new page unless `kept_mm` more fit below it."""
        if self.will_page_break(kept_mm):
            self.add_page()
        self.ln(1.8)
        self._use(_Run("", _HEADING_PT))
        self.write(5.5, title.chinese)
        self._use(_Run("", _HEADING_PT - 2, "muted"))
        self.write(5.5, f"  {title.english}")
        self.ln(6)
        self.set_draw_color(*_COLOURS["line"])
        self.set_line_width(0.4)
        rule_y = self.get_y() - 0.6
        self.line(self.l_margin, rule_y, self.l_margin + self.epw, rule_y)
        self.set_line_width(0.2)
        self.ln(0.8)

    def _section(self, section: _Section) -> None:
        self._heading(section.title, _kept_mm(section))
        for text in section.lead:
            self._lines([_Run(text.chinese), _Run(text.english, _BODY_PT - 0.4, "muted")], self.epw)
        if section.lead:
            self.ln(1)
        if section.fields:
            self._fields(section.fields)
        if section.table is not None:
            self._table(section.table)
        if section.steps:
            self._steps(section.steps)
        for note in section.notes:
            self.ln(0.8)
            runs = [_Run(note.chinese, _SMALL_PT, "muted"), _Run(note.english, _SMALL_PT, "muted")]
            self._lines(runs, self.epw, _SMALL_LINE_MM)

    def _fields(self, fields: Sequence[_Field]) -> None:
        label = _Run("", _SMALL_PT, "muted")
        value_width = self.epw - _LABEL_WIDTH_MM
        with self.table(
            col_widths=(_LABEL_WIDTH_MM, value_width),
            width=self.epw,
            first_row_as_headings=False,
            borders_layout="HORIZONTAL_LINES",
            line_height=_LINE_MM,
            padding=_CELL_PADDING_MM,
            text_align="LEFT",
            v_align="TOP",
        ) as table:
            for field in fields:
                value = _Run(
                    "",
                    _CODE_PT if field.code else _BODY_PT,
                    field.tone or "text",
                    "mono" if field.code else "cjk",
                )
                label_text = f"{field.label.chinese} {field.label.english}"
                row = table.row()
                row.cell(
                    self._cell_text(label_text, _LABEL_WIDTH_MM, label), style=self._style(label)
                )
                row.cell(self._cell_text(field.value, value_width, value), style=self._style(value))

    def _table(self, table: _Table) -> None:
        heading = _Run("", _SMALL_PT, "muted")
        widths = [column.width * self.epw for column in table.columns]
        with self.table(
            col_widths=widths,
            width=self.epw,
            first_row_as_headings=True,
            headings_style=self._style(heading, fill="heading-fill"),
            borders_layout="HORIZONTAL_LINES",
            line_height=_SMALL_LINE_MM,
            padding=_CELL_PADDING_MM,
            text_align="LEFT",
            v_align="TOP",
        ) as pdf_table:
            headings = pdf_table.row()
            for column, width in zip(table.columns, widths, strict=True):
                text = f"{column.heading.chinese} {column.heading.english}"
                headings.cell(self._cell_text(text, width, heading))
            for cells in table.rows:
                row = pdf_table.row()
                fill = "fail-fill" if any(cell.tone == "fail" for cell in cells) else None
                for cell, width in zip(cells, widths, strict=True):
                    run = _Run(
                        "",
                        _CODE_PT - 0.4 if cell.code else _SMALL_PT + 0.4,
                        cell.tone or "text",
                        "mono" if cell.code else "cjk",
                    )
                    text = self._cell_text(cell.text, width, run)
                    row.cell(text, style=self._style(run, fill))

    def _steps(self, steps: Sequence[_Text]) -> None:
        """A numbered list, Chinese and English side by side."""
        chinese = _Run("", _BODY_PT - 0.4)
        english = _Run("", _SMALL_PT, "muted")
        shares = (0.04, 0.44, 0.52)
        widths = [share * self.epw for share in shares]
        with self.table(
            col_widths=shares,
            width=self.epw,
            first_row_as_headings=False,
            borders_layout="NONE",
            line_height=_SMALL_LINE_MM,
            padding=(0.6, _CELL_PADDING_MM[1]),
            text_align="LEFT",
            v_align="TOP",
        ) as table:
            for number, step in enumerate(steps, start=1):
                row = table.row()
                row.cell(f"{number}.", style=self._style(chinese))
                row.cell(
                    self._cell_text(step.chinese, widths[1], chinese), style=self._style(chinese)
                )
                row.cell(
                    self._cell_text(step.english, widths[2], english), style=self._style(english)
                )


def _kept_mm(section: _Section) -> float:
    """How much of `section` must fit below its heading, roughly: the heading and the first
    rows, or a short table whole (a validator list is not split over two pages)."""
    heading_and_lead = 10 + 8 * len(section.lead)
    if section.table is not None:
        rows = len(section.table.rows)
        kept_rows = rows if rows <= 8 else 2  # a long table may break, after two rows
        return heading_and_lead + 5.5 * (kept_rows + 1) + 7 * len(section.notes)
    return heading_and_lead + 6 * min(len(section.fields), 2)


# Characters that may not begin a line (closing punctuation) or end one (opening punctuation):
# the rules Chinese typesetting keeps (W3C, "Requirements for Chinese Text Layout", 3.1.7).
# Written partly as escapes, which ruff would otherwise flag as look-alikes of ASCII: the
# full-width semicolon, exclamation and question marks, tortoise shell brackets and single
# quotation marks.
_NO_LINE_START = frozenset("，。、：）》」』】〉…·”,.;:!?)]}%\uff1b\uff01\uff1f\u3015\u2019")
_NO_LINE_END = frozenset("（《「『【〈“([{\u3014\u2018")


def _line_breaks(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """`text` in lines at most `width` wide (by `measure`), breaking at spaces and between
    Chinese characters, never before closing or after opening punctuation (a closing mark may
    hang past `width` by itself), and inside a word only when the word is wider than a line.
    Newlines in `text` are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_break_paragraph(paragraph, width, measure))
    return lines


def _break_paragraph(paragraph: str, width: float, measure: Callable[[str], float]) -> list[str]:
    lines: list[str] = []
    line: list[str] = []
    for unit in _break_units(paragraph):
        if unit == " " and not line:
            continue
        fits = measure("".join([*line, unit]).rstrip()) <= width
        if fits or (line and len(unit) == 1 and unit in _NO_LINE_START):
            line.append(unit)
            continue
        if unit == " ":
            lines.append("".join(line).rstrip())
            line = []
            continue
        carried: list[str] = []
        while line and line[-1] in _NO_LINE_END:
            carried.insert(0, line.pop())
        if line and measure(unit) <= width:  # the word starts the next line
            lines.append("".join(line).rstrip())
            line = carried
        else:  # wider than a line: cut it, filling this line first
            line += carried
        pieces = _cut(unit, width - measure("".join(line)), width, measure)
        for piece in pieces[:-1]:
            lines.append("".join([*line, piece]).rstrip())
            line = []
        line.append(pieces[-1])
    lines.append("".join(line).rstrip())
    return lines


def _break_units(paragraph: str) -> list[str]:
    """Words, spaces and single wide (Chinese) characters: between any two a line may break."""
    units: list[str] = []
    word = ""
    for character in paragraph:
        if character == " " or unicodedata.east_asian_width(character) in ("W", "F"):
            if word:
                units.append(word)
                word = ""
            units.append(character)
        else:
            word += character
    if word:
        units.append(word)
    return units


def _cut(word: str, room: float, width: float, measure: Callable[[str], float]) -> list[str]:
    """`word` in pieces: the first at most `room` wide (may be empty), the others `width`."""
    pieces: list[str] = []
    piece = ""
    for character in word:
        if measure(piece + character) > room and (piece or room < width):
            pieces.append(piece)
            piece, room = "", width
        piece += character
    pieces.append(piece)
    return pieces


def _font_faces(font: Path) -> tuple[int, int]:
    """(regular, monospaced) face numbers in a font collection (.ttc/.otc): the Simplified
    Chinese face where there are several (Noto CJK holds JP, KR, SC, TC, HK); (0, 0) for a
    single font or a collection that cannot be read here (fpdf2 then says what is wrong)."""
    if font.suffix.lower() not in (".ttc", ".otc"):
        return 0, 0
    try:
        with TTCollection(str(font), lazy=True) as collection:
            names = [str(face["name"].getDebugName(1) or "") for face in collection.fonts]
    except Exception:  # any unreadable collection: fpdf2 says what is wrong with it below
        return 0, 0

    def first(monospaced: bool, otherwise: int) -> int:
        chosen = [i for i, name in enumerate(names) if ("Mono" in name) == monospaced]
        simplified = [i for i in chosen if names[i].endswith(" SC")]
        return (simplified or chosen or [otherwise])[0]

    regular = first(monospaced=False, otherwise=0)
    return regular, first(monospaced=True, otherwise=regular)
