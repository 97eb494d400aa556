"""Staff roles, the audit log, partner API keys and who may introspect.

A shop's back office: the admin hires a warehouse clerk and an operator, the clerk may not list products but the
operator may, the clerk is promoted and then leaves (the token dies at once), every attempt is in the audit log
with its input summarized and no secret in it. A partner gets an API key, reads the schema, cannot write, and
loses access the moment the key is revoked.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from models import ApiKey, AuditLog, Member, Staff, StaffRole
from resolvers.access import AccessMutation
from schema.context import make_context
from schema.node import encode_id
from schema.query_guard import validate_query
from schema.root import CatalogMutation, schema
from services.access import api_keys, audit
from services.access.permissions import ROLE_PERMISSIONS, Permission, require_scope
from services.access.staff import authenticate_staff, create_staff
from services.catalog import lookups
from services.errors import DomainError, ErrorCode
from services.members.tokens import issue_tokens
from services.members.viewer import ANONYMOUS, Viewer
from tests.graphql_client import gql

ERRORS = "errors { field message code }"
CATEGORY_CREATE = f"""
mutation($input: CategoryCreateInput!) {{ categoryCreate(input: $input) {{ category {{ id }} {ERRORS} }} }}"""
PRODUCT_CREATE = f"""
mutation($input: ProductCreateInput!) {{ productCreate(input: $input) {{ product {{ id title }} {ERRORS} }} }}"""
TAG_CREATE = f"mutation($input: TagCreateInput!) {{ tagCreate(input: $input) {{ tag {{ id }} {ERRORS} }} }}"
STAFF_CREATE = f"""
mutation($input: StaffCreateInput!) {{
  staffCreate(input: $input) {{ staff {{ id name role active permissions }} token {ERRORS} }}
}}"""
STAFF_UPDATE_ROLE = f"""
mutation($id: ID!, $role: StaffRole!) {{ staffUpdateRole(id: $id, role: $role) {{ staff {{ role }} {ERRORS} }} }}"""
STAFF_DEACTIVATE = f"""
mutation($id: ID!) {{ staffDeactivate(id: $id) {{ staff {{ id active }} {ERRORS} }} }}"""
STAFF_ME = "{ staffMe { name role permissions } }"
STAFF_ACCOUNTS = """
query($after: String) {
  staffAccounts(first: 2, after: $after) {
    totalCount edges { cursor node { id name role active } } pageInfo { hasNextPage endCursor }
  }
}"""
AUDIT_LOG = """
query($action: String) {
  auditLog(first: 50, action: $action) {
    totalCount
    edges { node { staffId staffName action target inputSummary succeeded createdAt } }
  }
}"""
API_KEY_CREATE = f"""
mutation($input: ApiKeyCreateInput!) {{
  apiKeyCreate(input: $input) {{ apiKey {{ id name prefix scopes revokedAt }} key {ERRORS} }}
}}"""
API_KEY_REVOKE = f"mutation($id: ID!) {{ apiKeyRevoke(id: $id) {{ apiKey {{ id revokedAt }} {ERRORS} }} }}"
API_KEYS = "{ apiKeys(first: 100) { edges { node { id prefix scopes lastUsedAt revokedAt } } } }"
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Product") { name fields { name } } }'


def unique(prefix: str) -> str:
    """A name no other test uses: tests share one database."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def own_shop(seeded: None) -> Iterator[None]:
    # Staff write into the default shop, which the demo seed owns and its tests inspect: write into ours. And
    # seed first: catalog tests take the first root category for the demo's, so ours must come after it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lookups, "SHOP_CODE", unique("access-test-"))
        yield


async def staff_token(role: StaffRole) -> str:
    _, token = await create_staff(unique(f"{role.value.lower()}-"), role)
    return token


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> str:
    return await staff_token(StaffRole.ADMIN)


async def partner_key(client: httpx.AsyncClient, admin: str, scopes: list[str]) -> tuple[str, str]:
    """A new partner key made through the API: (its id, the plaintext key)."""
    payload = await ok(client, API_KEY_CREATE, {"input": {"name": unique("ERP-"), "scopes": scopes}}, admin)
    return payload["apiKey"]["id"], payload["key"]


async def member_token() -> str:
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(4).upper())
    return (await issue_tokens(member)).access_token


async def mutate(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """The single root field's payload of a mutation."""
    body = await gql(client, query, variables, token=token)
    (payload,) = body["data"].values()
    return payload


async def ok(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> Any:
    payload = await mutate(client, query, variables, token)
    assert payload["errors"] == [], payload["errors"]
    return payload


async def leaf_category(client: httpx.AsyncClient, admin: str) -> str:
    parent: str | None = None
    for _ in range(3):
        payload = await ok(
            client, CATEGORY_CREATE, {"input": {"name": unique("类"), "parentId": parent}}, admin
        )
        parent = payload["category"]["id"]
    assert parent is not None
    return parent


def product_input(category: str, **extra: Any) -> dict[str, Any]:
    return {"title": unique("围巾 "), "categoryId": category, "skus": [{"price": 9900, "stock": 5}], **extra}


async def audit_entries(client: httpx.AsyncClient, admin: str, action: str) -> list[dict[str, Any]]:
    body = await gql(client, AUDIT_LOG, {"action": action}, token=admin)
    return [e["node"] for e in body["data"]["auditLog"]["edges"]]


async def error_code(client: httpx.AsyncClient, query: str, token: str | None = None) -> str:
    body = await gql(client, query, token=token, expect_errors=True)
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


# --- Roles -----------------------------------------------------------------------------------------------


async def test_the_role_table() -> None:
    assert ROLE_PERMISSIONS[StaffRole.ADMIN] == frozenset(Permission)
    assert Permission.CATALOG_WRITE in ROLE_PERMISSIONS[StaffRole.OPERATOR]
    assert Permission.MEMBER_PHONE_READ in ROLE_PERMISSIONS[StaffRole.CUSTOMER_SERVICE]
    assert ROLE_PERMISSIONS[StaffRole.WAREHOUSE] == {Permission.ORDER_READ, Permission.ORDER_SHIP}
    for role in (StaffRole.OPERATOR, StaffRole.CUSTOMER_SERVICE, StaffRole.WAREHOUSE):
        managing = {Permission.STAFF_MANAGE, Permission.API_KEY_MANAGE, Permission.AUDIT_READ}
        assert not ROLE_PERMISSIONS[role] & managing, role


def test_every_staff_mutation_declares_its_permission() -> None:
    for root in (CatalogMutation, AccessMutation):
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            resolver = field.base_resolver.wrapped_func
            assert isinstance(getattr(resolver, "permission", None), Permission), field.python_name
            assert resolver.action == field.graphql_name or resolver.action == _camel(field.python_name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize(
    ("caller", "code"),
    [
        ("anonymous", "UNAUTHENTICATED"),
        ("member", "FORBIDDEN"),
        ("partner", "FORBIDDEN"),
        (StaffRole.WAREHOUSE, "FORBIDDEN"),
        (StaffRole.CUSTOMER_SERVICE, "FORBIDDEN"),
        (StaffRole.OPERATOR, None),
        (StaffRole.ADMIN, None),
    ],
)
async def test_who_may_list_a_product(
    client: httpx.AsyncClient, admin: str, caller: StaffRole | str, code: str | None
) -> None:
    category = await leaf_category(client, admin)
    if caller == "anonymous":
        token = None
    elif caller == "member":
        token = await member_token()
    elif caller == "partner":
        _, token = await partner_key(client, admin, ["catalog:read", "orders:read"])
    else:
        assert isinstance(caller, StaffRole)
        token = await staff_token(caller)
    before = await Staff.all().count(), await AuditLog.all().count()

    payload = await mutate(client, PRODUCT_CREATE, {"input": product_input(category)}, token)
    tag = await mutate(client, TAG_CREATE, {"input": {"name": unique("标")}}, token)

    if code is None:
        assert payload["errors"] == [] and payload["product"]["id"]
        assert tag["errors"] == []
    else:
        assert [e["code"] for e in payload["errors"]] == [code]
        assert payload["product"] is None
        assert [e["code"] for e in tag["errors"]] == [code]
    if not isinstance(caller, StaffRole):
        # Nobody to record: no audit row for callers who are not staff.
        assert (await Staff.all().count(), await AuditLog.all().count()) == before


async def test_staff_me_shows_role_and_permissions(client: httpx.AsyncClient) -> None:
    body = await gql(client, STAFF_ME, token=await staff_token(StaffRole.WAREHOUSE))
    assert body["data"]["staffMe"]["role"] == "WAREHOUSE"
    assert body["data"]["staffMe"]["permissions"] == ["ORDER_READ", "ORDER_SHIP"]
    assert (await gql(client, STAFF_ME))["data"]["staffMe"] is None


async def test_admin_hires_promotes_and_lets_go_and_the_token_dies_at_once(
    client: httpx.AsyncClient, admin: str
) -> None:
    category = await leaf_category(client, admin)
    name = unique("小李-")
    hired = await ok(client, STAFF_CREATE, {"input": {"name": name, "role": "WAREHOUSE"}}, admin)
    clerk, token = hired["staff"], hired["token"]
    assert token.startswith("stf_")
    assert clerk == {
        "id": clerk["id"],
        "name": name,
        "role": "WAREHOUSE",
        "active": True,
        "permissions": ["ORDER_READ", "ORDER_SHIP"],
    }
    assert (await gql(client, STAFF_ME, token=token))["data"]["staffMe"]["name"] == name

    refused = await mutate(client, PRODUCT_CREATE, {"input": product_input(category)}, token)
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]

    promoted = await ok(client, STAFF_UPDATE_ROLE, {"id": clerk["id"], "role": "OPERATOR"}, admin)
    assert promoted["staff"]["role"] == "OPERATOR"
    await ok(client, PRODUCT_CREATE, {"input": product_input(category)}, token)

    gone = await ok(client, STAFF_DEACTIVATE, {"id": clerk["id"]}, admin)
    assert gone["staff"]["active"] is False
    response = await client.post(
        "/graphql", json={"query": STAFF_ME}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    taken = await mutate(client, STAFF_CREATE, {"input": {"name": name, "role": "ADMIN"}}, admin)
    assert [(e["field"], e["code"]) for e in taken["errors"]] == [("input.name", "CONFLICT")]


async def test_only_admins_manage_staff_and_keys(client: httpx.AsyncClient) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    attempts = [
        (STAFF_CREATE, {"input": {"name": unique("x-"), "role": "ADMIN"}}),
        (API_KEY_CREATE, {"input": {"name": "ERP", "scopes": ["catalog:read"]}}),
        (STAFF_UPDATE_ROLE, {"id": encode_id("StaffAccount", 1), "role": "WAREHOUSE"}),
        (STAFF_DEACTIVATE, {"id": encode_id("StaffAccount", 1)}),
        (API_KEY_REVOKE, {"id": encode_id("ApiKey", 1)}),
    ]
    for query, variables in attempts:
        payload = await mutate(client, query, variables, operator)
        assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"], query
    for query in (STAFF_ACCOUNTS, AUDIT_LOG, API_KEYS):
        body = await gql(client, query, token=operator, expect_errors=True)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], query
        assert body["data"] is None, "a non-null connection refused takes the whole answer with it"


async def test_staff_accounts_page_through(client: httpx.AsyncClient, admin: str) -> None:
    first = (await gql(client, STAFF_ACCOUNTS, token=admin))["data"]["staffAccounts"]
    assert len(first["edges"]) == 2 and first["pageInfo"]["hasNextPage"]
    assert first["totalCount"] == await Staff.all().count()
    after = first["pageInfo"]["endCursor"]
    second = (await gql(client, STAFF_ACCOUNTS, {"after": after}, token=admin))["data"]["staffAccounts"]
    seen = {e["node"]["id"] for e in first["edges"]}
    assert seen.isdisjoint(e["node"]["id"] for e in second["edges"])


# --- The audit log ---------------------------------------------------------------------------------------


async def test_every_staff_mutation_is_audited_with_a_short_summary_and_no_secrets(
    client: httpx.AsyncClient, admin: str
) -> None:
    category = await leaf_category(client, admin)
    operator_name = unique("运营-")
    operator = (
        await ok(client, STAFF_CREATE, {"input": {"name": operator_name, "role": "OPERATOR"}}, admin)
    )["token"]
    clerk, warehouse = await create_staff(unique("仓库-"), StaffRole.WAREHOUSE)
    long_description = "羊绒" * 400
    pasted_token = admin  # a careless operator pastes a token into a product field
    made = await ok(
        client,
        PRODUCT_CREATE,
        {
            "input": product_input(
                category,
                description=long_description,
                subtitle=pasted_token,
                tagIds=[],
                media=[{"url": f"https://img.example.com/{i}.jpg"} for i in range(30)],
            )
        },
        operator,
    )
    product_id = made["product"]["id"]
    failed = await mutate(client, PRODUCT_CREATE, {"input": product_input(category, title="")}, operator)
    assert failed["errors"]
    refused = await mutate(client, PRODUCT_CREATE, {"input": product_input(category)}, warehouse)
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]

    entries = await audit_entries(client, admin, "productCreate")
    success = next(e for e in entries if e["target"] == product_id)
    assert success["staffName"] == operator_name and success["succeeded"] is True
    summary = success["inputSummary"]["input"]
    assert summary["description"].startswith("羊绒" * 60) and len(summary["description"]) < 200
    assert summary["description"].endswith(f"(+{len(long_description) - audit.MAX_STRING} chars)")
    assert summary["subtitle"] == audit.REDACTED
    assert summary["categoryId"] == category
    assert len(summary["media"]) == audit.MAX_ITEMS + 1 and summary["media"][-1] == "…(+10 items)"
    assert summary["media"][0] == {"url": "https://img.example.com/0.jpg", "kind": "IMAGE"}

    mine = [e for e in entries if e["staffName"] == operator_name]
    assert [e["succeeded"] for e in mine] == [False, True]  # newest first
    assert mine[0]["inputSummary"]["input"]["title"] == ""
    (refusal,) = [e for e in entries if e["staffName"] == clerk.name]
    assert refusal["succeeded"] is False and refusal["target"] == ""
    assert refusal["staffId"] == encode_id("StaffAccount", clerk.id)

    # The tokens and keys the API hands out never reach the log.
    hired = await audit_entries(client, admin, "staffCreate")
    assert any(e["inputSummary"] == {"input": {"name": operator_name, "role": "OPERATOR"}} for e in hired)
    _, key = await partner_key(client, admin, ["orders:read"])
    every = [
        e
        for a in ("staffCreate", "apiKeyCreate", "productCreate")
        for e in await audit_entries(client, admin, a)
    ]
    text = repr(every)
    assert operator not in text and admin not in text and key not in text and "stf_" not in text


async def test_anonymous_attempts_leave_no_row(client: httpx.AsyncClient) -> None:
    before = await AuditLog.all().count()
    payload = await mutate(client, TAG_CREATE, {"input": {"name": unique("标")}}, None)
    assert [e["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
    assert await AuditLog.all().count() == before


async def test_updates_and_deletes_name_their_target(client: httpx.AsyncClient, admin: str) -> None:
    clerk = (await ok(client, STAFF_CREATE, {"input": {"name": unique("w-"), "role": "WAREHOUSE"}}, admin))[
        "staff"
    ]["id"]
    await ok(client, STAFF_DEACTIVATE, {"id": clerk}, admin)
    entry = next(e for e in await audit_entries(client, admin, "staffDeactivate") if e["target"] == clerk)
    assert entry["succeeded"] and entry["inputSummary"] == {"id": clerk}


def test_summaries_drop_secret_arguments_and_cut_what_is_long() -> None:
    summary = audit.summarize_input(
        {
            "token": "abc",
            "input": {"password": "hunter2", "refreshToken": "rt_x", "apiKey": "x", "name": "ok", "n": 3},
            "note": "x" * 500,
            "ids": list(range(50)),
            "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}},
        }
    )
    assert "token" not in summary
    assert summary["input"] == {"name": "ok", "n": 3}
    assert len(summary["note"]) < 150
    assert len(summary["ids"]) == audit.MAX_ITEMS + 1
    assert "…" in repr(summary["deep"])


# --- Partner API keys ------------------------------------------------------------------------------------


async def test_partner_key_is_shown_once_stored_as_a_digest_and_dies_when_revoked(
    client: httpx.AsyncClient, admin: str
) -> None:
    key_id, key = await partner_key(client, admin, ["orders:read", "catalog:read", "catalog:read"])
    assert key.startswith("pk_") and len(key) > 40
    row = await ApiKey.get(key_hash=api_keys._digest(key))
    assert row.scopes == ["catalog:read", "orders:read"]
    assert key not in repr(await ApiKey.filter(id=row.id).values())

    partner = await api_keys.authenticate_api_key(key)
    assert partner is not None and partner.scopes == {"catalog:read", "orders:read"}
    assert (await gql(client, "{ categories { id } }", token=key))["data"]["categories"]

    listed = (await gql(client, API_KEYS, token=admin))["data"]["apiKeys"]["edges"]
    mine = next(e["node"] for e in listed if e["node"]["id"] == key_id)
    assert mine["prefix"] == key[: api_keys.SHOWN_CHARS] and mine["lastUsedAt"] and mine["revokedAt"] is None
    fields = (await gql(client, '{ __type(name: "ApiKey") { fields { name } } }', token=admin))["data"]
    assert {f["name"] for f in fields["__type"]["fields"]} == {
        "id",
        "name",
        "prefix",
        "scopes",
        "createdAt",
        "lastUsedAt",
        "revokedAt",
    }

    revoked = await ok(client, API_KEY_REVOKE, {"id": key_id}, admin)
    assert revoked["apiKey"]["revokedAt"]
    assert await api_keys.authenticate_api_key(key) is None
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await api_keys.authenticate_api_key("pk_" + secrets.token_urlsafe(32)) is None


async def test_key_scopes_are_checked(client: httpx.AsyncClient, admin: str) -> None:
    bad = await mutate(
        client, API_KEY_CREATE, {"input": {"name": " ", "scopes": ["orders:read", "orders:write"]}}, admin
    )
    assert [(e["field"], e["code"]) for e in bad["errors"]] == [
        ("input.name", "BAD_USER_INPUT"),
        ("input.scopes[1]", "BAD_USER_INPUT"),
    ]
    empty = await mutate(client, API_KEY_CREATE, {"input": {"name": "ERP", "scopes": []}}, admin)
    assert [e["field"] for e in empty["errors"]] == ["input.scopes"]

    _, key = await partner_key(client, admin, ["orders:read"])
    partner = await api_keys.authenticate_api_key(key)
    viewer = Viewer(partner=partner)
    require_scope(viewer, "orders:read")
    for who, scope, code in (
        (viewer, "members:read", ErrorCode.FORBIDDEN),
        (ANONYMOUS, "orders:read", ErrorCode.UNAUTHENTICATED),
    ):
        with pytest.raises(DomainError) as refused:
            require_scope(who, scope)
        assert refused.value.code is code


async def test_a_partner_bypasses_the_response_cache(client: httpx.AsyncClient, admin: str) -> None:
    _, key = await partner_key(client, admin, ["catalog:read"])
    partner = await api_keys.authenticate_api_key(key)
    assert Viewer(partner=partner).cache_scope is None
    assert ANONYMOUS.cache_scope == "public"


# --- Introspection ---------------------------------------------------------------------------------------


async def test_anonymous_callers_may_not_introspect_but_typename_works(client: httpx.AsyncClient) -> None:
    for query in (
        INTROSPECTION,
        TYPE_INTROSPECTION,
        "query { products(first: 1) { __typename } __schema { description } }",
    ):
        body = await gql(client, query, expect_errors=True)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], query
        assert "staff token or a partner API key" in body["errors"][0]["message"]
    assert (await gql(client, "{ __typename }"))["data"] == {"__typename": "Query"}
    assert await error_code(client, INTROSPECTION, await member_token()) == "FORBIDDEN"


async def test_staff_and_partners_may_introspect(client: httpx.AsyncClient, admin: str) -> None:
    _, key = await partner_key(client, admin, ["catalog:read"])
    for token in (admin, await staff_token(StaffRole.WAREHOUSE), key):
        body = await gql(client, INTROSPECTION, token=token)
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
        assert (await gql(client, TYPE_INTROSPECTION, token=token))["data"]["__type"]["name"] == "Product"


async def test_debug_opens_introspection_to_everyone(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "debug", True)
    body = await gql(client, INTROSPECTION)
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_the_introspection_rule_keeps_the_validation_cache_hitting(
    client: httpx.AsyncClient, admin: str
) -> None:
    # Per caller the rule tuple is equal from request to request, so the validation memo keeps hitting (#4635).
    cache = validate_query
    staff_viewer = Viewer(staff=await authenticate_staff(admin))
    query = "{ brands { id } }"
    for viewer in (ANONYMOUS, staff_viewer):
        await schema.execute(query, context_value=make_context(viewer))
    before = cache.cache_info().hits
    for _ in range(3):
        for viewer in (ANONYMOUS, staff_viewer):
            result = await schema.execute(query, context_value=make_context(viewer))
            assert result.errors is None
    assert cache.cache_info().hits >= before + 6
