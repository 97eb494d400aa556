"""Nobody sees or changes what isn't theirs.

For every member-owned type, member B reading member A's object (in B's own lists and through `node(id:)`) gets
nothing, and B changing it gets NOT_FOUND, exactly as for an object that does not exist, and changes nothing.
A forged, tampered, expired or revoked token is refused with UNAUTHENTICATED before anything runs; a member
calling a staff mutation gets FORBIDDEN.

The tests are tables: a new member-owned type (cart, order) adds a row to OWNED, a new staff mutation a row
to STAFF_MUTATIONS.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

from infra.clock import now, set_clock
from models import (
    DEFAULT_SHOP_CODE,
    Address,
    Brand,
    CartItem,
    Category,
    Member,
    Order,
    PointsEntry,
    PointsReason,
    Product,
    Shop,
    Sku,
    Tag,
)
from schema.node import encode_id
from schema.root import schema
from services.members.tokens import ACCESS_TTL, issue_tokens, revoke_session
from tests.graphql_client import gql

ERRORS = "errors { field message code }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
MISSING_PK = 2**31 - 1


async def new_member() -> tuple[Member, str]:
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    return member, (await issue_tokens(member)).access_token


def _is_node(type_name: str) -> bool:
    found = schema.get_type_by_name(type_name)
    return found is not None and any(i.name == "Node" for i in getattr(found, "interfaces", ()))


# --- What members own ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A mutation of one object by its global ID (`$id`), as member B would try it on A's object."""

    name: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Owned:
    """A member-owned type: how to make one, everything stored of a member's, and how a member lists theirs."""

    type_name: str
    create: Callable[[Member], Awaitable[int]]
    stored: Callable[[Member], Awaitable[list[dict[str, Any]]]]
    listing: str
    listed_ids: Callable[[dict[str, Any]], list[str]]
    changes: tuple[Change, ...] = ()


async def _create_address(member: Member) -> int:
    address = await Address.create(
        member=member,
        name="林晓",
        phone="13800138000",
        province="广东省",
        city="深圳市",
        district="南山区",
        detail="科技园南路 88 号",
        is_default=True,
    )
    return address.id


async def _stored_addresses(member: Member) -> list[dict[str, Any]]:
    return list(await Address.filter(member_id=member.id).order_by("id").values())


async def _create_points_entry(member: Member) -> int:
    entry = await PointsEntry.create(
        member=member,
        delta=10,
        balance_after=10,
        reason=PointsReason.SIGN_IN,
        idempotency_key=f"privacy-{secrets.token_hex(6)}",
    )
    return entry.id


async def _stored_points(member: Member) -> list[dict[str, Any]]:
    entries = list(await PointsEntry.filter(member_id=member.id).order_by("id").values())
    balance = await Member.filter(id=member.id).first().values_list("points", flat=True)
    return [*entries, {"balance": balance}]


ADDRESS = Owned(
    type_name="Address",
    create=_create_address,
    stored=_stored_addresses,
    listing="{ myAddresses { id } }",
    listed_ids=lambda data: [a["id"] for a in data["myAddresses"]],
    changes=(
        Change(
            "update",
            f"""mutation($id: ID!, $input: AddressUpdateInput!) {{
              addressUpdate(id: $id, input: $input) {{ address {{ id }} {ERRORS} }} }}""",
            {"input": {"name": "B", "phone": "13900000000", "isDefault": True}},
        ),
        Change("delete", f"mutation($id: ID!) {{ addressDelete(id: $id) {{ deletedId {ERRORS} }} }}"),
        Change(
            "set-default",
            f"mutation($id: ID!) {{ addressSetDefault(id: $id) {{ address {{ id }} {ERRORS} }} }}",
        ),
    ),
)
POINTS_ENTRY = Owned(
    type_name="PointsEntry",
    create=_create_points_entry,
    stored=_stored_points,
    listing="{ pointsHistory(first: 100) { edges { node { id } } } }",
    listed_ids=lambda data: [e["node"]["id"] for e in data["pointsHistory"]["edges"]],
)


async def _own_profile(member: Member) -> int:
    return member.id


async def _stored_profile(member: Member) -> list[dict[str, Any]]:
    return list(await Member.filter(id=member.id).values())


async def _create_order(member: Member) -> int:
    shop, _ = await Shop.get_or_create(code=DEFAULT_SHOP_CODE, defaults={"name": "链猫优选"})
    order = await Order.create(
        shop=shop,
        member=member,
        number=f"P{secrets.token_hex(8)}",
        items_total=12900,
        payable=12900,
        idempotency_key=secrets.token_hex(8),
        pay_deadline=now() + timedelta(minutes=30),
    )
    return order.id


async def _stored_orders(member: Member) -> list[dict[str, Any]]:
    return list(await Order.filter(member_id=member.id).order_by("id").values())


ORDER = Owned(
    type_name="Order",
    create=_create_order,
    stored=_stored_orders,
    listing="{ myOrders(first: 50) { edges { node { id } } } }",
    listed_ids=lambda data: [e["node"]["id"] for e in data["myOrders"]["edges"]],
    changes=(
        Change("cancel", f"mutation($id: ID!) {{ orderCancel(id: $id) {{ order {{ id }} {ERRORS} }} }}"),
        Change(
            "confirm-receipt",
            f"mutation($id: ID!) {{ orderConfirmReceipt(id: $id) {{ order {{ id }} {ERRORS} }} }}",
        ),
    ),
)

PROFILE = Owned(
    type_name="Member",
    create=_own_profile,
    stored=_stored_profile,
    listing="{ me { id } }",
    listed_ids=lambda data: [data["me"]["id"]] if data["me"] else [],
)

OWNED = [ADDRESS, POINTS_ENTRY, PROFILE, ORDER]
# Rows whose type is still being made reachable through node(id:): skipped until it is, then checked like
# the rest. Take a type out of here once it is a Node.
PENDING_NODES: set[str] = set()


def _marks(owned: Owned) -> list[pytest.MarkDecorator]:
    if owned.type_name in PENDING_NODES and not _is_node(owned.type_name):
        return [pytest.mark.skip(reason=f"{owned.type_name} is not a Node yet: node(id:) cannot reach it")]
    return []


OWNED_ROWS = [pytest.param(o, id=o.type_name, marks=_marks(o)) for o in OWNED]
CHANGE_ROWS = [
    pytest.param(o, c, id=f"{o.type_name}-{c.name}", marks=_marks(o)) for o in OWNED for c in o.changes
]


@pytest.mark.parametrize("owned", OWNED_ROWS)
async def test_another_member_cannot_see_it(client: httpx.AsyncClient, owned: Owned) -> None:
    alice, alice_token = await new_member()
    _, bob_token = await new_member()
    global_id = encode_id(owned.type_name, await owned.create(alice))

    # The owner reaches it both ways: the checks below would prove nothing otherwise.
    assert (await gql(client, NODE, {"id": global_id}, alice_token))["data"]["node"] == {"id": global_id}
    assert global_id in owned.listed_ids((await gql(client, owned.listing, token=alice_token))["data"])

    assert (await gql(client, NODE, {"id": global_id}, bob_token))["data"]["node"] is None
    assert global_id not in owned.listed_ids((await gql(client, owned.listing, token=bob_token))["data"])
    assert (await gql(client, NODE, {"id": global_id}))["data"]["node"] is None


@pytest.mark.parametrize(("owned", "change"), CHANGE_ROWS)
async def test_another_member_cannot_change_it(
    client: httpx.AsyncClient, owned: Owned, change: Change
) -> None:
    alice, _ = await new_member()
    bob, bob_token = await new_member()
    global_id = encode_id(owned.type_name, await owned.create(alice))
    await owned.create(bob)  # Bob has one of his own, so "not found" is not just "you have none"
    before = await owned.stored(alice), await owned.stored(bob)

    def attempt(target: str) -> Awaitable[dict[str, Any]]:
        return gql(client, change.query, {**change.variables, "id": target}, bob_token)

    (answer,) = (await attempt(global_id))["data"].values()
    (missing,) = (await attempt(encode_id(owned.type_name, MISSING_PK)))["data"].values()
    assert [(e["field"], e["code"]) for e in answer["errors"]] == [("id", "NOT_FOUND")]
    assert answer == missing, "another member's object must look exactly like one that does not exist"
    assert (await owned.stored(alice), await owned.stored(bob)) == before


# --- Tokens ----------------------------------------------------------------------------------------------


async def _forged(member: Member) -> str:
    claims = {"sub": str(member.id), "sid": 1, "aud": "lianmall:member", "exp": 9_999_999_999}
    return jwt.encode(claims, "not-the-server-secret-but-as-long-as-one", algorithm="HS256")


async def _tampered(member: Member) -> str:
    token = (await issue_tokens(member)).access_token
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[::-1]}"


async def _expired(member: Member) -> str:
    past = now() - ACCESS_TTL - timedelta(minutes=1)
    set_clock(lambda: past)
    try:
        return (await issue_tokens(member)).access_token
    finally:
        set_clock(None)


async def _revoked(member: Member) -> str:
    token = (await issue_tokens(member)).access_token
    claims = jwt.decode(token, options={"verify_signature": False})
    await revoke_session(int(claims["sid"]))
    return token


BAD_TOKENS = [
    pytest.param(_forged, id="forged"),
    pytest.param(_tampered, id="bad-signature"),
    pytest.param(_expired, id="expired"),
    pytest.param(_revoked, id="revoked"),
]
ADDRESS_INPUT = {
    "name": "林晓",
    "phone": "13800138000",
    "province": "广东省",
    "city": "深圳市",
    "district": "南山区",
    "detail": "科技园南路 88 号",
}
REQUESTS_WITH_A_BAD_TOKEN = [
    ("{ myAddresses { id } }", {}),
    (NODE, {"id": encode_id("Address", 1)}),
    (
        f"mutation($input: AddressInput!) {{ addressCreate(input: $input) {{ address {{ id }} {ERRORS} }} }}",
        {"input": ADDRESS_INPUT},
    ),
    ("{ products(first: 1) { totalCount } }", {}),
]


@pytest.mark.parametrize("make_token", BAD_TOKENS)
async def test_a_bad_token_is_unauthenticated(
    client: httpx.AsyncClient, make_token: Callable[[Member], Awaitable[str]]
) -> None:
    member, _ = await new_member()
    token = await make_token(member)
    for query, variables in REQUESTS_WITH_A_BAD_TOKEN:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 401, (query, response.text)
        body = response.json()
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert await Address.filter(member_id=member.id).count() == 0


# --- Staff mutations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffMutation:
    """A staff mutation and its input given a unique name, with how to tell whether it wrote anything."""

    query: str
    input: Callable[[str], dict[str, Any]]
    wrote_anything: Callable[[str], Awaitable[bool]]


STAFF_MUTATIONS = [
    pytest.param(
        StaffMutation(
            f"mutation($input: TagCreateInput!) {{ tagCreate(input: $input) {{ tag {{ id }} {ERRORS} }} }}",
            lambda name: {"name": name},
            lambda name: Tag.exists(name=name),
        ),
        id="tagCreate",
    ),
    pytest.param(
        StaffMutation(
            f"mutation($input: BrandCreateInput!) {{ brandCreate(input: $input) {{ brand {{ id }} {ERRORS} }} }}",
            lambda name: {"name": name},
            lambda name: Brand.exists(name=name),
        ),
        id="brandCreate",
    ),
    pytest.param(
        StaffMutation(
            f"""mutation($input: CategoryCreateInput!) {{
              categoryCreate(input: $input) {{ category {{ id }} {ERRORS} }} }}""",
            lambda name: {"name": name},
            lambda name: Category.exists(name=name),
        ),
        id="categoryCreate",
    ),
    pytest.param(
        StaffMutation(
            f"""mutation($input: ProductCreateInput!) {{
              productCreate(input: $input) {{ product {{ id }} {ERRORS} }} }}""",
            lambda name: {"title": name, "categoryId": encode_id("Category", 1), "skus": [{"price": 100}]},
            lambda name: Product.exists(title=name),
        ),
        id="productCreate",
    ),
]


@pytest.mark.parametrize("mutation", STAFF_MUTATIONS)
async def test_a_member_calling_a_staff_mutation_is_forbidden(
    client: httpx.AsyncClient, mutation: StaffMutation
) -> None:
    _, token = await new_member()
    name = f"privacy-{secrets.token_hex(4)}"
    (payload,) = (await gql(client, mutation.query, {"input": mutation.input(name)}, token))["data"].values()
    assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"], payload
    assert not await mutation.wrote_anything(name)


async def test_a_cart_is_only_its_members(seeded: None, client: httpx.AsyncClient) -> None:
    # Cart lines have no IDs of their own: every cart operation acts on the viewer's cart. Check that holds.
    alice, alice_token = await new_member()
    _, bob_token = await new_member()
    sku = await Sku.filter(product__status="ON_SALE", stock__gte=5).order_by("id").first()
    assert sku is not None
    sku_id = encode_id("Sku", sku.id)
    added = await gql(
        client,
        f"mutation($s: ID!) {{ cartAddItem(skuId: $s, quantity: 2) {{ cart {{ lines {{ quantity }} }} {ERRORS} }} }}",
        {"s": sku_id},
        alice_token,
    )
    assert added["data"]["cartAddItem"]["errors"] == []
    before = list(await CartItem.filter(member_id=alice.id).values("sku_id", "quantity", "selected"))

    bob_cart = await gql(client, "{ cart { lines { quantity } } }", token=bob_token)
    assert bob_cart["data"]["cart"]["lines"] == []
    for mutation in (
        f"mutation($s: ID!) {{ cartRemoveItems(skuIds: [$s]) {{ {ERRORS} }} }}",
        f"mutation($s: ID!) {{ cartSelect(skuIds: [$s], selected: false) {{ {ERRORS} }} }}",
        f"mutation($s: ID!) {{ cartUpdateItem(skuId: $s, quantity: 5) {{ {ERRORS} }} }}",
    ):
        await gql(client, mutation, {"s": sku_id}, bob_token, expect_errors=True)
    assert list(await CartItem.filter(member_id=alice.id).values("sku_id", "quantity", "selected")) == before
