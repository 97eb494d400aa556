"""The HTTP edge: GraphQL over HTTP (media types, status codes, GET), malformed and oversized requests, CORS,
and the static assets. The real clients' view of the same is in tests/test_js_clients.py."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from infra.settings import Settings
from infra.static_assets import STATIC_DIR, vendor_assets
from models import Product, ProductStatus
from schema.graphql_http import GRAPHQL_RESPONSE_JSON, negotiate
from schema.node import encode_id
from services.errors import ErrorCode
from tests.js_clients import live_server

GR_JSON = {"Accept": GRAPHQL_RESPONSE_JSON}
PRODUCT = "query($id: ID!) { product(id: $id) { id title } }"


def app_with(settings: Settings, **changes: Any) -> Starlette:
    from main import create_app

    return create_app(settings.model_copy(update=changes), manage_resources=False)


@pytest.fixture
async def product_id(seeded: None) -> str:
    product = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").first()
    assert product is not None
    return encode_id("Product", product.id)


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


# --- Media types and status codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        ("application/json, application/graphql-response+json;q=0.5", "application/json"),
        ("text/event-stream", None),
        ('multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json', None),
        ("application/json, multipart/mixed", None),
        ("multipart/mixed;q=0, application/json", "application/json"),
    ],
)
def test_content_negotiation(accept: str, expected: str | None) -> None:
    assert negotiate(accept) == expected


async def test_graphql_response_json_when_accepted_also_from_the_cache(
    client: httpx.AsyncClient, product_id: str
) -> None:
    body = {"query": PRODUCT, "variables": {"id": product_id}}
    for _ in range(2):  # the second answer is a cache hit
        response = await client.post("/graphql", json=body, headers=GR_JSON)
        assert response.status_code == 200
        assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
        assert response.json()["data"]["product"]["id"] == product_id
    plain = await client.post("/graphql", json=body)
    assert plain.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{", None, "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { products(first: $n) { totalCount } }", {"n": None}, "BAD_USER_INPUT"),
    ],
)
async def test_request_errors_are_4xx_without_data_for_graphql_response_json_and_200_for_json(
    client: httpx.AsyncClient, database: None, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    body = {"query": query, "variables": variables}
    modern = await client.post("/graphql", json=body, headers=GR_JSON)
    assert modern.status_code == 400
    assert "data" not in modern.json() and error_code(modern) == code
    legacy = await client.post("/graphql", json=body)
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None and error_code(legacy) == code


async def test_field_errors_keep_200_and_data(client: httpx.AsyncClient, database: None) -> None:
    response = await client.post(
        "/graphql", json={"query": '{ product(id: "not-an-id") { id } }'}, headers=GR_JSON
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"product": None} and error_code(response) == "INVALID_ID"


async def test_forbidden_introspection_is_403_for_graphql_response_json(
    client: httpx.AsyncClient, database: None
) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __schema { types { name } } }"}, headers=GR_JSON
    )
    assert response.status_code == 403 and error_code(response) == "FORBIDDEN"


async def test_queries_over_get_but_never_mutations(client: httpx.AsyncClient, product_id: str) -> None:
    response = await client.get(
        "/graphql", params={"query": PRODUCT, "variables": json.dumps({"id": product_id})}, headers=GR_JSON
    )
    assert response.status_code == 200 and response.json()["data"]["product"]["id"] == product_id

    mutation = await client.get("/graphql", params={"query": "mutation { logout { ok } }"})
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"
    assert error_code(mutation) == "BAD_REQUEST"


async def test_a_subscription_without_a_stream_type_is_406(
    client: httpx.AsyncClient, product_id: str
) -> None:
    query = "subscription($id: ID!) { productStockChanged(productId: $id) { stock } }"
    for headers in ({}, {"Accept": "application/json"}, GR_JSON):
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"id": product_id}}, headers=headers
        )
        assert response.status_code == 406, response.text
        assert (
            error_code(response) == "BAD_REQUEST"
            and "text/event-stream" in response.json()["errors"][0]["message"]
        )


# --- Bad requests ----------------------------------------------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_variables(levels: int) -> bytes:
    """A body whose variables nest `levels` deep, built as text (json.dumps itself would recurse too far)."""
    return (
        '{"query": "{ __typename }", "variables": ' + '{"a": ' * levels + "1" + "}" * levels + "}"
    ).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"null", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"{ __typename }"', "application/json", 400),
        (b"42", "application/json", 400),
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        ('{"query": "{ __typename }"}'.encode("utf-16"), "application/json", 400),
        (b'{"query": "\xff\xfe"}', "application/json", 400),
        (b'{"query": {"obj": "ect"}}', "application/json", 400),
        (b'{"query": "{ __typename }", "variables": []}', "application/json", 400),
        (b'{"query": "{ __typename }", "operationName": 0}', "application/json", 400),
        (b'{"query": "{ __typename }"}', "text/plain", 415),
        (b'{"query": "{ __typename }"}', "", 400),
        (deep_variables(5000), "application/json", 400),
        (deep_variables(40), "application/json", 400),
    ],
)
async def test_malformed_requests_get_a_coded_4xx(
    client: httpx.AsyncClient, database: None, body: bytes, content_type: str, status: int
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert error_code(response) == "BAD_REQUEST"


async def test_variables_nested_within_the_limit_pass(client: httpx.AsyncClient, database: None) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }", "variables": deep(20)})
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}


async def test_oversized_bodies_are_413_whether_declared_or_chunked(
    client: httpx.AsyncClient, settings: Settings, database: None
) -> None:
    big = json.dumps(
        {"query": "{ __typename }", "variables": {"pad": "x" * settings.max_body_bytes}}
    ).encode()
    declared = await client.post("/graphql", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and error_code(declared) == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = await client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413 and error_code(chunked) == "PAYLOAD_TOO_LARGE"
    # The notify endpoints stop reading at their own, smaller limit and answer in WeChat's XML, which is what
    # WeChat reads (tests/test_notify_bodies.py): FAIL, with the connection closed.
    notify = await client.post("/payments/wechat/notify", content=b"<xml>" + b"x" * settings.max_body_bytes)
    assert notify.status_code == 200 and "<return_code><![CDATA[FAIL]]></return_code>" in notify.text
    assert notify.headers["connection"] == "close"


def test_the_limit_middleware_speaks_our_codes() -> None:
    from infra import body_limit

    source = open(body_limit.__file__, encoding="utf-8").read()
    for code in ("BAD_REQUEST", "PAYLOAD_TOO_LARGE"):
        assert f'"{code}"' in source and ErrorCode(code)


async def test_an_unreadable_websocket_message_closes_the_socket(app: Starlette, database: None) -> None:
    async with live_server(app) as base:
        url = base.replace("http", "ws", 1) + "/graphql"
        async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": deep(100)}))
            await ws.wait_closed()
        assert ws.close_code == 4400


# --- CORS and browser origins -----------------------------------------------------------------------------------

H5 = "https://h5.example.com"
EVIL = "https://evil.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def test_allowed_origins_merge_the_old_websocket_setting() -> None:
    settings = Settings(ALLOWED_ORIGINS=[H5], ALLOWED_WS_ORIGINS=["https://live.example.com", H5])
    assert settings.browser_origins == [H5, "https://live.example.com"]


async def test_configured_origins_get_cors_and_others_get_none(settings: Settings, database: None) -> None:
    app = app_with(settings, allowed_origins=[H5])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        preflight = await http.options("/graphql", headers={"Origin": H5, **PREFLIGHT})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == H5
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        post = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": H5})
        assert post.headers["access-control-allow-origin"] == H5

        refused = await http.options("/graphql", headers={"Origin": EVIL, **PREFLIGHT})
        assert refused.status_code == 400
        assert not any(h.startswith("access-control-") for h in refused.headers)
        other = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": EVIL})
        assert not any(h.startswith("access-control-") for h in other.headers)


async def test_without_configured_origins_there_is_no_cors(client: httpx.AsyncClient, database: None) -> None:
    preflight = await client.options("/graphql", headers={"Origin": H5, **PREFLIGHT})
    assert preflight.status_code == 405
    post = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": H5})
    assert not any(h.startswith("access-control-") for h in post.headers)


async def test_the_websocket_admits_configured_origins_from_either_setting(
    settings: Settings, database: None
) -> None:
    app = app_with(settings, allowed_origins=[H5], allowed_ws_origins=["https://live.example.com"])
    async with live_server(app) as base:
        url = base.replace("http", "ws", 1) + "/graphql"
        for origin in (H5, "https://live.example.com"):
            async with connect(
                url, origin=Origin(origin), subprotocols=[Subprotocol("graphql-transport-ws")]
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin=Origin(EVIL), subprotocols=[Subprotocol("graphql-transport-ws")]):
                pass
        assert refused.value.response.status_code == 403


# --- Static assets and GraphiQL -----------------------------------------------------------------------------------


def test_vendored_files_match_their_manifest_hashes() -> None:
    assets = vendor_assets()
    assert {"graphql-ws", "graphiql", "react", "react-dom"} <= set(assets)
    for asset in assets.values():
        digest = hashlib.sha384((STATIC_DIR / asset.path).read_bytes()).digest()
        assert asset.integrity == "sha384-" + base64.b64encode(digest).decode(), asset.path


async def test_static_assets_are_served_with_long_caching(client: httpx.AsyncClient) -> None:
    asset = vendor_assets()["graphql-ws"]
    response = await client.get(asset.url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in response.headers["content-type"]
    again = await client.get(asset.url, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert (await client.get("/static/vendor/nope.js")).status_code == 404
    assert (await client.get("/static/../main.py")).status_code == 404


async def test_graphiql_loads_nothing_from_a_cdn(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "<title>Lianmall GraphiQL</title>" in page.text
    assert "https://" not in page.text and "//unpkg" not in page.text
    for asset in vendor_assets().values():
        if asset.package.startswith(("graphiql", "@graphiql", "react")):
            assert f'"{asset.url}" integrity="{asset.integrity}"' in page.text


def test_the_readme_shows_the_served_graphql_ws_build() -> None:
    from infra.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    asset = vendor_assets()["graphql-ws"]
    assert f'<script src="{asset.url}"' in readme and f'integrity="{asset.integrity}"' in readme
