"""Keyword search: the indexed text of a product, and how a shopper's keyword is matched against it."""

from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin

_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Full-width to half-width, lower case, no white space: the form both sides of a match use."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text).lower())


def search_document(*parts: str) -> str:
    """The text a product is found by: each part as written, in full pinyin and in pinyin initials.

    Parts are joined with "|" so a keyword cannot match across two of them.
    """
    pieces: list[str] = []
    for part in parts:
        text = normalize_text(part)
        if not text:
            continue
        pieces.append(text)
        pinyin = "".join(lazy_pinyin(text))
        if pinyin != text:
            pieces.append(pinyin)
            pieces.append("".join(lazy_pinyin(text, style=Style.FIRST_LETTER)))
    return "|".join(pieces)
