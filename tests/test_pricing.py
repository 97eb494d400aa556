"""One pricing module: list, tier, member and level prices, always integer fen."""

from __future__ import annotations

from models import Sku
from services.catalog.prices import PUBLIC, PriceContext, price_range, unit_price


def _sku(price: int, member_price: int | None = None, tiers: list[dict[str, int]] | None = None) -> Sku:
    return Sku(price=price, member_price=member_price, tier_prices=tiers or [], spec_key="1", stock=1)


def test_anonymous_shoppers_pay_the_list_price_even_if_a_member_price_exists() -> None:
    assert unit_price(_sku(12900, member_price=11900), PUBLIC) == 12900


def test_tier_prices_apply_from_their_quantity() -> None:
    sku = _sku(1000, tiers=[{"min_quantity": 10, "price": 900}, {"min_quantity": 50, "price": 800}])
    assert [unit_price(sku, PUBLIC, q) for q in (1, 9, 10, 49, 50, 500)] == [1000, 1000, 900, 900, 800, 800]


def test_members_get_the_lowest_of_member_and_level_price() -> None:
    gold = PriceContext(scope="level:3", is_member=True, level_percent=95)
    assert unit_price(_sku(10000, member_price=9800), gold) == 9500
    assert unit_price(_sku(10000, member_price=9000), gold) == 9000
    plain_member = PriceContext(scope="level:1", is_member=True)
    assert unit_price(_sku(10000, member_price=9800), plain_member) == 9800


def test_level_discount_rounds_half_up_to_whole_fen() -> None:
    member = PriceContext(scope="level:2", is_member=True, level_percent=95)
    assert unit_price(_sku(1990), member) == 1891  # 1890.5 fen rounds up
    assert unit_price(_sku(1), member) == 1, "a priced item never becomes free"


def test_price_range_over_skus() -> None:
    assert price_range([_sku(1990), _sku(2990), _sku(1590)]) == (1590, 2990)
    assert price_range([]) == (0, 0)
