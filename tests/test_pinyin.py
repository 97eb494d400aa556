"""Our compact pinyin table reads text exactly as pypinyin does: every character, every phrase, the demo
catalogue and random mixtures (which exercise the segmentation), in both styles search uses."""

from __future__ import annotations

import random

import pytest
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT, RE_HANS

from models import Brand, Category, Product, Tag
from services.catalog import pinyin
from services.catalog.search import normalize_text


def assert_reads_as_pypinyin(texts: list[str]) -> None:
    wrong = [
        (text, pinyin.syllables(text), lazy_pinyin(text))
        for text in texts
        if pinyin.syllables(text) != lazy_pinyin(text)
        or pinyin.first_letters(text) != lazy_pinyin(text, style=Style.FIRST_LETTER)
    ]
    assert wrong == []


def test_the_table_is_what_the_installed_pypinyin_gives() -> None:
    # After upgrading pypinyin: `python -m services.catalog.pinyin` rewrites it.
    assert pinyin.TABLE_PATH.read_text(encoding="utf-8") == pinyin.build_table()


def test_han_characters_and_readings_are_pypinyins_for_every_code_point() -> None:
    for point in range(0x110000):
        char = chr(point)
        assert (pinyin._HAN.match(char) is not None) == (RE_HANS.match(char) is not None), hex(point)
        assert pinyin.has_reading(char) == (point in PINYIN_DICT), hex(point)


def test_every_character_reads_as_in_pypinyin() -> None:
    assert_reads_as_pypinyin([chr(point) for point in PINYIN_DICT])


def test_every_phrase_and_every_beginning_of_one_reads_as_in_pypinyin() -> None:
    # A text that ends inside a phrase is where pypinyin reads every remaining character on its own (e.g. 下不了:
    # 不了 is a phrase of its own, read bu liao, but pypinyin reads the three characters xia bu le).
    beginnings = {phrase[:end] for phrase in PHRASES_DICT for end in range(2, len(phrase))}
    assert_reads_as_pypinyin([*PHRASES_DICT, *sorted(beginnings - PHRASES_DICT.keys())])
    assert pinyin.syllables("下不了") == ["xia", "bu", "le"]


def test_random_text_is_segmented_as_in_pypinyin() -> None:
    # Phrases run together, cut short, mixed with single characters and other text: forward maximum matching
    # has to pick the same words as pypinyin's (a heteronym reads differently inside another phrase).
    rng = random.Random(9)
    phrases = sorted(PHRASES_DICT)
    chars = [chr(point) for point in sorted(PINYIN_DICT)]
    other = [*"abcXY 09,.!？，。-_/\n〇", "\u9fa6", "\U00020000", "\ue815", "\u3400"]
    texts: list[str] = []
    for _ in range(10_000):
        parts: list[str] = []
        for _ in range(rng.randint(1, 8)):
            draw = rng.random()
            if draw < 0.45:
                phrase = rng.choice(phrases)
                parts.append(phrase[rng.randrange(len(phrase)) :] if rng.random() < 0.3 else phrase)
            elif draw < 0.8:
                parts.append(rng.choice(chars))
            else:
                parts.append(rng.choice(other))
        texts.append("".join(parts))
    assert_reads_as_pypinyin([*texts, "", " ", "abc", "连衣裙", "重庆火锅底料", "长虹", "银行行长"])


@pytest.mark.parametrize("model", [Product, Category, Brand, Tag])
async def test_the_demo_catalogue_reads_as_in_pypinyin(seeded: None, model: type) -> None:
    fields = ("title", "subtitle") if model is Product else ("name",)
    rows = await model.all().values_list(*fields)
    texts = sorted({normalize_text(text) for row in rows for text in row if text})
    assert len(texts) > 10
    assert_reads_as_pypinyin(texts)
