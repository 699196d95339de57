"""Values as a reader sees them: text made safe to print, hashes shortened, times in Beijing time
and UTC. The verification report and the apps' record kinds (their sentences and facts) use
these, so a record reads the same wherever it is shown."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

# Text from a record (a title, a URL, a note) is shown up to this many characters: the report
# must stay within two pages, and the whole value is in the receipt anyway.
record_text_shown_chars_max = 120
# An event's EPCs and an evidence's files shown, the rest counted: same reason.
record_items_shown_max = 6
# The sentence that says what a record says repeats some of its text: shorter there, with
# fewer of an event's EPCs (the fields below it show them longer).
phrase_chars_max = 60
phrase_items_max = 3

BEIJING = timezone(timedelta(hours=8), "CST")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def shown(text: str, limit: int = record_text_shown_chars_max) -> str:
    """`text` made safe to print: invisible and control characters spelled out (a title must
    not hide text or reorder a line), cut at `limit` characters with the rest counted."""
    visible = "".join(spelled(character) if _hidden(character) else character for character in text)
    if len(visible) <= limit:
        return visible
    return f"{visible[:limit]}… (+{len(visible) - limit})"


def spelled(character: str) -> str:
    """A character as Python writes its escape: \\u200e, \\U0001f642."""
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def phrase(text: str) -> str:
    """`text` as part of a sentence: shown, and shorter."""
    return shown(text, phrase_chars_max)


def _hidden(character: str) -> bool:
    if character == "\n":
        return False
    return unicodedata.category(character) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def short(hex_text: str) -> str:
    """A hash's first 16 hex digits and an ellipsis."""
    return f"{hex_text[:16]}…"


def count(number: int, noun: str) -> str:
    """'1 file', '2 files'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def listed(lines: list[str], limit: int = record_items_shown_max) -> str:
    """Lines (each already made safe with `shown`) one a line, at most `limit` of them with the
    rest counted; '—' for none."""
    more = len(lines) - limit
    return "\n".join(lines[:limit]) + (f"\n… +{more}" if more > 0 else "") or "—"


def _moment(ms: int, zone: timezone) -> datetime | None:
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).astimezone(zone)
    except OverflowError:  # a record's uint may lie beyond the year 9999
        return None


def beijing(ms: int, *, milliseconds: bool = False, english: bool = False) -> str:
    """'2026-11-11 00:00:01 北京时间' (UTC+8), with '.234' before the zone if asked, and
    'Beijing time' for the zone in an English sentence."""
    local = _moment(ms, BEIJING)
    if local is None:
        return f"{ms} ms"
    fraction = f".{ms % 1000:03d}" if milliseconds else ""
    zone = "Beijing time" if english else "北京时间"
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')}{fraction} {zone}"


def utc(ms: int) -> str:
    """'2026-11-10T16:00:01.234Z': ISO 8601 in UTC, to the millisecond."""
    moment = _moment(ms, UTC)
    if moment is None:
        return f"{ms} ms since 1970-01-01T00:00:00Z"
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{ms % 1000:03d}Z"


def both_times(ms: int) -> str:
    """Beijing time and UTC, for a field a reader checks."""
    return f"{beijing(ms)} · {utc(ms)}"
