"""Staff catalog writes through the GraphQL endpoint: an operator sets up categories, brands and tags, lists a
product with its SKUs, publishes it and changes prices; shoppers see each change at once. Bad input is
refused with a field and a code, and writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from models import (
    Brand,
    Category,
    Product,
    ProductMedia,
    ProductTag,
    Sku,
    SkuSpecValue,
    SpecDimension,
    SpecValue,
    StaffRole,
    Tag,
)
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.catalog import lookups
from services.catalog.search import search_document
from tests.graphql_client import gql

ERRORS = "errors { field message code }"
PRODUCT_FIELDS = """
    id title status totalStock publishedAt
    price { min max }
    specs { name values }
    skus { id price listPrice stock originalPrice tierPrices { minQuantity price } specValues { name value } }
    category { name } brand { name } tags { name } media { url kind sort }
"""

PRODUCT_CREATE = f"""
mutation($input: ProductCreateInput!) {{
  productCreate(input: $input) {{ product {{ {PRODUCT_FIELDS} }} {ERRORS} }}
}}"""
PRODUCT_UPDATE = f"""
mutation($id: ID!, $input: ProductUpdateInput!) {{
  productUpdate(id: $id, input: $input) {{ product {{ {PRODUCT_FIELDS} }} {ERRORS} }}
}}"""
PRODUCT_PUBLISH = f"""
mutation($id: ID!) {{ productPublish(id: $id) {{ product {{ id status publishedAt }} {ERRORS} }} }}"""
PRODUCT_UNPUBLISH = f"""
mutation($id: ID!) {{ productUnpublish(id: $id) {{ product {{ id status }} {ERRORS} }} }}"""
SKU_CREATE = f"""
mutation($input: SkuCreateInput!) {{
  skuCreate(input: $input) {{
    sku {{ id listPrice stock specValues {{ name value }} }}
    product {{ price {{ min max }} totalStock specs {{ name values }} }}
    {ERRORS}
  }}
}}"""
SKU_UPDATE = f"""
mutation($id: ID!, $input: SkuUpdateInput!) {{
  skuUpdate(id: $id, input: $input) {{
    sku {{ id listPrice stock memberPrice originalPrice tierPrices {{ minQuantity price }} }}
    product {{ price {{ min max }} totalStock }}
    {ERRORS}
  }}
}}"""
CATEGORY_CREATE = f"""
mutation($input: CategoryCreateInput!) {{
  categoryCreate(input: $input) {{ category {{ id name level breadcrumbs {{ name }} }} {ERRORS} }}
}}"""
CATEGORY_UPDATE = f"""
mutation($id: ID!, $input: CategoryUpdateInput!) {{
  categoryUpdate(id: $id, input: $input) {{ category {{ id name level breadcrumbs {{ name }} }} {ERRORS} }}
}}"""
CATEGORY_DELETE = f"mutation($id: ID!) {{ categoryDelete(id: $id) {{ deletedId {ERRORS} }} }}"
BRAND_CREATE = f"""
mutation($input: BrandCreateInput!) {{ brandCreate(input: $input) {{ brand {{ id name }} {ERRORS} }} }}"""
BRAND_UPDATE = f"""
mutation($id: ID!, $input: BrandUpdateInput!) {{
  brandUpdate(id: $id, input: $input) {{ brand {{ id name logoUrl }} {ERRORS} }}
}}"""
BRAND_DELETE = f"mutation($id: ID!) {{ brandDelete(id: $id) {{ deletedId {ERRORS} }} }}"
TAG_CREATE = f"""
mutation($input: TagCreateInput!) {{ tagCreate(input: $input) {{ tag {{ id name }} {ERRORS} }} }}"""
TAG_UPDATE = f"""
mutation($id: ID!, $input: TagUpdateInput!) {{
  tagUpdate(id: $id, input: $input) {{ tag {{ id name }} {ERRORS} }}
}}"""
TAG_DELETE = f"mutation($id: ID!) {{ tagDelete(id: $id) {{ deletedId {ERRORS} }} }}"

SHOPPER_PRODUCT = """
query($id: ID!) {
  product(id: $id) {
    id title status totalStock price { min max } skus { id price stock } brand { name } tags { name }
  }
}"""
SHOPPER_SEARCH = """
query($keyword: String!) {
  products(first: 10, filter: {keyword: $keyword}) { edges { node { id title price { min max } } } }
}"""

MODELS = (
    Product,
    Sku,
    SpecDimension,
    SpecValue,
    SkuSpecValue,
    ProductTag,
    ProductMedia,
    Category,
    Brand,
    Tag,
)


def unique(prefix: str) -> str:
    """A name no other test (nor the demo seed) uses: tests share one database."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def row_counts() -> dict[str, int]:
    return {model.__name__: await model.all().count() for model in MODELS}


@dataclass
class Taxonomy:
    root: str
    branch: str
    leaf: str
    leaf_name: str
    brand: str
    brand_name: str
    tags: list[str]
    tag_names: list[str]


@pytest.fixture(scope="module")
def shop_code() -> str:
    return unique("admin-test-")


@pytest.fixture(autouse=True)
def own_shop(shop_code: str) -> Iterator[None]:
    # Staff write into the default shop, which the demo seed owns and its tests inspect: write into ours.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lookups, "SHOP_CODE", shop_code)
        yield


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> str:
    _, token = await create_staff(unique("admin-"), StaffRole.ADMIN)
    return token


async def staff_token(role: StaffRole) -> str:
    _, token = await create_staff(unique(f"{role.value.lower()}-"), role)
    return token


async def mutate(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """The single root field's payload of a mutation."""
    body = await gql(client, query, variables, token=token)
    (payload,) = body["data"].values()
    return payload


async def ok(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> Any:
    payload = await mutate(client, query, variables, token)
    assert payload["errors"] == [], payload["errors"]
    return payload


async def category(client: httpx.AsyncClient, token: str, name: str, parent: str | None = None) -> str:
    payload = await ok(client, CATEGORY_CREATE, {"input": {"name": name, "parentId": parent}}, token)
    return payload["category"]["id"]


@pytest.fixture
async def taxonomy(client: httpx.AsyncClient, admin: str) -> Taxonomy:
    root = await category(client, admin, unique("百货"))
    branch = await category(client, admin, unique("配饰"), root)
    leaf_name = unique("围巾")
    leaf = await category(client, admin, leaf_name, branch)
    brand_name = unique("暖冬")
    brand = (await ok(client, BRAND_CREATE, {"input": {"name": brand_name}}, admin))["brand"]["id"]
    tag_names = [unique("新品"), unique("包邮")]
    tags = [(await ok(client, TAG_CREATE, {"input": {"name": n}}, admin))["tag"]["id"] for n in tag_names]
    return Taxonomy(root, branch, leaf, leaf_name, brand, brand_name, tags, tag_names)


def scarf_input(taxonomy: Taxonomy, title: str) -> dict[str, Any]:
    """A 2 x 2 product: 颜色 红/蓝 by 尺码 S/M, priced 99 to 129 yuan."""
    return {
        "title": title,
        "subtitle": "羊绒 柔软",
        "description": "冬季必备。",
        "categoryId": taxonomy.leaf,
        "brandId": taxonomy.brand,
        "tagIds": taxonomy.tags,
        "media": [
            {"url": "https://img.example.com/1.jpg"},
            {"url": "https://img.example.com/v.mp4", "kind": "VIDEO"},
        ],
        "specs": [{"name": "颜色", "values": ["红", "蓝"]}, {"name": "尺码", "values": ["S", "M"]}],
        "skus": [
            {
                "specValues": [{"name": "颜色", "value": color}, {"name": "尺码", "value": size}],
                "price": price,
                "originalPrice": price + 5000,
                "stock": stock,
                "barcode": f"69{price}",
                "weightGrams": 200,
            }
            for (color, size, price, stock) in (
                ("红", "S", 9900, 10),
                ("红", "M", 10900, 20),
                ("蓝", "S", 11900, 0),
                ("蓝", "M", 12900, 5),
            )
        ],
    }


async def create_scarf(
    client: httpx.AsyncClient, token: str, taxonomy: Taxonomy, title: str
) -> dict[str, Any]:
    return (await ok(client, PRODUCT_CREATE, {"input": scarf_input(taxonomy, title)}, token))["product"]


# --- A shop's day ----------------------------------------------------------------------------------------


async def test_operator_lists_a_product_and_shoppers_find_it(
    client: httpx.AsyncClient, taxonomy: Taxonomy
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    token = unique("scarf")
    title = f"羊绒围巾 {token}"

    product = await create_scarf(client, operator, taxonomy, title)

    assert product["status"] == "DRAFT"
    assert product["publishedAt"] is None
    assert product["price"] == {"min": 9900, "max": 12900}
    assert product["totalStock"] == 35
    assert product["specs"] == [
        {"name": "颜色", "values": ["红", "蓝"]},
        {"name": "尺码", "values": ["S", "M"]},
    ]
    assert [s["specValues"] for s in product["skus"]][1] == [
        {"name": "颜色", "value": "红"},
        {"name": "尺码", "value": "M"},
    ]
    assert product["category"] == {"name": taxonomy.leaf_name}
    assert product["brand"] == {"name": taxonomy.brand_name}
    assert [t["name"] for t in product["tags"]] == taxonomy.tag_names
    assert [(m["kind"], m["sort"]) for m in product["media"]] == [("IMAGE", 0), ("VIDEO", 1)]

    # A draft is for staff only.
    assert (await gql(client, SHOPPER_PRODUCT, {"id": product["id"]}))["data"]["product"] is None
    assert (await gql(client, SHOPPER_SEARCH, {"keyword": token}))["data"]["products"]["edges"] == []

    published = await ok(client, PRODUCT_PUBLISH, {"id": product["id"]}, operator)
    assert published["product"]["status"] == "ON_SALE"
    assert published["product"]["publishedAt"] is not None

    found = (await gql(client, SHOPPER_SEARCH, {"keyword": token}))["data"]["products"]["edges"]
    assert [e["node"]["id"] for e in found] == [product["id"]]
    # The category, brand and tags are searchable too, as in the demo catalog.
    by_leaf = (await gql(client, SHOPPER_SEARCH, {"keyword": taxonomy.leaf_name}))["data"]["products"][
        "edges"
    ]
    assert [e["node"]["id"] for e in by_leaf] == [product["id"]]
    seen = (await gql(client, SHOPPER_PRODUCT, {"id": product["id"]}))["data"]["product"]
    assert seen["status"] == "ON_SALE"
    assert seen["price"] == {"min": 9900, "max": 12900}
    assert seen["totalStock"] == 35

    row = await Product.get(id=decode_id(product["id"], "Product"))
    root = await Category.get(id=decode_id(taxonomy.root, "Category"))
    branch = await Category.get(id=decode_id(taxonomy.branch, "Category"))
    leaf = await Category.get(id=decode_id(taxonomy.leaf, "Category"))
    assert (leaf.level, leaf.path) == (3, f"{root.id}/{branch.id}")
    assert (row.min_price, row.max_price, row.total_stock) == (9900, 12900, 35)
    assert row.search_text == search_document(
        title, "羊绒 柔软", leaf.name, branch.name, root.name, taxonomy.brand_name, *taxonomy.tag_names
    )


async def test_price_and_stock_changes_reach_shoppers_past_the_response_cache(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    product = await create_scarf(client, admin, taxonomy, unique("围巾 "))
    await ok(client, PRODUCT_PUBLISH, {"id": product["id"]}, admin)
    for _ in range(2):  # the second answer comes from the cache
        seen = (await gql(client, SHOPPER_PRODUCT, {"id": product["id"]}))["data"]["product"]
        assert seen["price"] == {"min": 9900, "max": 12900}
    cheapest = product["skus"][0]["id"]

    payload = await ok(client, SKU_UPDATE, {"id": cheapest, "input": {"price": 5900, "stock": 3}}, admin)

    assert payload["sku"]["listPrice"] == 5900
    assert payload["sku"]["stock"] == 3
    assert payload["product"] == {"price": {"min": 5900, "max": 12900}, "totalStock": 28}
    seen = (await gql(client, SHOPPER_PRODUCT, {"id": product["id"]}))["data"]["product"]
    assert seen["price"] == {"min": 5900, "max": 12900}
    assert seen["totalStock"] == 28
    assert {"id": cheapest, "price": 5900, "stock": 3} in seen["skus"]
    row = await Product.get(id=decode_id(product["id"], "Product"))
    assert (row.min_price, row.max_price, row.total_stock) == (5900, 12900, 28)


async def test_sku_update_sets_member_tier_and_original_prices_and_clears_them(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    product = await create_scarf(client, admin, taxonomy, unique("围巾 "))
    sku = product["skus"][3]["id"]
    tiers = [{"minQuantity": 2, "price": 12000}, {"minQuantity": 5, "price": 11000}]

    payload = await ok(
        client,
        SKU_UPDATE,
        {
            "id": sku,
            "input": {"memberPrice": 12500, "tierPrices": tiers, "originalPrice": 100, "barcode": "x"},
        },
        admin,
    )
    assert payload["sku"]["memberPrice"] == 12500
    assert payload["sku"]["tierPrices"] == tiers
    assert payload["sku"]["originalPrice"] == 100  # any non-negative 划线价 is accepted

    payload = await ok(
        client, SKU_UPDATE, {"id": sku, "input": {"memberPrice": None, "tierPrices": []}}, admin
    )
    assert payload["sku"]["memberPrice"] is None
    assert payload["sku"]["tierPrices"] == []
    assert payload["sku"]["originalPrice"] == 100  # omitted: unchanged


async def test_single_variant_product_gets_the_default_spec(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    data = {"title": unique("围巾 "), "categoryId": taxonomy.leaf, "skus": [{"price": 3900, "stock": 8}]}

    product = (await ok(client, PRODUCT_CREATE, {"input": data}, admin))["product"]

    assert product["specs"] == [{"name": "规格", "values": ["默认"]}]
    assert product["skus"][0]["specValues"] == [{"name": "规格", "value": "默认"}]
    assert product["price"] == {"min": 3900, "max": 3900}

    # The same when the SKU comes later.
    bare = (await ok(client, PRODUCT_CREATE, {"input": {**data, "skus": []}}, admin))["product"]
    assert bare["specs"] == []
    sku = await ok(client, SKU_CREATE, {"input": {"productId": bare["id"], "price": 3900}}, admin)
    assert sku["sku"]["specValues"] == [{"name": "规格", "value": "默认"}]
    assert sku["product"]["specs"] == [{"name": "规格", "values": ["默认"]}]


async def test_sku_create_adds_a_combination_and_new_spec_values(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    data = scarf_input(taxonomy, unique("围巾 "))
    data["skus"] = data["skus"][:1]
    product = (await ok(client, PRODUCT_CREATE, {"input": data}, admin))["product"]
    green_m = [{"name": "尺码", "value": "M"}, {"name": "颜色", "value": "绿"}]

    payload = await ok(
        client,
        SKU_CREATE,
        {"input": {"productId": product["id"], "specValues": green_m, "price": 19900, "stock": 4}},
        admin,
    )

    assert payload["sku"]["specValues"] == [{"name": "颜色", "value": "绿"}, {"name": "尺码", "value": "M"}]
    assert payload["product"]["price"] == {"min": 9900, "max": 19900}
    assert payload["product"]["totalStock"] == 14
    assert payload["product"]["specs"] == [
        {"name": "颜色", "values": ["红", "蓝", "绿"]},
        {"name": "尺码", "values": ["S", "M"]},
    ]


async def test_publish_needs_a_sku_and_unpublish_takes_the_product_off_listings(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    token = unique("scarf")
    empty = {
        "title": f"围巾 {token}",
        "categoryId": taxonomy.leaf,
        "specs": [{"name": "颜色", "values": ["红"]}],
    }
    product = (await ok(client, PRODUCT_CREATE, {"input": empty}, admin))["product"]

    refused = await mutate(client, PRODUCT_PUBLISH, {"id": product["id"]}, admin)
    assert refused["product"] is None
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("id", "CONFLICT")]
    not_on_sale = await mutate(client, PRODUCT_UNPUBLISH, {"id": product["id"]}, admin)
    assert [(e["field"], e["code"]) for e in not_on_sale["errors"]] == [("id", "CONFLICT")]

    sku = {"productId": product["id"], "specValues": [{"name": "颜色", "value": "红"}], "price": 100}
    await ok(client, SKU_CREATE, {"input": sku}, admin)
    await ok(client, PRODUCT_PUBLISH, {"id": product["id"]}, admin)
    assert len((await gql(client, SHOPPER_SEARCH, {"keyword": token}))["data"]["products"]["edges"]) == 1

    payload = await ok(client, PRODUCT_UNPUBLISH, {"id": product["id"]}, admin)

    assert payload["product"]["status"] == "OFF_SHELF"
    assert (await gql(client, SHOPPER_SEARCH, {"keyword": token}))["data"]["products"]["edges"] == []
    # An off-shelf product keeps its page (已下架).
    seen = (await gql(client, SHOPPER_PRODUCT, {"id": product["id"]}))["data"]["product"]
    assert seen["status"] == "OFF_SHELF"


async def test_product_update_changes_names_tags_and_brand_and_search_follows(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    product = await create_scarf(client, admin, taxonomy, unique("围巾 "))
    await ok(client, PRODUCT_PUBLISH, {"id": product["id"]}, admin)
    token = unique("renamed")

    payload = await ok(
        client,
        PRODUCT_UPDATE,
        {
            "id": product["id"],
            "input": {"title": f"披肩 {token}", "tagIds": taxonomy.tags[1:], "brandId": None},
        },
        admin,
    )

    assert payload["product"]["title"] == f"披肩 {token}"
    assert payload["product"]["brand"] is None
    assert [t["name"] for t in payload["product"]["tags"]] == taxonomy.tag_names[1:]
    assert payload["product"]["price"] == {"min": 9900, "max": 12900}  # untouched
    found = (await gql(client, SHOPPER_SEARCH, {"keyword": token}))["data"]["products"]["edges"]
    assert [e["node"]["id"] for e in found] == [product["id"]]
    assert (await gql(client, SHOPPER_SEARCH, {"keyword": taxonomy.brand_name}))["data"]["products"][
        "edges"
    ] == []


# --- Categories, brands and tags -------------------------------------------------------------------------


async def test_category_tree_has_three_levels_and_unique_sibling_names(
    client: httpx.AsyncClient, admin: str
) -> None:
    root_name = unique("家居")
    root = await category(client, admin, root_name)
    branch = await category(client, admin, "厨具", root)
    leaf_payload = await ok(client, CATEGORY_CREATE, {"input": {"name": "锅", "parentId": branch}}, admin)
    leaf = leaf_payload["category"]
    assert leaf["level"] == 3
    assert [c["name"] for c in leaf["breadcrumbs"]] == [root_name, "厨具", "锅"]
    before = await row_counts()

    fourth = await mutate(
        client, CATEGORY_CREATE, {"input": {"name": "平底锅", "parentId": leaf["id"]}}, admin
    )
    same_name = await mutate(client, CATEGORY_CREATE, {"input": {"name": "厨具", "parentId": root}}, admin)
    same_root = await mutate(client, CATEGORY_CREATE, {"input": {"name": root_name}}, admin)
    has_children = await mutate(client, CATEGORY_DELETE, {"id": branch}, admin)

    assert fourth["category"] is None
    assert [(e["field"], e["code"]) for e in fourth["errors"]] == [("input.parentId", "BAD_USER_INPUT")]
    assert [(e["field"], e["code"]) for e in same_name["errors"]] == [("input.name", "CONFLICT")]
    assert [(e["field"], e["code"]) for e in same_root["errors"]] == [("input.name", "CONFLICT")]
    assert [(e["field"], e["code"]) for e in has_children["errors"]] == [("id", "CONFLICT")]
    assert await row_counts() == before

    # The same name under another parent is fine; an empty leaf can go.
    other = await category(client, admin, "锅", await category(client, admin, "餐具", root))
    deleted = await ok(client, CATEGORY_DELETE, {"id": other}, admin)
    assert deleted["deletedId"] == other
    assert not await Category.exists(id=decode_id(other, "Category"))


async def test_category_with_products_cannot_be_deleted_and_a_rename_reaches_search(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    product = await create_scarf(client, admin, taxonomy, unique("围巾 "))
    await ok(client, PRODUCT_PUBLISH, {"id": product["id"]}, admin)
    before = await row_counts()

    refused = await mutate(client, CATEGORY_DELETE, {"id": taxonomy.leaf}, admin)

    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("id", "CONFLICT")]
    assert await row_counts() == before

    new_name = unique("丝巾")
    renamed = await ok(client, CATEGORY_UPDATE, {"id": taxonomy.branch, "input": {"name": new_name}}, admin)
    assert renamed["category"]["name"] == new_name
    found = (await gql(client, SHOPPER_SEARCH, {"keyword": new_name}))["data"]["products"]["edges"]
    assert [e["node"]["id"] for e in found] == [product["id"]]


async def test_category_moves_only_within_its_level_and_paths_follow(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    other_root = await category(client, admin, unique("服饰"))

    moved = await ok(
        client, CATEGORY_UPDATE, {"id": taxonomy.branch, "input": {"parentId": other_root}}, admin
    )
    up = await mutate(
        client, CATEGORY_UPDATE, {"id": taxonomy.leaf, "input": {"parentId": other_root}}, admin
    )

    assert moved["category"]["level"] == 2
    assert [(e["field"], e["code"]) for e in up["errors"]] == [("input.parentId", "BAD_USER_INPUT")]
    leaf = await Category.get(id=decode_id(taxonomy.leaf, "Category"))
    assert leaf.path == f"{decode_id(other_root, 'Category')}/{decode_id(taxonomy.branch, 'Category')}"


async def test_brand_and_tag_names_are_unique_and_renames_and_deletes_reach_products(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    product = await create_scarf(client, admin, taxonomy, unique("围巾 "))
    await ok(client, PRODUCT_PUBLISH, {"id": product["id"]}, admin)
    before = await row_counts()

    brand_twice = await mutate(client, BRAND_CREATE, {"input": {"name": taxonomy.brand_name}}, admin)
    tag_twice = await mutate(client, TAG_CREATE, {"input": {"name": f" {taxonomy.tag_names[0]} "}}, admin)
    blank = await mutate(client, TAG_CREATE, {"input": {"name": "  "}}, admin)

    assert [(e["field"], e["code"]) for e in brand_twice["errors"]] == [("input.name", "CONFLICT")]
    assert [(e["field"], e["code"]) for e in tag_twice["errors"]] == [("input.name", "CONFLICT")]
    assert [(e["field"], e["code"]) for e in blank["errors"]] == [("input.name", "BAD_USER_INPUT")]
    assert await row_counts() == before

    brand_name = unique("北境")
    await ok(client, BRAND_UPDATE, {"id": taxonomy.brand, "input": {"name": brand_name}}, admin)
    await ok(client, TAG_UPDATE, {"id": taxonomy.tags[0], "input": {"name": unique("热卖")}}, admin)
    found = (await gql(client, SHOPPER_SEARCH, {"keyword": brand_name}))["data"]["products"]["edges"]
    assert [e["node"]["id"] for e in found] == [product["id"]]

    await ok(client, BRAND_DELETE, {"id": taxonomy.brand}, admin)
    await ok(client, TAG_DELETE, {"id": taxonomy.tags[0]}, admin)
    seen = (await gql(client, SHOPPER_PRODUCT, {"id": product["id"]}))["data"]["product"]
    assert seen["brand"] is None
    assert [t["name"] for t in seen["tags"]] == taxonomy.tag_names[1:]
    assert (await gql(client, SHOPPER_SEARCH, {"keyword": brand_name}))["data"]["products"]["edges"] == []


# --- Refusals --------------------------------------------------------------------------------------------

MISSING_CATEGORY = encode_id("Category", 2_000_000_000)


def _set_sku(index: int, **fields: Any) -> Any:
    def change(data: dict[str, Any], taxonomy: Taxonomy) -> None:
        data["skus"][index].update(fields)

    return change


def _set(**fields: Any) -> Any:
    def change(data: dict[str, Any], taxonomy: Taxonomy) -> None:
        data.update({k: v(taxonomy) if callable(v) else v for k, v in fields.items()})

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(_set_sku(1, price=-1), [("input.skus[1].price", "BAD_USER_INPUT")], id="negative-price"),
        pytest.param(_set_sku(0, stock=-5), [("input.skus[0].stock", "BAD_USER_INPUT")], id="negative-stock"),
        pytest.param(
            _set_sku(2, price=-1, stock=-1),
            [("input.skus[2].price", "BAD_USER_INPUT"), ("input.skus[2].stock", "BAD_USER_INPUT")],
            id="several-problems-at-once",
        ),
        pytest.param(
            _set_sku(0, tierPrices=[{"minQuantity": 2, "price": 9900}]),
            [("input.skus[0].tierPrices[0].price", "BAD_USER_INPUT")],
            id="tier-price-not-below-price",
        ),
        pytest.param(
            _set_sku(0, tierPrices=[{"minQuantity": 5, "price": 9000}, {"minQuantity": 3, "price": 8000}]),
            [("input.skus[0].tierPrices[1].minQuantity", "BAD_USER_INPUT")],
            id="tier-quantities-not-ascending",
        ),
        pytest.param(
            _set_sku(0, tierPrices=[{"minQuantity": 1, "price": 9000}]),
            [("input.skus[0].tierPrices[0].minQuantity", "BAD_USER_INPUT")],
            id="tier-quantity-below-two",
        ),
        pytest.param(
            _set(categoryId=MISSING_CATEGORY), [("input.categoryId", "NOT_FOUND")], id="unknown-category"
        ),
        pytest.param(
            _set(categoryId=lambda t: t.branch),
            [("input.categoryId", "BAD_USER_INPUT")],
            id="non-leaf-category",
        ),
        pytest.param(
            _set(brandId=encode_id("Brand", 2_000_000_000)),
            [("input.brandId", "NOT_FOUND")],
            id="unknown-brand",
        ),
        pytest.param(
            _set(tagIds=lambda t: [t.tags[0], encode_id("Tag", 2_000_000_000)]),
            [("input.tagIds[1]", "NOT_FOUND")],
            id="unknown-tag",
        ),
        pytest.param(_set(categoryId="not-an-id"), [("input.categoryId", "INVALID_ID")], id="malformed-id"),
        pytest.param(
            _set(categoryId=lambda t: t.brand), [("input.categoryId", "INVALID_ID")], id="id-of-another-type"
        ),
        pytest.param(_set(title="  "), [("input.title", "BAD_USER_INPUT")], id="blank-title"),
        pytest.param(_set(title="长" * 121), [("input.title", "BAD_USER_INPUT")], id="title-too-long"),
        pytest.param(
            _set_sku(1, specValues=[{"name": "颜色", "value": "红"}, {"name": "尺码", "value": "S"}]),
            [("input.skus[1].specValues", "CONFLICT")],
            id="repeated-combination",
        ),
        pytest.param(
            _set_sku(0, specValues=[{"name": "颜色", "value": "红"}]),
            [("input.skus[0].specValues", "BAD_USER_INPUT")],
            id="sku-missing-a-spec",
        ),
        pytest.param(
            _set_sku(
                0,
                specValues=[
                    {"name": "颜色", "value": "红"},
                    {"name": "尺码", "value": "S"},
                    {"name": "材质", "value": "羊绒"},
                ],
            ),
            [("input.skus[0].specValues[2].name", "BAD_USER_INPUT")],
            id="sku-with-an-undeclared-spec",
        ),
        pytest.param(
            _set_sku(3, specValues=[{"name": "颜色", "value": "黑"}, {"name": "尺码", "value": "M"}]),
            [("input.skus[3].specValues[0].value", "BAD_USER_INPUT")],
            id="sku-with-an-undeclared-value",
        ),
        pytest.param(
            _set(
                specs=[{"name": "颜色", "values": ["红", "蓝", "红"]}, {"name": "尺码", "values": ["S", "M"]}]
            ),
            [("input.specs[0].values[2]", "BAD_USER_INPUT")],
            id="repeated-spec-value",
        ),
    ],
)
async def test_bad_product_input_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy, change: Any, expected: list[tuple[str, str]]
) -> None:
    data = scarf_input(taxonomy, unique("围巾 "))
    change(data, taxonomy)
    before = await row_counts()

    payload = await mutate(client, PRODUCT_CREATE, {"input": data}, admin)

    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == expected
    assert all(e["message"] for e in payload["errors"])
    assert await row_counts() == before


async def test_bad_sku_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, admin: str, taxonomy: Taxonomy
) -> None:
    product = await create_scarf(client, admin, taxonomy, unique("围巾 "))
    sku = product["skus"][0]["id"]
    await ok(
        client, SKU_UPDATE, {"id": sku, "input": {"tierPrices": [{"minQuantity": 3, "price": 9000}]}}, admin
    )
    pid = product["id"]
    before = await row_counts()
    product_row = await Product.get(id=decode_id(pid, "Product"))
    sku_row = await Sku.get(id=decode_id(sku, "Sku"))

    cases = [
        (SKU_UPDATE, {"id": sku, "input": {"stock": -1}}, [("input.stock", "BAD_USER_INPUT")]),
        (SKU_UPDATE, {"id": sku, "input": {"price": 9000, "stock": 1}}, [("input.price", "BAD_USER_INPUT")]),
        (SKU_UPDATE, {"id": sku, "input": {"memberPrice": -1}}, [("input.memberPrice", "BAD_USER_INPUT")]),
        (SKU_UPDATE, {"id": encode_id("Sku", 2_000_000_000), "input": {"stock": 1}}, [("id", "NOT_FOUND")]),
        (SKU_UPDATE, {"id": pid, "input": {"stock": 1}}, [("id", "INVALID_ID")]),
        (
            SKU_CREATE,
            {"input": {"productId": pid, "price": 1, "specValues": [{"name": "颜色", "value": "红"}]}},
            [("input.specValues", "BAD_USER_INPUT")],
        ),
        (
            SKU_CREATE,
            {
                "input": {
                    "productId": pid,
                    "price": 1,
                    "specValues": [{"name": "颜色", "value": "蓝"}, {"name": "尺码", "value": "M"}],
                }
            },
            [("input.specValues", "CONFLICT")],
        ),
        (
            SKU_CREATE,
            {
                "input": {
                    "productId": pid,
                    "price": 1,
                    "specValues": [
                        {"name": "颜色", "value": "黑"},
                        {"name": "尺码", "value": "M"},
                        {"name": "材质", "value": "棉"},
                    ],
                }
            },
            [("input.specValues[2].name", "BAD_USER_INPUT")],
        ),
        (
            SKU_CREATE,
            {"input": {"productId": MISSING_CATEGORY, "price": 1}},
            [("input.productId", "INVALID_ID")],
        ),
    ]
    for query, variables, expected in cases:
        payload = await mutate(client, query, variables, admin)
        assert [(e["field"], e["code"]) for e in payload["errors"]] == expected, variables

    assert await row_counts() == before
    assert await Product.get(id=product_row.id) == product_row
    after = await Sku.get(id=sku_row.id)
    assert (after.price, after.stock, after.member_price) == (
        sku_row.price,
        sku_row.stock,
        sku_row.member_price,
    )


# --- Permissions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "code"),
    [
        (None, "UNAUTHENTICATED"),
        (StaffRole.WAREHOUSE, "FORBIDDEN"),
        (StaffRole.CUSTOMER_SERVICE, "FORBIDDEN"),
    ],
)
async def test_only_staff_with_catalog_write_may_write(
    client: httpx.AsyncClient, taxonomy: Taxonomy, role: StaffRole | None, code: str
) -> None:
    token = await staff_token(role) if role else None
    attempts = [
        (PRODUCT_CREATE, {"input": scarf_input(taxonomy, unique("围巾 "))}),
        (SKU_UPDATE, {"id": encode_id("Sku", 1), "input": {"stock": 0}}),
        (PRODUCT_PUBLISH, {"id": encode_id("Product", 1)}),
        (CATEGORY_CREATE, {"input": {"name": unique("类")}}),
        (CATEGORY_DELETE, {"id": taxonomy.leaf}),
        (BRAND_CREATE, {"input": {"name": unique("牌")}}),
        (TAG_DELETE, {"id": taxonomy.tags[0]}),
    ]
    before = await row_counts()

    for query, variables in attempts:
        payload = await mutate(client, query, variables, token)
        assert [e["code"] for e in payload["errors"]] == [code], query

    assert await row_counts() == before
