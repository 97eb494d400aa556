"""Reviews through the public API: a shopper reviews what they received with photos, the product page shows
only what WeChat's check allowed (and its cached copy follows every change), staff reply, hide, feature and
decide what WeChat held, and the review earns points exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from infra.clock import set_clock
from infra.query_counter import count_queries
from models import Order, OrderStatus, PointsEntry, PointsReason, Review, StaffRole
from schema.node import encode_id
from tests.content_support import deliver_verdicts, new_member, photo_jpeg, png_image, received_order, upload
from tests.graphql_client import gql
from tests.test_members import staff_token
from tests.wechat_standin import WeChatStandIn

pytestmark = pytest.mark.usefixtures("seeded")

ERRORS = "errors { field message code }"
REVIEW_FIELDS = (
    "id rating content anonymous status hidden featured reply spec author { nickname anonymous } "
    "photos { id url status } append { content status photos { id status } }"
)
CREATE = f"mutation($input: ReviewCreateInput!) {{ reviewCreate(input: $input) {{ review {{ {REVIEW_FIELDS} }} {ERRORS} }} }}"
APPEND = f"mutation($id: ID!, $c: String!, $p: [ID!]) {{ reviewAppend(id: $id, content: $c, photoIds: $p) {{ review {{ {REVIEW_FIELDS} }} {ERRORS} }} }}"
PAGE = """query($id: ID!, $f: ReviewFilter) { product(id: $id) { id
  reviewSummary { count withPhotos average goodRatePercent ratingCounts { rating count } serviceAverage }
  featuredReviews { id }
  reviews(first: 10, filter: $f) { totalCount edges { node { id rating content reply featured
    author { nickname avatarUrl anonymous } photos { id status } append { content } } } } } }"""


def staff_call(name: str, args: str) -> str:
    return f"mutation {{ {name}({args}) {{ review {{ {REVIEW_FIELDS} }} {ERRORS} }} }}"


async def field(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    (result,) = (await gql(client, query, variables, token=token))["data"].values()
    return result


async def page(client: httpx.AsyncClient, product_id: int, f: dict[str, Any] | None = None) -> Any:
    body = await gql(client, PAGE, {"id": encode_id("Product", product_id), "f": f})
    return body["data"]["product"]


async def photo_ids(client: httpx.AsyncClient, token: str, *images: bytes) -> list[str]:
    made = [await upload(client, token, image) for image in images]
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    return [r.json()["id"] for r in made]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


@pytest.fixture(autouse=True)
def _clock() -> Any:
    yield
    set_clock(None)


async def review_points(member_id: int) -> list[int]:
    return [e.delta for e in await PointsEntry.filter(member_id=member_id, reason=PointsReason.REVIEW)]


async def test_a_shopper_reviews_a_received_purchase_with_photos(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    member, token = await new_member()
    _order, (line,) = await received_order(member)
    pid = line.product_id
    before = await page(client, pid)

    photos = await photo_ids(client, token, photo_jpeg(), png_image())
    wechat.media_verdict(".png", "risky")
    created = await field(
        client,
        CREATE,
        {
            "input": {
                "orderLineId": encode_id("OrderLine", line.id),
                "rating": 5,
                "content": "面料很舒服，颜色正",
                "logisticsScore": 4,
                "photoIds": photos,
            }
        },
        token,
    )
    assert created["errors"] == []
    review = created["review"]
    assert review["status"] == "PASSED" and review["spec"] == "颜色: 红"
    assert [p["status"] for p in review["photos"]] == ["PENDING", "PENDING"], (
        "the writer sees their own pending photos"
    )
    assert await review_points(member.id) == [10]

    # The cached page changed at once: the review shows, its photos not yet.
    shown = await page(client, pid)
    assert shown["reviewSummary"]["count"] == before["reviewSummary"]["count"] + 1
    node = shown["reviews"]["edges"][0]["node"]
    assert node["id"] == review["id"] and node["photos"] == [] and node["author"]["nickname"] == "林晓晓"
    assert shown["reviewSummary"]["withPhotos"] == before["reviewSummary"]["withPhotos"]

    # WeChat passes the JPEG and refuses the PNG: the page shows one photo, and the with-photos filter finds it.
    assert await deliver_verdicts(client, wechat) == [200, 200]
    shown = await page(client, pid)
    node = shown["reviews"]["edges"][0]["node"]
    assert [p["id"] for p in node["photos"]] == [photos[0]]
    assert shown["reviewSummary"]["withPhotos"] == before["reviewSummary"]["withPhotos"] + 1
    with_photos = await page(client, pid, {"withPhotos": True})
    assert review["id"] in [e["node"]["id"] for e in with_photos["reviews"]["edges"]]
    mine = await gql(
        client, f"{{ myReviews {{ totalCount edges {{ node {{ {REVIEW_FIELDS} }} }} }} }}", token=token
    )
    statuses = [p["status"] for p in mine["data"]["myReviews"]["edges"][0]["node"]["photos"]]
    assert statuses == ["PASSED", "REJECTED"]

    # One review per line: a second one (or a retry) is refused and earns nothing more.
    again = await field(
        client, CREATE, {"input": {"orderLineId": encode_id("OrderLine", line.id), "rating": 1}}, token
    )
    assert codes(again) == ["ALREADY_REVIEWED"]
    assert await review_points(member.id) == [10]

    # The append (追评) comes later, once, and shows when it passed.
    appended = await field(client, APPEND, {"id": review["id"], "c": "穿了一个月，没有起球", "p": []}, token)
    assert appended["errors"] == [] and appended["review"]["append"]["status"] == "PASSED"
    assert (await page(client, pid))["reviews"]["edges"][0]["node"]["append"] == {
        "content": "穿了一个月，没有起球"
    }
    twice = await field(client, APPEND, {"id": review["id"], "c": "再追一次"}, token)
    assert codes(twice) == ["CONFLICT"]


async def test_who_may_review_what_and_when(client: httpx.AsyncClient, wechat: WeChatStandIn) -> None:
    member, token = await new_member()
    _other, other_token = await new_member()
    order, (line,) = await received_order(member)
    line_id = encode_id("OrderLine", line.id)

    assert codes(
        await field(client, CREATE, {"input": {"orderLineId": line_id, "rating": 5}}, other_token)
    ) == ["NOT_FOUND"]
    bad = await field(
        client,
        CREATE,
        {"input": {"orderLineId": line_id, "rating": 6, "serviceScore": 0, "content": "x" * 501}},
        token,
    )
    assert sorted(e["field"] for e in bad["errors"]) == [
        "input.content",
        "input.rating",
        "input.serviceScore",
    ]
    guest = await field(client, CREATE, {"input": {"orderLineId": line_id, "rating": 5}}, None)
    assert codes(guest) == ["UNAUTHENTICATED"]
    strangers_photo = await photo_ids(client, other_token, png_image())
    assert codes(
        await field(
            client,
            CREATE,
            {"input": {"orderLineId": line_id, "rating": 5, "photoIds": strangers_photo}},
            token,
        )
    ) == ["NOT_FOUND"]
    too_many = await field(
        client,
        CREATE,
        {"input": {"orderLineId": line_id, "rating": 5, "photoIds": strangers_photo * 10}},
        token,
    )
    assert codes(too_many) == ["BAD_USER_INPUT"]

    # The window closes by itself REVIEW_WINDOW_DAYS after receipt.
    received = order.received_at
    assert received is not None
    set_clock(lambda: received + timedelta(days=15, minutes=1))
    late = await field(client, CREATE, {"input": {"orderLineId": line_id, "rating": 5}}, token)
    assert codes(late) == ["REVIEW_NOT_ALLOWED"]
    set_clock(None)
    assert await Review.filter(member_id=member.id).count() == 0

    # Risky text is refused and nothing is written; WeChat being down writes nothing either.
    wechat.add_risky_words("违规")
    risky = await field(
        client, CREATE, {"input": {"orderLineId": line_id, "rating": 1, "content": "违规内容"}}, token
    )
    assert codes(risky) == ["CONTENT_REJECTED"] and risky["errors"][0]["field"] == "input.content"
    wechat.fail("msg_sec_check", -1)
    down = await field(
        client, CREATE, {"input": {"orderLineId": line_id, "rating": 1, "content": "普通评价"}}, token
    )
    assert codes(down) == ["WECHAT_UNAVAILABLE"]
    assert await Review.filter(member_id=member.id).count() == 0 and await review_points(member.id) == []

    # Not received yet: an order still on its way cannot be reviewed.
    waiting, waiting_token = await new_member()
    shipped, (shipped_line,) = await received_order(waiting)
    await Order.filter(id=shipped.id).update(status=OrderStatus.SHIPPED)
    early = await field(
        client,
        CREATE,
        {"input": {"orderLineId": encode_id("OrderLine", shipped_line.id), "rating": 5}},
        waiting_token,
    )
    assert codes(early) == ["REVIEW_NOT_ALLOWED"]


async def test_held_text_waits_for_staff_and_earns_points_when_shown(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    member, token = await new_member()
    _, (line,) = await received_order(member)
    wechat.add_review_words("可疑")
    created = await field(
        client,
        CREATE,
        {"input": {"orderLineId": encode_id("OrderLine", line.id), "rating": 2, "content": "可疑的评价"}},
        token,
    )
    review = created["review"]
    assert review["status"] == "HELD"
    assert review["id"] not in [
        e["node"]["id"] for e in (await page(client, line.product_id))["reviews"]["edges"]
    ]
    assert await review_points(member.id) == []

    operator = await staff_token(StaffRole.OPERATOR)
    queue = await gql(
        client, "{ staffReviews(filter: {status: HELD}) { edges { node { id status } } } }", token=operator
    )
    assert review["id"] in [e["node"]["id"] for e in queue["data"]["staffReviews"]["edges"]]
    warehouse = await staff_token(StaffRole.WAREHOUSE)
    refused = await field(
        client, staff_call("reviewModerate", f'id: "{review["id"]}", approve: true'), {}, warehouse
    )
    assert codes(refused) == ["FORBIDDEN"]

    approved = await field(
        client, staff_call("reviewModerate", f'id: "{review["id"]}", approve: true'), {}, operator
    )
    assert approved["review"]["status"] == "PASSED"
    assert review["id"] in [
        e["node"]["id"] for e in (await page(client, line.product_id))["reviews"]["edges"]
    ]
    assert await review_points(member.id) == [10]
    assert codes(
        await field(
            client, staff_call("reviewModerate", f'id: "{review["id"]}", approve: true'), {}, operator
        )
    ) == ["CONFLICT"]


async def test_staff_reply_feature_and_hide_change_the_cached_page(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    member, token = await new_member()
    _, (line,) = await received_order(member)
    pid = line.product_id
    created = await field(
        client,
        CREATE,
        {
            "input": {
                "orderLineId": encode_id("OrderLine", line.id),
                "rating": 3,
                "content": "还行",
                "anonymous": True,
            }
        },
        token,
    )
    rid = created["review"]["id"]
    operator = await staff_token(StaffRole.OPERATOR)

    def node_of(shown: Any) -> Any:
        return next((e["node"] for e in shown["reviews"]["edges"] if e["node"]["id"] == rid), None)

    first = node_of(await page(client, pid))
    assert first["author"] == {"nickname": "林***晓", "avatarUrl": "", "anonymous": True}
    assert first["reply"] is None

    await field(client, staff_call("reviewReply", f'id: "{rid}", content: "感谢您的反馈"'), {}, operator)
    assert node_of(await page(client, pid))["reply"] == "感谢您的反馈"
    await field(client, staff_call("reviewFeature", f'id: "{rid}"'), {}, operator)
    assert rid in [r["id"] for r in (await page(client, pid))["featuredReviews"]]
    count = (await page(client, pid))["reviewSummary"]["count"]
    await field(client, staff_call("reviewHide", f'id: "{rid}"'), {}, operator)
    hidden = await page(client, pid)
    assert node_of(hidden) is None and hidden["reviewSummary"]["count"] == count - 1
    assert rid not in [r["id"] for r in hidden["featuredReviews"]]
    await field(client, staff_call("reviewHide", f'id: "{rid}", hidden: false'), {}, operator)
    assert node_of(await page(client, pid)) is not None

    audit = await gql(
        client,
        '{ auditLog(first: 10, action: "reviewHide") { edges { node { action target succeeded } } } }',
        token=await staff_token(StaffRole.ADMIN),
    )
    actions = [e["node"] for e in audit["data"]["auditLog"]["edges"]]
    assert {"action": "reviewHide", "target": rid, "succeeded": True} in actions


async def test_summary_filters_and_sql_stay_flat(client: httpx.AsyncClient, wechat: WeChatStandIn) -> None:
    from models import Product, Sku

    product = await Product.filter(status="ON_SALE").order_by("-id").first()
    assert product is not None
    sku = await Sku.filter(product_id=product.id).first()
    ratings = [5, 5, 4, 2, 1]
    for rating in ratings:
        member, token = await new_member()
        _, (line,) = await received_order(member, sku=sku)
        made = await field(
            client,
            CREATE,
            {"input": {"orderLineId": encode_id("OrderLine", line.id), "rating": rating, "serviceScore": 4}},
            token,
        )
        assert made["errors"] == []
    shown = await page(client, product.id)
    summary = shown["reviewSummary"]
    assert summary["count"] == 5 and summary["average"] == 3.4 and summary["goodRatePercent"] == 60
    assert summary["ratingCounts"] == [{"rating": r, "count": ratings.count(r)} for r in (5, 4, 3, 2, 1)]
    assert summary["serviceAverage"] == 4.0
    fives = await page(client, product.id, {"rating": 5})
    assert fives["reviews"]["totalCount"] == 2 and all(
        e["node"]["rating"] == 5 for e in fives["reviews"]["edges"]
    )

    # Executed without the response cache: the product page with its reviews costs the same SQL however many
    # reviews it lists, and a listing of products with review summaries and a review each batches them.
    from schema.context import make_context
    from schema.root import schema

    async def statements(query: str, variables: dict[str, Any]) -> int:
        with count_queries() as counted:
            result = await schema.execute(query, variable_values=variables, context_value=make_context())
        assert result.errors is None, result.errors
        _last[:] = counted.statements
        return counted.count

    _last: list[str] = []

    one = await statements(PAGE, {"id": encode_id("Product", product.id)})
    assert one <= 8, "\n".join(s[:150] for s in _last)
    listing = """{ products(first: 20) { edges { node { id reviewSummary { count average }
        reviews(first: 2) { edges { node { id author { nickname } photos { id } } } } } } } }"""
    twenty = await statements(listing, {})
    assert one <= 8, "\n".join(s[:90] for s in _last)
    assert twenty <= 12, twenty
    bad = await gql(
        client, PAGE, {"id": encode_id("Product", product.id), "f": {"rating": 9}}, expect_errors=True
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
