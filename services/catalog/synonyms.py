"""Words shoppers use for the same goods: a keyword also finds products listed under its synonyms."""

from __future__ import annotations

from collections.abc import Callable

# Each group is a set of interchangeable names; a keyword equal to any member searches for all of them.
# Written as shoppers type them; services.catalog.search normalizes them with the keyword's own rules. Lookup is
# by the whole keyword, so 红色手机套 gets no synonyms: expanding parts of a phrase would need segmentation.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("手机壳", "手机套", "保护壳", "保护套"),
    ("运动鞋", "跑鞋", "球鞋", "跑步鞋"),
    ("面霜", "乳霜", "保湿霜"),
    ("T恤", "短袖", "体恤"),
    ("连衣裙", "裙子", "长裙"),
    ("卫衣", "帽衫"),
    ("笔记本", "笔电", "笔记本电脑"),
    ("耳机", "耳麦"),
    ("零食", "小吃"),
    ("衬衫", "衬衣"),
    ("羽绒服", "羽绒衣"),
    ("双肩包", "背包"),
    ("行李箱", "拉杆箱", "旅行箱"),
    ("充电宝", "移动电源"),
    ("数据线", "充电线"),
    ("洗发水", "洗发露", "洗发液"),
    ("沐浴露", "沐浴液"),
    ("洗面奶", "洁面乳", "洗面乳"),
    ("防晒霜", "防晒乳"),
    ("口红", "唇膏"),
    ("纸巾", "抽纸", "面巾纸"),
    ("纸尿裤", "尿不湿"),
    ("洗洁精", "洗碗液"),
    ("保温杯", "保温瓶"),
    ("电饭煲", "电饭锅"),
    ("吹风机", "电吹风"),
    ("太阳镜", "墨镜"),
    ("手表", "腕表"),
    ("平板", "平板电脑"),
    ("电视", "电视机"),
    ("冰箱", "电冰箱"),
)


def build_synonym_table(
    groups: tuple[tuple[str, ...], ...], normalize: Callable[[str], str]
) -> dict[str, tuple[str, ...]]:
    """Each normalized word mapped to the other members of every group it is in."""
    merged: dict[str, set[str]] = {}
    for group in groups:
        words = {normalize(word) for word in group}
        for word in words:
            # A word listed in two groups gets both: the relation is symmetric, not transitive.
            merged.setdefault(word, set()).update(words - {word})
    return {word: tuple(sorted(others)) for word, others in merged.items()}
