"""Pinyin of Chinese text, as pypinyin's `lazy_pinyin` gives it, from a compact table.

pypinyin keeps its dictionaries as Python objects: ~50 MB in every worker process (47,111 phrases as lists of
lists of strings, a set of their 86,926 prefixes, 41,923 characters, each dictionary copied once more), for
the few hundred phrases a catalogue uses. `pinyin_table.txt` holds the same readings in the two styles search
uses (NORMAL and FIRST_LETTER, which is NORMAL's first letter): 0.6 MB of text, ~2.5 MB once read, on first
use (a worker that writes no product names and gets no pinyin or misspelt keyword never reads it). This
module segments text exactly as pypinyin 0.55 does (forward maximum matching over its phrases) and answers
what `lazy_pinyin(text)` and `lazy_pinyin(text, style=Style.FIRST_LETTER)` answer: tests/test_pinyin.py
compares every character, every phrase and every beginning of one, the demo catalogue and random text.

pypinyin is only needed to regenerate the table (`python -m services.catalog.pinyin`), after upgrading it.
"""

from __future__ import annotations

import re
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("pinyin_table.txt")

# Characters pypinyin treats as Han (its RE_HANS): runs of them are segmented into words and read, everything
# else passes through as it is. Copied from pypinyin.constants (tests compare every code point).
_HAN = re.compile(
    "[\u3007\ue815-\ue864\ufa18\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a703-\U0002b73f\U0002b740-\U0002b81d\U0002b825-\U0002bf6e"
    "\U0002c029-\U0002ce93\U0002d016\U0002d11b-\U0002ebd9\U0002f80a-\U0002fa1f\U00030000-\U0003134a"
    "\U000300f7-\U00031288\U00030edd\U00030ede\U00031350-\U00032389]"
)
_RUNS = re.compile(f"{_HAN.pattern}+|(?:(?!{_HAN.pattern}).)+", re.DOTALL)

# Table lines: "@4e00 yi ding kao ..." reads consecutive code points from U+4E00; any other line lists the
# phrases starting with its first character, "阿 爸 姨=a-yi 拉伯" (阿爸, 阿姨 read a yi, 阿拉伯): a reading is
# given only where the phrase is not read as its characters are one by one.
_CHARS_MARK = "@"


@dataclass(frozen=True, eq=False)
class _Table:
    code_points: array[int]
    """Sorted code points that have a reading."""
    syllable_of: array[int]
    """Index into `syllables` of each code point's reading."""
    syllables: tuple[str, ...]
    phrases: dict[str, str]
    """First character -> " rest rest=read-ing ... " of every phrase starting with it."""

    def reading(self, char: str) -> str | None:
        point = ord(char)
        index = bisect_left(self.code_points, point)
        if index < len(self.code_points) and self.code_points[index] == point:
            return self.syllables[self.syllable_of[index]]
        return None

    def starts_phrase(self, word: str) -> bool:
        """Whether some phrase starts with `word` (or is it)."""
        block = self.phrases.get(word[0])
        return block is not None and (len(word) == 1 or f" {word[1:]}" in block)

    def phrase_reading(self, word: str) -> list[str] | None:
        """The syllables of phrase `word`; None if it is not a phrase."""
        block = self.phrases.get(word[0])
        if block is None or len(word) == 1:
            return None
        rest = word[1:]
        if f" {rest} " in block:
            return [self.reading(char) or char for char in word]
        start = block.find(f" {rest}=")
        if start < 0:
            return None
        start += len(rest) + 2
        return block[start : block.index(" ", start)].split("-")


@cache
def _table() -> _Table:
    code_points: array[int] = array("I")
    syllable_of: array[int] = array("H")
    syllables: dict[str, int] = {}
    phrases: dict[str, str] = {}
    with TABLE_PATH.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith(_CHARS_MARK):
                first, *readings = line[1:].split(" ")
                start = int(first, 16)
                for offset, syllable in enumerate(readings):
                    code_points.append(start + offset)
                    syllable_of.append(syllables.setdefault(syllable, len(syllables)))
            else:
                phrases[line[0]] = line[1:] + " "
    return _Table(code_points, syllable_of, tuple(syllables), phrases)


def _words(run: str, table: _Table) -> Iterator[str]:
    """A Han run cut into phrases and single characters, exactly as pypinyin's mmseg (no_non_phrases) does."""
    remain = run
    while remain:
        longest = ""
        for end in range(1, len(remain) + 1):
            word = remain[:end]
            if not table.starts_phrase(word):
                if longest:
                    yield longest
                    remain = remain[len(longest) :]
                else:
                    yield remain[0]
                    remain = remain[1:]
                break
            if table.phrase_reading(word) is not None:
                longest = word
        else:
            # All that remains starts some phrase: pypinyin then reads the longest phrase found, or (its quirk)
            # every remaining character on its own, even where a phrase would start further in.
            if longest:
                yield longest
                remain = remain[len(longest) :]
            else:
                yield from remain
                break


def _readings(text: str) -> Iterator[tuple[str, bool]]:
    """(item, is_syllable) in `lazy_pinyin`'s order: a syllable per Han character, other text as one item."""
    table = _table()
    for match in _RUNS.finditer(text):
        run = match.group()
        if not _HAN.match(run):
            yield run, False
            continue
        for word in _words(run, table):
            syllables = table.phrase_reading(word) if len(word) > 1 else None
            if syllables is None:
                syllables = [table.reading(char) or char for char in word]
            for syllable in syllables:
                yield syllable, True


def syllables(text: str) -> list[str]:
    """`pypinyin.lazy_pinyin(text)`: the toneless syllable of each Han character (ü as v), other text as is."""
    return [item for item, _ in _readings(text)]


def first_letters(text: str) -> list[str]:
    """`pypinyin.lazy_pinyin(text, style=Style.FIRST_LETTER)`: each syllable's first letter, other text as is."""
    return [item[0] if syllable else item for item, syllable in _readings(text)]


def has_reading(char: str) -> bool:
    """Whether pypinyin has a reading for `char` (a key of its character dictionary)."""
    return _table().reading(char) is not None


# --- Making the table (needs pypinyin) -------------------------------------------------------------------------

CHARS_PER_LINE = 32


def build_table() -> str:
    """The text of `pinyin_table.txt`, from the installed pypinyin."""
    from importlib.metadata import version

    from pypinyin import Style
    from pypinyin.constants import PHRASES_DICT, PINYIN_DICT
    from pypinyin.style import convert

    def normal(char: str) -> str:
        # What lazy_pinyin does with one character: its first reading, in pypinyin's NORMAL style.
        first = PINYIN_DICT[ord(char)].split(",")[0]
        return str(convert(first, Style.NORMAL, True, default=first))

    lines = [
        f"# Pinyin readings from pypinyin {version('pypinyin')} (MIT License, github.com/mozillazg/python-pinyin),",
        "# generated by `python -m services.catalog.pinyin`: do not edit. Format: services/catalog/pinyin.py.",
    ]
    run: list[int] = []
    for point in [*sorted(PINYIN_DICT), -1]:
        if run and (point != run[-1] + 1 or len(run) == CHARS_PER_LINE):
            lines.append(f"{_CHARS_MARK}{run[0]:x} " + " ".join(normal(chr(p)) for p in run))
            run = []
        run.append(point)

    by_first: dict[str, list[str]] = {}
    for phrase in sorted(PHRASES_DICT):
        # What lazy_pinyin does with a phrase: the first reading of each character, in pypinyin's NORMAL style.
        read = [convert(first, Style.NORMAL, True, default=first) for first, *_ in PHRASES_DICT[phrase]]
        own = [normal(char) if ord(char) in PINYIN_DICT else char for char in phrase]
        rest = phrase[1:]
        by_first.setdefault(phrase[0], []).append(rest if read == own else f"{rest}={'-'.join(read)}")
    lines.extend(f"{first} {' '.join(rests)}" for first, rests in by_first.items())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TABLE_PATH.write_text(build_table(), encoding="utf-8")
    print(f"wrote {TABLE_PATH}", file=sys.stderr)
