"""Keyword search: the indexed text of a product, and how a shopper's keyword is matched against it.

A keyword becomes a set of terms (the keyword and its synonyms), each matched as a substring of
`Product.search_text`, which holds every part of a product as written, in full pinyin and in initials.
Only when no product on sale matches is the keyword corrected, one typo at most, against the words of
the catalog. Real searches also feed the hot words (`services.catalog.hot_words`).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from time import monotonic
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein
from tortoise.expressions import Case, Q, RawSQL, When
from tortoise.queryset import QuerySet

from models import Product, ProductStatus
from services.catalog.pinyin import first_letters, has_reading, syllables
from services.catalog.synonyms import SYNONYM_GROUPS, build_synonym_table

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
        pinyin = "".join(syllables(text))
        if pinyin != text:
            pieces.append(pinyin)
            pieces.append("".join(first_letters(text)))
    return "|".join(pieces)


# --- Matching ------------------------------------------------------------------------------------------

_SYNONYMS = build_synonym_table(SYNONYM_GROUPS, normalize_text)

# Relevance tiers: the keyword (or what it was corrected to) in the title, a synonym in the title,
# a match anywhere else in the search text (subtitle, category, brand, tag).
RELEVANCE_TITLE = 3
RELEVANCE_SYNONYM_IN_TITLE = 2
RELEVANCE_OTHER = 1

# Fuzzing two characters at one edit would turn almost any pair into some other word.
MIN_FUZZY_LENGTH = 3
MAX_CORRECTIONS = 3
# Han words a pinyin term stands for when ranking by title; the most common ones are enough.
MAX_TITLE_WORDS_PER_TERM = 8


@dataclass(frozen=True, eq=False)
class KeywordMatch:
    """How a keyword is searched: `condition` filters products, `with_relevance` orders them."""

    keyword: str
    """The keyword normalized (see `normalize_text`), as the shopper meant it before any correction."""
    terms: tuple[str, ...]
    """Normalized terms actually searched: the keyword or its corrections, then their synonyms."""
    condition: Q
    """`Product.search_text` contains any of `terms`; combine with the caller's own filters."""
    corrected: bool = False
    """True when nothing on sale matched the keyword and `terms` come from typo correction."""
    title_words: tuple[str, ...] = ()
    """Words whose presence in the title ranks a product first (a pinyin term's Han words included)."""
    synonym_title_words: tuple[str, ...] = ()
    """Words whose presence in the title ranks a product second."""


def _any(lookup: str, words: Iterable[str]) -> Q:
    return Q(*(Q(**{lookup: word}) for word in words), join_type="OR")


def _may_be_pinyin(term: str) -> bool:
    return term.isascii() and any(char.isalpha() for char in term)


def _unique(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


async def keyword_match(keyword: str) -> KeywordMatch | None:
    """The terms `keyword` is searched by and the filter for them; None if the keyword is blank.

    Synonyms are always added. If neither the keyword nor its synonyms match a product on sale, the
    keyword is corrected to the catalog words one edit away (or sounding the same) when there are any.
    One query for the existence check, plus one to load the word list when it is not cached.
    """
    word = normalize_text(keyword)
    if not word:
        return None
    primary: tuple[str, ...] = (word,)
    terms = _unique((word, *_SYNONYMS.get(word, ())))
    condition = _any("search_text__contains", terms)
    corrected = False

    vocabulary: _Vocabulary | None = None
    if not await Product.filter(condition, status=ProductStatus.ON_SALE).exists():
        if len(word) >= MIN_FUZZY_LENGTH:
            vocabulary = await _get_vocabulary()
            corrections = vocabulary.corrections(word)
            if corrections:
                primary = corrections
                terms = _unique(
                    (*corrections, *(syn for fixed in corrections for syn in _SYNONYMS.get(fixed, ())))
                )
                condition = _any("search_text__contains", terms)
                corrected = True

    # A pinyin term is in the search text but never in a title: rank by the Han words it stands for.
    if vocabulary is None and any(_may_be_pinyin(term) for term in terms):
        vocabulary = await _get_vocabulary()
    title_words = _title_words(primary, vocabulary)
    synonym_title_words = tuple(
        w for w in _title_words((t for t in terms if t not in primary), vocabulary) if w not in title_words
    )
    return KeywordMatch(
        keyword=word,
        terms=terms,
        condition=condition,
        corrected=corrected,
        title_words=title_words,
        synonym_title_words=synonym_title_words,
    )


def _title_words(terms: Iterable[str], vocabulary: _Vocabulary | None) -> tuple[str, ...]:
    words: list[str] = []
    for term in terms:
        words.append(term)
        if vocabulary is not None and _may_be_pinyin(term):
            words.extend(vocabulary.han_words_sounding(term)[:MAX_TITLE_WORDS_PER_TERM])
    return _unique(words)


def with_relevance(queryset: QuerySet[Product], match: KeywordMatch) -> QuerySet[Product]:
    """`queryset` annotated with `relevance` (higher is better) for `.order_by("-relevance", ...)`.

    Portable SQL (CASE over LIKE), so it orders the same on SQLite and PostgreSQL. The title is
    compared case-insensitively as stored, so a title that splits a term with a space ranks lower.
    """
    whens = [When(_any("title__icontains", match.title_words), then=_sql_int(RELEVANCE_TITLE))]
    if match.synonym_title_words:
        whens.append(
            When(
                _any("title__icontains", match.synonym_title_words),
                then=_sql_int(RELEVANCE_SYNONYM_IN_TITLE),
            )
        )
    return queryset.annotate(relevance=Case(*whens, default=_sql_int(RELEVANCE_OTHER)))


def _sql_int(value: int) -> Any:
    # Value(3) is sent as a bind parameter, and PostgreSQL types an untyped parameter in CASE ... THEN
    # as text: asyncpg then refuses the int. A literal is typed as an integer on every backend; `When`
    # passes a pypika Term through as is (its annotation does not admit that, hence Any).
    return RawSQL(str(int(value)))


# --- Vocabulary for typo correction ----------------------------------------------------------------------

VOCABULARY_TTL_SECONDS = 60.0
# Longer chunks are whole phrases nobody types as a keyword; their n-grams are still indexed.
MAX_WORD_LENGTH = 16
NGRAM_SIZES = (2, 3, 4)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RUN = re.compile(f"[{_HAN}]+")
_HAN_CHAR = re.compile(f"[{_HAN}]")
_ALNUM_RUN = re.compile(r"[a-z0-9]+")
_SEPARATORS = re.compile(r"[\W_]+")


@lru_cache(maxsize=100_000)
def _syllables(run: str) -> tuple[str, ...]:
    """One pinyin syllable per character of a Han run, read in context as `search_document` does."""
    sounds = syllables(run)
    if len(sounds) != len(run):
        # A character without a reading comes back grouped with its neighbours: fall back to one by one.
        sounds = [syllables(char)[0] for char in run]
    return tuple(sounds)


def _sounds(chunk: str) -> list[str]:
    """Per character of `chunk`: its pinyin syllable if Han, else the character itself."""
    units = list(chunk)
    for run in _HAN_RUN.finditer(chunk):
        units[run.start() : run.end()] = _syllables(run.group())
    return units


# A catalog word: its text and, when it has Han characters, its full pinyin and initials.
_Word = tuple[str, str | None, str | None]


def _chunk_words(chunk: str) -> tuple[_Word, ...]:
    """The words of one separator-free chunk: itself, Han n-grams and latin/digit tokens."""
    words: list[_Word] = []
    if _HAN_CHAR.search(chunk) is None:
        if 2 <= len(chunk) <= MAX_WORD_LENGTH:
            words.append((chunk, None, None))
    else:
        units = _sounds(chunk)

        def add(start: int, end: int) -> None:
            sounds = units[start:end]
            words.append((chunk[start:end], "".join(sounds), "".join(s[0] for s in sounds)))

        if 2 <= len(chunk) <= MAX_WORD_LENGTH:
            add(0, len(chunk))
        for run in _HAN_RUN.finditer(chunk):
            for size in NGRAM_SIZES:
                for start in range(run.start(), run.end() - size + 1):
                    add(start, start + size)
    words.extend((token, None, None) for token in _ALNUM_RUN.findall(chunk) if len(token) >= 2)
    return tuple(words)


def _chunks(text: str) -> list[str]:
    """`text` folded like `normalize_text` but cut at white space and punctuation."""
    return [chunk for chunk in _SEPARATORS.split(unicodedata.normalize("NFKC", text).lower()) if chunk]


def _has_reading(part: str) -> bool:
    """Whether `search_document` wrote pinyin after `part`: it does when any character has a reading."""
    return any(has_reading(char) for char in part)


def _name_parts(search_text: str, skip: set[str]) -> Iterable[str]:
    """The parts `search_document` was given, without their pinyin forms and without `skip`."""
    pieces = search_text.split("|")
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        if piece not in skip:
            yield piece
        index += 1
        # search_document follows a part that has a pinyin reading by its full pinyin and initials.
        if _has_reading(piece):
            index += 2


@dataclass(frozen=True, eq=False)
class _Vocabulary:
    loaded_at: float
    frequency: dict[str, int]
    """Fuzzy-matchable word (text or full pinyin) -> number of products on sale containing it."""
    by_length: dict[int, list[str]]
    sounding: dict[str, tuple[str, ...]]
    """Full pinyin or initials -> Han words reading so, most common first."""

    def han_words_sounding(self, sound: str) -> tuple[str, ...]:
        return self.sounding.get(sound, ())

    def corrections(self, keyword: str) -> tuple[str, ...]:
        """Catalog words the keyword most likely meant: same sound first, else one edit away."""
        if _HAN_CHAR.search(keyword):
            # The usual slip of a pinyin input method: the right sound, the wrong character.
            sound = "".join(_sounds(keyword))
            homophones = [w for w in self.sounding.get(sound, ()) if w != keyword and len(w) == len(keyword)]
            if homophones:
                return tuple(homophones[:MAX_CORRECTIONS])
        size = len(keyword)
        found: list[str] = []
        # A substitution or transposition keeps the length: prefer it to a dropped or added character,
        # which would turn 连衣群 into the broader 连衣.
        for lengths in ((size,), (size - 1, size + 1)):
            for length in lengths:
                found.extend(
                    candidate
                    for candidate, distance, _ in process.extract(
                        keyword,
                        self.by_length.get(length, ()),
                        scorer=DamerauLevenshtein.distance,
                        score_cutoff=1,
                        limit=None,
                    )
                    if distance == 1
                )
            if found:
                break
        found.sort(key=lambda w: (-self.frequency[w], w))
        return tuple(found[:MAX_CORRECTIONS])


def _build_vocabulary(rows: list[tuple[str, str, str]], loaded_at: float) -> _Vocabulary:
    # Category, brand and tag names and the chunks of titles recur across products: split each once.
    words_of: dict[str, tuple[_Word, ...]] = {}
    matchable_of: dict[str, frozenset[str]] = {}
    frequency: Counter[str] = Counter()
    for title, subtitle, search_text in rows:
        chunks = set(_chunks(title))
        # Subtitles are sales copy, not names; their n-grams would add noise and pinyin work to every load.
        for part in _name_parts(search_text, {normalize_text(title), normalize_text(subtitle)}):
            chunks.update(_chunks(part))
        product_words: set[str] = set()
        for chunk in chunks:
            matchable = matchable_of.get(chunk)
            if matchable is None:
                words = words_of[chunk] = _chunk_words(chunk)
                matchable = matchable_of[chunk] = frozenset(
                    form for text, pinyin, _ in words for form in (text, pinyin) if form is not None
                )
            product_words |= matchable
        frequency.update(product_words)

    sounding: dict[str, set[str]] = {}
    for words in words_of.values():
        for text, pinyin, initials in words:
            if pinyin is not None and initials is not None:
                sounding.setdefault(pinyin, set()).add(text)
                sounding.setdefault(initials, set()).add(text)

    by_length: dict[int, list[str]] = {}
    for text in frequency:
        by_length.setdefault(len(text), []).append(text)
    ranked = {
        sound: tuple(sorted(texts, key=lambda t: (-frequency[t], t))) for sound, texts in sounding.items()
    }
    return _Vocabulary(loaded_at=loaded_at, frequency=dict(frequency), by_length=by_length, sounding=ranked)


_vocabulary: _Vocabulary | None = None
_vocabulary_generation = 0
_load_lock: asyncio.Lock | None = None
_load_lock_loop: asyncio.AbstractEventLoop | None = None


def invalidate_vocabulary() -> None:
    """Forget the cached catalog words; call after a committed write to products or their names.

    Other processes do not hear of it: their copies expire after VOCABULARY_TTL_SECONDS.
    """
    global _vocabulary, _vocabulary_generation
    _vocabulary = None
    _vocabulary_generation += 1


def _fresh(vocabulary: _Vocabulary) -> bool:
    return monotonic() - vocabulary.loaded_at < VOCABULARY_TTL_SECONDS


def _lock() -> asyncio.Lock:
    # An asyncio.Lock belongs to the loop it first waits on; tests and servers may run several loops.
    global _load_lock, _load_lock_loop
    loop = asyncio.get_running_loop()
    if _load_lock is None or _load_lock_loop is not loop:
        _load_lock, _load_lock_loop = asyncio.Lock(), loop
    return _load_lock


async def _get_vocabulary() -> _Vocabulary:
    global _vocabulary
    vocabulary = _vocabulary
    if vocabulary is not None and _fresh(vocabulary):
        return vocabulary
    # One load at a time: a burst of misspelt searches after expiry should not each read the catalog.
    async with _lock():
        vocabulary = _vocabulary
        if vocabulary is not None and _fresh(vocabulary):
            return vocabulary
        generation = _vocabulary_generation
        loaded_at = monotonic()
        rows = await Product.filter(status=ProductStatus.ON_SALE).values_list(
            "title", "subtitle", "search_text"
        )
        # Pinyin for a large catalog takes a while: keep it off the event loop.
        vocabulary = await asyncio.to_thread(_build_vocabulary, list(rows), loaded_at)
        # A write committed during the load may be missing from it: serve it once, do not keep it.
        if generation == _vocabulary_generation:
            _vocabulary = vocabulary
        return vocabulary
