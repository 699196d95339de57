"""The language of a public page: English or Chinese, chosen by `?lang=` or the browser."""

from __future__ import annotations

ENGLISH, CHINESE = 0, 1


def language(accept_language: str, override: str | None) -> int:
    """0 for English, 1 for Chinese: `?lang=` first, then the browser's preference."""
    if override in ("zh", "en"):
        return CHINESE if override == "zh" else ENGLISH
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return CHINESE
        if tag.startswith("en"):
            return ENGLISH
    return ENGLISH


def translate(table: dict[str, tuple[str, str]], key: str, lang: int) -> str:
    """`table[key]` in language `lang` (each entry is (English, Chinese))."""
    return table[key][lang]
