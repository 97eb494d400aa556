"""A member's favourites (收藏) and browsing history (足迹): products and articles, newest first, repeats
harmless, other members' never visible; history recorded by `historyRecord` (the cached product page runs no
resolver to record it)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from models import BrowsingHistory, Product
from schema.node import encode_id
from services.content import history
from tests.content_support import new_member
from tests.graphql_client import gql

pytestmark = pytest.mark.usefixtures("seeded")

ADD = "mutation($id: ID!) { favoriteAdd(id: $id) { favorite errors { code field } } }"
REMOVE = "mutation($id: ID!) { favoriteRemove(id: $id) { favorite errors { code } } }"
FAVORITES = "query($k: FavoriteKind) { myFavorites(kind: $k) { totalCount edges { node { kind product { id } article { id } } } } }"
RECORD = (
    "mutation($id: ID!) { historyRecord(productId: $id) { entry { views product { id } } errors { code } } }"
)
HISTORY = "{ myHistory(first: 10) { totalCount edges { node { views product { id title } } } pageInfo { hasNextPage } } }"


async def data(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    (result,) = (await gql(client, query, variables, token=token))["data"].values()
    return result


async def test_favourites(client: httpx.AsyncClient) -> None:
    _, token = await new_member()
    _, other = await new_member()
    first, second = [
        encode_id("Product", p.id) for p in await Product.filter(status="ON_SALE").order_by("id").limit(2)
    ]
    for pid in (first, second, first):
        assert (await data(client, ADD, {"id": pid}, token))["favorite"] is True
    listed = await data(client, FAVORITES, {"k": "PRODUCT"}, token)
    assert listed["totalCount"] == 2
    assert [e["node"]["product"]["id"] for e in listed["edges"]] == [second, first]
    assert (await data(client, FAVORITES, {}, other))["totalCount"] == 0
    hearts = await data(
        client,
        "query($ids: [ID!]!) { favorited(ids: $ids) }",
        {"ids": [first, second, encode_id("Product", 999999)]},
        token,
    )
    assert hearts == [first, second]

    assert (await data(client, REMOVE, {"id": first}, token))["favorite"] is False
    assert (await data(client, REMOVE, {"id": first}, token))["favorite"] is False
    assert (await data(client, FAVORITES, {}, token))["totalCount"] == 1

    missing = await data(client, ADD, {"id": encode_id("Product", 999999)}, token)
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]
    wrong_kind = await data(client, ADD, {"id": encode_id("Order", 1)}, token)
    assert [e["code"] for e in wrong_kind["errors"]] == ["INVALID_ID"]
    assert [e["code"] for e in (await data(client, ADD, {"id": first}, None))["errors"]] == [
        "UNAUTHENTICATED"
    ]


async def test_browsing_history(client: httpx.AsyncClient) -> None:
    _, token = await new_member()
    products = [
        encode_id("Product", p.id) for p in await Product.filter(status="ON_SALE").order_by("id").limit(3)
    ]
    for pid in (products[0], products[1], products[2], products[0]):
        assert (await data(client, RECORD, {"id": pid}, token))["errors"] == []
    seen = await data(client, HISTORY, {}, token)
    assert [e["node"]["product"]["id"] for e in seen["edges"]] == [products[0], products[2], products[1]]
    assert [e["node"]["views"] for e in seen["edges"]] == [2, 1, 1]

    cleared = await data(
        client,
        "mutation($ids: [ID!]) { historyClear(productIds: $ids) { removed } }",
        {"ids": [products[2]]},
        token,
    )
    assert cleared["removed"] == 1
    assert (await data(client, HISTORY, {}, token))["totalCount"] == 2
    assert (await data(client, "mutation { historyClear { removed } }", {}, token))["removed"] == 2
    assert [e["code"] for e in (await data(client, RECORD, {"id": products[0]}, None))["errors"]] == [
        "UNAUTHENTICATED"
    ]
    assert [
        e["code"] for e in (await data(client, RECORD, {"id": encode_id("Product", 999999)}, token))["errors"]
    ] == ["NOT_FOUND"]


async def test_history_keeps_the_newest_products_only(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    member, _ = await new_member()
    monkeypatch.setattr(history, "HISTORY_KEEP", 3)
    ids = [p.id for p in await Product.filter(status="ON_SALE").order_by("id").limit(5)]
    for pid in ids:
        await history.record_view(member.id, pid)
    kept = (
        await BrowsingHistory.filter(member_id=member.id)
        .order_by("-viewed_at", "-id")
        .values_list("product_id", flat=True)
    )
    assert list(kept) == ids[:1:-1]
