"""The copyright records a receipt carries: a registered photo (`register`) and evidence of a
suspected copy (`evidence`), each as the contract stored it (docs/receipts.md, "Records")."""

from __future__ import annotations

from typing import Any

from xinchain.apps.copyright.contract import NAME
from xinchain.apps.copyright.feature_codec import FeaturesInvalid, LocalFeatures
from xinchain.errors import ReceiptInvalid
from xinchain.records import (
    ReceiptKinds,
    RecordFact,
    RecordKind,
    Words,
    fields,
    hex64,
    hex64_or_empty,
    identifier,
    integer,
    list_of,
    text,
    uint,
)
from xinchain.wording import beijing, both_times, count, listed, phrase, short, shown


def local_features(value: object, where: str) -> None:
    """A work's local features as the chain stores them (features.LocalFeatures.encode)."""
    try:
        LocalFeatures.decode_canonical(value, where)
    except FeaturesInvalid as exc:
        raise ReceiptInvalid(exc.reason, field=where) from None


_check_work = fields(
    {
        "sha256": hex64,
        "pdq": hex64,
        "quality": integer(0, 100),
        "crops": list_of(hex64),
        "title": text,
        "org": identifier,
        "seller": text,
        "time_ms": uint,
    },
    optional={"features": local_features},
)
_evidence_fields = fields(
    {
        "work": hex64,
        "url": text,
        "files": list_of(fields({"name": text, "sha256": hex64})),
        "captured_ms": uint,
        "copy_pdq": hex64_or_empty,
        "distance": integer(-1, 256),
        "note": text,
        "recorder": identifier,
        "time_ms": uint,
    },
    optional={"inliers": integer(0, 64), "points": integer(1, 64)},
)


def _check_evidence(record: object, where: str) -> None:
    _evidence_fields(record, where)
    assert isinstance(record, dict)  # the fields check refused anything else
    if ("inliers" in record) != ("points" in record) or record.get("inliers", 0) > record.get(
        "points", 64
    ):
        raise ReceiptInvalid(
            "inliers and points come together, inliers at most points, found "
            f"inliers {record.get('inliers')!r} and points {record.get('points')!r}",
            field=f"{where}.inliers",
        )
    if (record["copy_pdq"] == "") != (record["distance"] == -1):
        raise ReceiptInvalid(
            "distance is -1 exactly when no copy was hashed (copy_pdq empty), found "
            f"copy_pdq {record['copy_pdq']!r} with distance {record['distance']}",
            field=f"{where}.distance",
        )


def _describe_work(record: dict[str, Any]) -> Words:
    title, org = phrase(record["title"]), phrase(record["org"])
    seller = phrase(record["seller"])
    crops = len(record["crops"])
    titled_english = f'"{title}"' if title else "without a title"
    titled_chinese = f"《{title}》" if title else "（无标题）"
    sold_english = f", sold by {seller}" if seller else ""
    sold_chinese = f"，销售方 {seller}" if seller else ""
    return Words(
        f"Photo {titled_english} registered by org {org}{sold_english} (image SHA-256 "
        f"{short(record['sha256'])}, PDQ quality {record['quality']}, "
        f"{crops} crop hash{'es' if crops != 1 else ''}).",
        f"作品{titled_chinese}由机构 {org} 登记{sold_chinese}（图片 SHA-256 "
        f"{short(record['sha256'])}，PDQ 质量 {record['quality']}，{crops} 个裁剪哈希）。",
    )


def _work_facts(record: dict[str, Any]) -> tuple[RecordFact, ...]:
    return (
        RecordFact(Words("Title", "作品标题"), shown(record["title"]) or "—"),
        RecordFact(Words("Registered by", "登记机构"), shown(record["org"])),
        RecordFact(Words("Image SHA-256", "图片 SHA-256"), record["sha256"], code=True),
        RecordFact(Words("PDQ hash", "PDQ 哈希"), record["pdq"], code=True),
        RecordFact(Words("Registered", "登记时间"), both_times(record["time_ms"])),
    )


def _describe_evidence(record: dict[str, Any]) -> Words:
    url, recorder = phrase(record["url"]), phrase(record["recorder"])
    files = len(record["files"])
    captured_english = beijing(record["captured_ms"], english=True)
    captured = beijing(record["captured_ms"])
    distance = record["distance"]
    if distance < 0:
        match_english, match_chinese = "no copy image was hashed", "未对复制图片计算哈希"
    else:
        match_english = f"the copy's PDQ hash differs from the work's in {distance} of 256 bits"
        match_chinese = f"复制图片的 PDQ 哈希与作品相差 {distance}/256 位"
    return Words(
        f"Org {recorder} recorded a suspected copy of work {short(record['work'])} at {url}, "
        f"captured {captured_english} in {count(files, 'file')}; {match_english}.",
        f"机构 {recorder} 记录了作品 {short(record['work'])} 的疑似复制品，网址 {url}，"
        f"取证时间 {captured}，共 {files} 个文件，{match_chinese}。",
    )


def _distance_text(distance: int) -> str:
    if distance < 0:
        return "— 未对复制图片计算哈希 no copy image was hashed"
    return f"{distance} / 256"


def _evidence_facts(record: dict[str, Any]) -> tuple[RecordFact, ...]:
    files = [f"{shown(item['name'])}  {item['sha256']}" for item in record["files"]]
    return (
        RecordFact(Words("Work (image SHA-256)", "作品"), record["work"], code=True),
        RecordFact(Words("URL", "网址"), shown(record["url"])),
        RecordFact(Words("Captured", "取证时间"), both_times(record["captured_ms"])),
        RecordFact(Words("Captured files (SHA-256)", "取证文件（SHA-256）"), listed(files), True),
        RecordFact(Words("PDQ distance", "汉明距离"), _distance_text(record["distance"])),
        RecordFact(Words("Note", "备注"), shown(record["note"]) or "—"),
        RecordFact(Words("Recorded", "记录时间"), both_times(record["time_ms"])),
    )


COPYRIGHT_RECEIPTS = ReceiptKinds(
    records=(
        RecordKind(
            name="work",
            contract=NAME,
            method="register",
            is_a=Words("a registered photo", "登记作品"),
            does=Words("registers photos", "登记作品"),
            check=_check_work,
            describe=_describe_work,
            facts=_work_facts,
            subject=lambda record: f"work {record['title']!r}",
            party="org",
        ),
        RecordKind(
            name="evidence",
            contract=NAME,
            method="evidence",
            is_a=Words("evidence of a suspected copy", "侵权证据"),
            does=Words("records evidence of a suspected copy", "记录侵权证据"),
            check=_check_evidence,
            describe=_describe_evidence,
            facts=_evidence_facts,
            subject=lambda record: f"evidence of a copy at {record['url']}",
            party="recorder",
        ),
    )
)
