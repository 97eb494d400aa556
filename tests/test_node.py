"""Every object with an ID comes back through `node(id:)` and `nodes(ids:)`, to exactly those who may see it
through its own field, and many IDs cost a query per type, not per ID.

The introspected schema decides what is checked: an object type with `id: ID!` that is not a Node, a Node
without a registered resolver, or a Node without a row in SAMPLES fails here. A new type adds one SAMPLES row
(how to make one, and who sees it).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now
from infra.query_counter import count_queries
from models import (
    DEFAULT_SHOP_CODE,
    AfterSale,
    AfterSaleKind,
    Brand,
    Category,
    Member,
    MemberLevel,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    PointsEntry,
    PointsReason,
    Product,
    ProductMedia,
    ProductStatus,
    Refund,
    Shop,
    Sku,
    StaffRole,
    Tag,
)
from models import Address as AddressModel
from resolvers.node import node_type, node_types
from schema.node import encode_id
from services.access import api_keys, audit
from services.access.staff import authenticate_staff, create_staff
from services.loyalty.levels import ensure_default_levels
from services.members.tokens import issue_tokens
from tests.graphql_client import gql

INTROSPECT_OBJECTS = """{ __schema { types { kind name interfaces { name }
  fields { name type { kind name ofType { kind name } } } } } }"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"

EVERYONE = frozenset({"anonymous", "owner", "stranger", "admin", "warehouse", "service", "operator"})
STAFF = frozenset({"admin", "warehouse", "service", "operator"})
ORDER_READERS = STAFF


@dataclass
class World:
    """Two members (the owner of everything member-owned, and a stranger) and their rows."""

    owner: Member
    stranger: Member
    order: Order
    line: OrderLine
    staff_ids: dict[str, int]


@dataclass(frozen=True)
class Sample:
    """How to get the primary key of one object of a type, who may see it, and the name its IDs carry when
    that is not the type's own (Image IDs say Upload)."""

    make: Callable[[World], Awaitable[int]]
    seen_by: frozenset[str]
    id_name: str | None = None


async def _first(model: Any, **filters: Any) -> int:
    row = await model.filter(**filters).order_by("id").first()
    assert row is not None, f"the demo shop has no {model.__name__}"
    return int(row.id)


async def _address(world: World) -> int:
    row = await AddressModel.create(
        member=world.owner,
        name="林晓",
        phone="13800138000",
        province="广东省",
        city="深圳市",
        district="南山区",
        detail="科技园南路 88 号",
        is_default=True,
    )
    return row.id


async def _points_entry(world: World) -> int:
    row = await PointsEntry.create(
        member=world.owner,
        delta=5,
        balance_after=5,
        reason=PointsReason.SIGN_IN,
        idempotency_key=f"node-{secrets.token_hex(6)}",
    )
    return row.id


async def _after_sale(world: World) -> int:
    row = await AfterSale.create(
        order=world.order,
        member=world.owner,
        kind=AfterSaleKind.REFUND_ONLY,
        amount=100,
        lines=[{"line_id": world.line.id, "quantity": 1}],
    )
    return row.id


async def _payment(world: World) -> int:
    row = await Payment.create(
        order=world.order,
        out_trade_no=f"P{secrets.token_hex(10)}",
        amount=world.order.payable,
        status=PaymentStatus.SUCCEEDED,
        transaction_id=secrets.token_hex(12),
    )
    return row.id


async def _refund(world: World) -> int:
    row = await Refund.create(order=world.order, out_refund_no=f"R{secrets.token_hex(10)}", amount=100)
    return row.id


async def _api_key(_: World) -> int:
    row, _key = await api_keys.create_api_key(f"node-{secrets.token_hex(3)}", ["catalog:read"], None)
    return row.id


async def _audit_entry(world: World) -> int:
    from models import AuditLog

    staff = await authenticate_staff((await create_staff(f"auditor-{secrets.token_hex(3)}"))[1])
    assert staff is not None
    await audit.record(staff, "nodeTest", "", {}, succeeded=True)
    return await _first(AuditLog, action="nodeTest", staff_id=staff.id)


async def _held_review(world: World) -> int:
    from models import Review

    row = await Review.create(
        order_line=world.line,
        member=world.owner,
        product_id=world.line.product_id,
        sku_id=world.line.sku_id,
        rating=5,
        description_score=5,
        logistics_score=5,
        service_score=5,
        content="还没过审",
    )
    return row.id


async def _draft_article(world: World) -> int:
    from models import Article

    return (await Article.create(title="草稿", author_member=world.owner)).id


async def _pending_image(world: World) -> int:
    from models import Upload

    tag = secrets.token_hex(6)
    row = await Upload.create(
        member=world.owner,
        storage_key=f"node/{tag}.jpg",
        url=f"https://img.example.com/{tag}.jpg",
        thumbnail_url=f"https://img.example.com/{tag}-s.jpg",
        content_type="image/jpeg",
        width=10,
        height=10,
        size_bytes=100,
    )
    return row.id


async def _flash_sale(_: World) -> int:
    from models import FlashSale, FlashSaleItem, FlashSaleSession

    day = now().date()
    session = await FlashSaleSession.create(
        shop=await Shop.first(), name="节点场", starts_minute=0, ends_minute=60
    )
    sale = await FlashSale.create(shop=await Shop.first(), title="节点秒杀", starts_on=day, ends_on=day)
    sku = (
        await Sku.filter(product__status=ProductStatus.ON_SALE)
        .order_by("id")
        .first()
        .values("id", "product_id")
    )
    item = await FlashSaleItem.create(
        flash_sale=sale,
        session=session,
        sku_id=sku["id"],
        product_id=sku["product_id"],
        flash_price=1,
        allotment=1,
        per_member_limit=1,
    )
    return int(item.id)


async def _flash_sale_item(world: World) -> int:
    return await _flash_sale(world)


async def _flash_sale_row(world: World) -> int:
    from models import FlashSaleItem

    item = await FlashSaleItem.get(id=await _flash_sale(world))
    return int(item.flash_sale_id)  # type: ignore[attr-defined]


async def _flash_sale_session(world: World) -> int:
    from models import FlashSaleItem

    item = await FlashSaleItem.get(id=await _flash_sale(world))
    return int(item.session_id)  # type: ignore[attr-defined]


async def _rain(_: World) -> int:
    from models import RedPacketRain

    rain = await RedPacketRain.create(
        room_id=1, total_amount=10, packet_count=1, starts_at=now(), ends_at=now() + timedelta(minutes=1)
    )
    return rain.id


async def _bargain_activity(_: World) -> int:
    from models import BargainActivity

    sku = (
        await Sku.filter(product__status=ProductStatus.ON_SALE)
        .order_by("id")
        .first()
        .values("id", "product_id")
    )
    moment = now()
    row = await BargainActivity.create(
        shop=await Shop.first(),
        title="节点砍价",
        sku_id=sku["id"],
        product_id=sku["product_id"],
        start_price=1000,
        floor_price=10,
        helpers_needed=3,
        hours_to_finish=24,
        starts_at=moment,
        ends_at=moment + timedelta(days=1),
        stock=1,
    )
    return int(row.id)


async def _bargain(world: World) -> int:
    from models import Bargain

    row = await Bargain.create(
        activity_id=await _bargain_activity(world),
        member_id=world.owner.id,
        current_price=1000,
        expires_at=now() + timedelta(days=1),
    )
    return int(row.id)


async def _auction(_: World) -> int:
    from models import Auction

    sku = await _first(Sku, product__status=ProductStatus.ON_SALE)
    row = await Auction.create(
        room_id=1,
        sku_id=sku,
        start_price=100,
        increment=10,
        next_min=100,
        starts_at=now(),
        scheduled_ends_at=now() + timedelta(minutes=5),
        ends_at=now() + timedelta(minutes=5),
    )
    return row.id


async def _level(_: World) -> int:
    await ensure_default_levels()
    return await _first(MemberLevel)


async def _group_buy_rule(_: World) -> int:
    from models import GroupBuyRule

    sku = (
        await Sku.filter(product__status=ProductStatus.ON_SALE)
        .select_related("product")
        .order_by("id")
        .first()
    )
    assert sku is not None
    row = await GroupBuyRule.create(
        shop_id=sku.product.shop_id,  # type: ignore[attr-defined]
        product_id=sku.product.id,
        sku_id=sku.id,
        title="两人团",
        group_price=sku.price,
        group_size=2,
        hours_to_fill=24,
        per_member_limit=1,
        starts_at=now(),
        ends_at=now() + timedelta(days=1),
    )
    return row.id


async def _group_buy(world: World) -> int:
    from models import GroupBuy

    return (
        await GroupBuy.create(rule_id=await _group_buy_rule(world), leader_member_id=world.owner.id, size=2)
    ).id


async def _presale(_: World) -> int:
    from models import Presale

    sku = (
        await Sku.filter(product__status=ProductStatus.ON_SALE)
        .select_related("product")
        .order_by("id")
        .first()
    )
    assert sku is not None
    row = await Presale.create(
        shop_id=sku.product.shop_id,  # type: ignore[attr-defined]
        product_id=sku.product.id,
        sku_id=sku.id,
        title="预售",
        price=10000,
        deposit=1000,
        deposit_worth=2000,
        per_member_limit=1,
        deposit_starts_at=now(),
        deposit_ends_at=now() + timedelta(days=1),
        balance_starts_at=now() + timedelta(days=2),
        balance_ends_at=now() + timedelta(days=3),
    )
    return row.id


async def _on_sale_media(_: World) -> int:
    return await _first(ProductMedia, product__status=ProductStatus.ON_SALE)


async def _coupon(world: World) -> int:
    from models import Coupon, CouponKind

    row = await Coupon.create(
        name="无门槛10元", kind=CouponKind.CASH, amount_off=1000, total_quantity=10, valid_days=7
    )
    return row.id


async def _promotion(world: World) -> int:
    from datetime import UTC, datetime

    from models import Promotion, PromotionKind

    row = await Promotion.create(
        title="草稿满减",
        kind=PromotionKind.THRESHOLD,
        starts_at=datetime(2030, 1, 1, tzinfo=UTC),
        actions=[{"type": "AMOUNT_OFF", "args": {"amount": 100}}],
    )
    return row.id  # a DRAFT: it never applies to other tests' orders


async def _member_coupon(world: World) -> int:
    from models import CouponSource
    from services.marketing.coupons.wallet import grant

    return (await grant(world.owner.id, await _coupon(world), CouponSource.ISSUED)).id


async def _points_mall_item(world: World) -> int:
    from models import PointsMallItem, PointsMallItemKind

    row = await PointsMallItem.create(
        title="积分换券", kind=PointsMallItemKind.COUPON, coupon_id=await _coupon(world), points=100, stock=5
    )
    return row.id


async def _live_room(world: World) -> int:
    from models import LiveRoom

    start = now()
    room = await LiveRoom.create(
        title="直播", anchor_name="小林", scheduled_start=start, scheduled_end=start + timedelta(hours=1)
    )
    return int(room.id)


async def _live_room_product(world: World) -> int:
    from models import LiveRoomProduct

    sku = await Sku.filter(product__status=ProductStatus.ON_SALE).order_by("id").first()
    assert sku is not None
    room_id = await _live_room(world)
    row = await LiveRoomProduct.create(
        room_id=room_id, product_id=sku.product_id, sku_id=sku.id, live_price=100, allotment=5
    )
    return int(row.id)


async def _live_comment(world: World) -> int:
    from models import LiveComment

    row = await LiveComment.create(room_id=await _live_room(world), member=world.owner, text="好看")
    return int(row.id)


SAMPLES: dict[str, Sample] = {
    "Product": Sample(lambda _: _first(Product, status=ProductStatus.ON_SALE), EVERYONE),
    "Sku": Sample(lambda _: _first(Sku, product__status=ProductStatus.ON_SALE), EVERYONE),
    "Media": Sample(_on_sale_media, EVERYONE),
    "Category": Sample(lambda _: _first(Category), EVERYONE),
    "Brand": Sample(lambda _: _first(Brand), EVERYONE),
    "Tag": Sample(lambda _: _first(Tag), EVERYONE),
    "MemberLevel": Sample(_level, EVERYONE),
    "Member": Sample(lambda w: _constant(w.owner.id), frozenset({"owner", "admin", "service"})),
    "Address": Sample(_address, frozenset({"owner"})),
    "PointsEntry": Sample(_points_entry, frozenset({"owner"})),
    "Order": Sample(lambda w: _constant(w.order.id), ORDER_READERS | {"owner"}),
    "OrderLine": Sample(lambda w: _constant(w.line.id), ORDER_READERS | {"owner"}),
    "AfterSale": Sample(_after_sale, ORDER_READERS | {"owner"}),
    "Payment": Sample(_payment, ORDER_READERS),
    "Refund": Sample(_refund, ORDER_READERS),
    "StaffAccount": Sample(lambda w: _constant(w.staff_ids["warehouse"]), frozenset({"admin", "warehouse"})),
    "ApiKey": Sample(_api_key, frozenset({"admin"})),
    "AuditLogEntry": Sample(_audit_entry, frozenset({"admin"})),
    # Content waiting for its check: its writer and content staff (an article: any staff).
    "Review": Sample(_held_review, frozenset({"owner", "admin", "operator"})),
    "Article": Sample(_draft_article, STAFF | {"owner"}),
    # A group buy and its groups are shared by link: anyone may see them.
    "GroupBuyRule": Sample(_group_buy_rule, EVERYONE),
    "GroupBuy": Sample(_group_buy, EVERYONE),
    "Presale": Sample(_presale, EVERYONE),
    "Image": Sample(_pending_image, frozenset({"owner", "admin", "operator"}), id_name="Upload"),
    "Coupon": Sample(_coupon, EVERYONE),
    "MemberCoupon": Sample(_member_coupon, frozenset({"owner"})),
    "PointsMallItem": Sample(_points_mall_item, EVERYONE),
    "FlashSaleSession": Sample(_flash_sale_session, EVERYONE),
    "FlashSaleItem": Sample(_flash_sale_item, EVERYONE),
    "FlashSale": Sample(_flash_sale_row, frozenset({"admin", "operator"})),
    # Shown in its live room to everyone.
    "RedPacketRain": Sample(_rain, EVERYONE),
    # A bargain is shared by link: anyone may see it.
    "BargainActivity": Sample(_bargain_activity, EVERYONE),
    "Bargain": Sample(_bargain, EVERYONE),
    "LiveRoom": Sample(_live_room, EVERYONE),
    "LiveRoomProduct": Sample(_live_room_product, EVERYONE),
    "LiveComment": Sample(_live_comment, EVERYONE),
    "Promotion": Sample(_promotion, frozenset({"admin", "operator"})),
    "Auction": Sample(_auction, EVERYONE),
}


async def _constant(value: int) -> int:
    return value


async def _member() -> tuple[Member, str]:
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    return member, (await issue_tokens(member)).access_token


async def _world() -> tuple[World, dict[str, str | None]]:
    owner, owner_token = await _member()
    stranger, stranger_token = await _member()
    shop, _ = await Shop.get_or_create(code=DEFAULT_SHOP_CODE, defaults={"name": "链猫优选"})
    order = await Order.create(
        shop=shop,
        member=owner,
        number=f"N{secrets.token_hex(8)}",
        status=OrderStatus.PAID,
        items_total=12900,
        payable=12900,
        paid_amount=12900,
        idempotency_key=secrets.token_hex(8),
        pay_deadline=now() + timedelta(minutes=30),
    )
    line = await OrderLine.create(
        order=order, product_id=1, sku_id=1, title="连衣裙", unit_price=12900, quantity=1, line_total=12900
    )
    tokens: dict[str, str | None] = {"anonymous": None, "owner": owner_token, "stranger": stranger_token}
    staff_ids: dict[str, int] = {}
    for name, role in (
        ("admin", StaffRole.ADMIN),
        ("warehouse", StaffRole.WAREHOUSE),
        ("service", StaffRole.CUSTOMER_SERVICE),
        ("operator", StaffRole.OPERATOR),
    ):
        account, tokens[name] = await create_staff(f"node-{name}-{secrets.token_hex(3)}", role)
        staff_ids[name] = account.id
    return World(owner, stranger, order, line, staff_ids), tokens


async def _schema_objects(client: httpx.AsyncClient, token: str | None) -> list[dict[str, Any]]:
    body = await gql(client, INTROSPECT_OBJECTS, token=token)
    return [t for t in body["data"]["__schema"]["types"] if t["kind"] == "OBJECT"]


def _has_id(type_: dict[str, Any]) -> bool:
    return any(
        f["name"] == "id" and f["type"]["kind"] == "NON_NULL" and f["type"]["ofType"]["name"] == "ID"
        for f in type_["fields"] or []
    )


async def test_every_object_with_an_id_is_a_node_that_round_trips(
    seeded: None, client: httpx.AsyncClient
) -> None:
    world, tokens = await _world()
    objects = await _schema_objects(client, tokens["admin"])
    with_id = {t["name"] for t in objects if _has_id(t)}
    nodes = {t["name"] for t in objects if any(i["name"] == "Node" for i in t["interfaces"])}
    assert with_id - nodes == set(), "every object type with `id: ID!` must implement Node"
    assert nodes - set(SAMPLES) == set(), "add a SAMPLES row (how to make one, who sees it) for each new Node"
    id_names = {SAMPLES[name].id_name or name for name in nodes}
    assert id_names - node_types() == set(), "every Node needs a resolver registered with @node_type"

    ids = {
        name: encode_id(SAMPLES[name].id_name or name, await SAMPLES[name].make(world))
        for name in sorted(nodes)
    }
    order = sorted(ids)
    for viewer, token in tokens.items():
        answer = (await gql(client, NODES, {"ids": [ids[n] for n in order]}, token=token))["data"]["nodes"]
        seen = {name for name, got in zip(order, answer, strict=True) if got is not None}
        expected = {name for name in order if viewer in SAMPLES[name].seen_by}
        assert seen == expected, f"{viewer}: sees {sorted(seen - expected)}, misses {sorted(expected - seen)}"
        for name, got in zip(order, answer, strict=True):
            assert got is None or got == {"__typename": name, "id": ids[name]}, got

    # node(id:) answers exactly as nodes(ids:) does, one type at a time.
    for name in order:
        viewer = "owner" if "owner" in SAMPLES[name].seen_by else "admin"
        got = (await gql(client, NODE, {"id": ids[name]}, token=tokens[viewer]))["data"]["node"]
        assert got == {"__typename": name, "id": ids[name]}, name
        missing = encode_id(SAMPLES[name].id_name or name, 2**31 - 1)
        assert (await gql(client, NODE, {"id": missing}, token=tokens["admin"]))["data"]["node"] is None


async def test_many_ids_cost_one_query_per_type(seeded: None, client: httpx.AsyncClient) -> None:
    world, tokens = await _world()
    orders = [world.order]
    for _ in range(29):
        orders.append(
            await Order.create(
                shop_id=world.order.shop_id,  # type: ignore[attr-defined]
                member=world.owner,
                number=f"N{secrets.token_hex(8)}",
                items_total=100,
                payable=100,
                idempotency_key=secrets.token_hex(8),
                pay_deadline=now() + timedelta(minutes=30),
            )
        )
    products = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").limit(30)
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { id
      ... on Order { number lines { title } timeline { toStatus } }
      ... on Product { title } } }"""

    async def statements(count: int) -> int:
        ids = [encode_id("Order", o.id) for o in orders[:count]]
        ids += [encode_id("Product", p.id) for p in products[:count]]
        with count_queries() as counter:
            answer = (await gql(client, query, {"ids": ids}, token=tokens["owner"]))["data"]["nodes"]
        assert [n["id"] for n in answer] == ids
        return counter.count

    await statements(3)  # the first request of a session also reads the member's growth
    # One statement each for orders, products, order lines and order events, for 6 IDs as for 60.
    assert await statements(3) == await statements(30) == 4


async def test_nodes_is_capped_and_names_the_bad_id(client: httpx.AsyncClient, settings: Any) -> None:
    too_many = [encode_id("Tag", i + 1) for i in range(settings.max_page_size + 1)]
    body = await gql(client, NODES, {"ids": too_many}, expect_errors=True)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["PAGE_SIZE_EXCEEDED"]

    for bad, code in (("not-an-id", "INVALID_ID"), (encode_id("Nothing", 1), "INVALID_ID")):
        body = await gql(client, NODES, {"ids": [encode_id("Tag", 1), bad]}, expect_errors=True)
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]] == [
            (code, "ids[1]")
        ]


def test_a_type_has_one_node_resolver() -> None:
    async def another(_: Any, __: int) -> None:
        return None

    with pytest.raises(RuntimeError, match="already has a node resolver"):
        node_type("Order")(another)


async def test_each_operation_on_a_socket_reads_afresh(app: object) -> None:
    # A WebSocket keeps one context for its life; loaders kept with it would answer later queries with the
    # rows an earlier one loaded.
    import json

    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from tests.test_members import serving

    shop, _ = await Shop.get_or_create(code=DEFAULT_SHOP_CODE, defaults={"name": "链猫优选"})
    tag = await Tag.create(shop=shop, name=f"旧名-{secrets.token_hex(3)}")
    query = {"query": "query($id: ID!) { node(id: $id) { ... on Tag { name } } }"}
    query["variables"] = {"id": encode_id("Tag", tag.id)}  # type: ignore[assignment]

    async with serving(app) as url, connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        names = []
        for operation in ("1", "2"):
            await ws.send(json.dumps({"id": operation, "type": "subscribe", "payload": query}))
            message = json.loads(await ws.recv())
            names.append(message["payload"]["data"]["node"]["name"])
            assert json.loads(await ws.recv())["type"] == "complete"
            await Tag.filter(id=tag.id).update(name=f"新名-{tag.id}")
    assert names == [tag.name, f"新名-{tag.id}"]
