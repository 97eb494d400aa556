"""Articles (种草): staff write sanitised rich text with a cover, products and tags, publish, and readers see
the products priced for themselves; likes and favourites count exactly; members may write when the shop allows
it, and their articles appear only once WeChat passed the text and every image."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from models import Article as ArticleModel
from models import Member, Product, StaffRole
from schema.node import encode_id
from services.loyalty import levels
from services.members.tokens import issue_tokens
from tests.content_support import deliver_verdicts, new_member, png_image, upload
from tests.graphql_client import gql
from tests.test_members import staff_token
from tests.wechat_standin import WeChatStandIn

pytestmark = pytest.mark.usefixtures("seeded")

ERRORS = "errors { field message code }"
ARTICLE = "id title bodyHtml status moderation visible likeCount favoriteCount tags cover { url status } author { isStaff nickname } products { id title price { min } }"
CREATE = f"mutation($input: ArticleInput!) {{ articleCreate(input: $input) {{ article {{ {ARTICLE} }} {ERRORS} }} }}"
PUBLISH = f"mutation($id: ID!) {{ articlePublish(id: $id) {{ article {{ {ARTICLE} }} {ERRORS} }} }}"
READ = f"query($id: ID!) {{ article(id: $id) {{ {ARTICLE} }} }}"
LIST = "query($f: ArticleFilter) { articles(first: 20, filter: $f) { edges { node { id title } } pageInfo { hasNextPage } } }"


async def field(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    (result,) = (await gql(client, query, variables, token=token))["data"].values()
    return result


async def products(n: int) -> list[Product]:
    return list(await Product.filter(status="ON_SALE").order_by("id").limit(n))


async def test_staff_write_publish_and_readers_see_products_priced_for_them(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    cover = await upload(client, operator, png_image(), scene="ARTICLE")
    linked = await products(2)
    tag = f"通勤{secrets.token_hex(2)}"
    body = (
        '<h2 onclick="steal()">秋冬穿搭</h2><p style="color:red">这件<b>大衣</b>很暖和'
        '<script>alert(1)</script><a href="javascript:alert(1)">x</a><a href="https://shop.example.com/a">看看</a>'
        '<img src="https://img.example.com/1.jpg" onerror="alert(1)"></p><iframe src="https://evil.example"></iframe>'
    )
    made = await field(
        client,
        CREATE,
        {
            "input": {
                "title": "秋冬通勤穿搭",
                "bodyHtml": body,
                "coverId": cover.json()["id"],
                "tags": [tag, tag, " "],
                "productIds": [encode_id("Product", p.id) for p in linked],
            }
        },
        operator,
    )
    assert made["errors"] == []
    article = made["article"]
    html = article["bodyHtml"]
    for gone in ("script", "onclick", "style=", "javascript:", "onerror", "iframe"):
        assert gone not in html, gone
    assert '<a href="https://shop.example.com/a" rel="noopener noreferrer nofollow">看看</a>' in html
    assert '<img src="https://img.example.com/1.jpg">' in html and "<h2>秋冬穿搭</h2>" in html
    assert article["status"] == "DRAFT" and not article["visible"] and article["tags"] == [tag]
    assert article["author"]["isStaff"] and article["cover"]["status"] == "PASSED"

    # A draft is the staff's alone.
    assert (await gql(client, READ, {"id": article["id"]}))["data"]["article"] is None
    published = await field(client, PUBLISH, {"id": article["id"]}, operator)
    assert published["article"]["visible"]
    listed = await gql(client, LIST, {"f": {"tag": tag}})
    assert [e["node"]["id"] for e in listed["data"]["articles"]["edges"]] == [article["id"]]
    by_product = await gql(client, LIST, {"f": {"productId": encode_id("Product", linked[0].id)}})
    assert article["id"] in [e["node"]["id"] for e in by_product["data"]["articles"]["edges"]]

    # The linked products are priced for the viewer: a diamond member pays their level's price.
    await levels.ensure_default_levels()
    diamond = await Member.create(
        openid=f"o_{secrets.token_hex(6)}", invite_code=secrets.token_hex(5).upper(), growth=20000
    )
    diamond_token = (await issue_tokens(diamond)).access_token
    guest_view = (await gql(client, READ, {"id": article["id"]}))["data"]["article"]["products"]
    diamond_view = (await gql(client, READ, {"id": article["id"]}, token=diamond_token))["data"]["article"][
        "products"
    ]
    assert [p["id"] for p in guest_view] == [encode_id("Product", p.id) for p in linked]
    for guest, member in zip(guest_view, diamond_view, strict=True):
        page = await gql(
            client,
            "query($id: ID!) { product(id: $id) { price { min } } }",
            {"id": member["id"]},
            token=diamond_token,
        )
        assert member["price"]["min"] == page["data"]["product"]["price"]["min"] < guest["price"]["min"]

    # Likes and favourites: repeats change nothing, the counters follow the rows.
    _, token = await new_member()
    like = f"mutation($id: ID!, $l: Boolean!) {{ articleLike(id: $id, liked: $l) {{ article {{ likeCount }} {ERRORS} }} }}"
    assert (await field(client, like, {"id": article["id"], "l": True}, token))["article"]["likeCount"] == 1
    assert (await field(client, like, {"id": article["id"], "l": True}, token))["article"]["likeCount"] == 1
    assert (await field(client, like, {"id": article["id"], "l": True}, diamond_token))["article"][
        "likeCount"
    ] == 2
    assert (await field(client, like, {"id": article["id"], "l": False}, token))["article"]["likeCount"] == 1
    assert (await field(client, like, {"id": article["id"], "l": False}, token))["article"]["likeCount"] == 1
    fav = "mutation($id: ID!) { favoriteAdd(id: $id) { favorite errors { code } } }"
    assert (await field(client, fav, {"id": article["id"]}, token))["favorite"] is True
    assert (await field(client, fav, {"id": article["id"]}, token))["favorite"] is True
    assert (await ArticleModel.get(id=article_pk(article["id"]))).favorite_count == 1

    # Unpublished again: readers no longer see it, and cached answers followed.
    await field(
        client,
        f"mutation($id: ID!) {{ articleUnpublish(id: $id) {{ {ERRORS} }} }}",
        {"id": article["id"]},
        operator,
    )
    assert (await gql(client, READ, {"id": article["id"]}))["data"]["article"] is None
    assert (await gql(client, LIST, {"f": {"tag": tag}}))["data"]["articles"]["edges"] == []


def article_pk(global_id: str) -> int:
    from schema.node import decode_id

    return decode_id(global_id, "Article")


async def test_article_writing_is_refused_to_members_unless_the_shop_allows_it(
    client: httpx.AsyncClient, wechat: WeChatStandIn, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _member, token = await new_member()
    refused = await field(client, CREATE, {"input": {"title": "我的种草"}}, token)
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert [e["code"] for e in (await field(client, CREATE, {"input": {"title": "x"}}, None))["errors"]] == [
        "UNAUTHENTICATED"
    ]
    warehouse = await staff_token(StaffRole.WAREHOUSE)
    assert [
        e["code"] for e in (await field(client, CREATE, {"input": {"title": "x"}}, warehouse))["errors"]
    ] == ["FORBIDDEN"]
    bad = await field(
        client, CREATE, {"input": {"title": "", "tags": ["x" * 40]}}, await staff_token(StaffRole.OPERATOR)
    )
    assert sorted(e["field"] for e in bad["errors"]) == ["input.tags", "input.title"]


async def test_a_members_article_shows_once_its_text_and_images_passed(
    client: httpx.AsyncClient, wechat: WeChatStandIn, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "articles_by_members", True)
    _member, token = await new_member()
    _, stranger = await new_member()
    mine = (await upload(client, token, png_image(), scene="ARTICLE")).json()
    theirs = (await upload(client, stranger, png_image(), scene="ARTICLE")).json()
    body = f'<p>分享一下</p><img src="{mine["url"]}"><img src="{theirs["url"]}">'
    made = await field(client, CREATE, {"input": {"title": "我的种草", "bodyHtml": body}}, token)
    assert made["errors"] == []
    article = made["article"]
    assert mine["url"] in article["bodyHtml"] and theirs["url"] not in article["bodyHtml"], (
        "only the writer's uploads"
    )
    assert not article["author"]["isStaff"] and article["moderation"] == "PASSED"
    published = (await field(client, PUBLISH, {"id": article["id"]}, token))["article"]
    assert not published["visible"], "its image is still being checked"
    assert (await gql(client, READ, {"id": article["id"]}))["data"]["article"] is None
    assert (await gql(client, READ, {"id": article["id"]}, token=token))["data"]["article"]["id"] == article[
        "id"
    ]

    assert await deliver_verdicts(client, wechat) == [200, 200]
    assert (await gql(client, READ, {"id": article["id"]}))["data"]["article"]["visible"]

    # Text WeChat wants reviewed waits for staff; risky text is refused.
    wechat.add_review_words("可疑")
    wechat.add_risky_words("违规")
    held = await field(client, CREATE, {"input": {"title": "可疑标题"}}, token)
    assert held["article"]["moderation"] == "HELD"
    await field(client, PUBLISH, {"id": held["article"]["id"]}, token)
    assert (await gql(client, READ, {"id": held["article"]["id"]}))["data"]["article"] is None
    operator = await staff_token(StaffRole.OPERATOR)
    moderate = f'mutation {{ articleModerate(id: "{held["article"]["id"]}", approve: true) {{ article {{ visible }} {ERRORS} }} }}'
    assert (await field(client, moderate, {}, operator))["article"]["visible"]
    risky = await field(client, CREATE, {"input": {"title": "违规"}}, token)
    assert [e["code"] for e in risky["errors"]] == ["CONTENT_REJECTED"]
    # Another member's article cannot be edited.
    update = f'mutation {{ articleUpdate(id: "{article["id"]}", input: {{title: "改"}}) {{ {ERRORS} }} }}'
    assert [e["code"] for e in (await field(client, update, {}, stranger))["errors"]] == ["NOT_FOUND"]
