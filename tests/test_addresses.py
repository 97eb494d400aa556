"""A member's delivery addresses through the GraphQL endpoint: a shopper adds her home and office, makes the
office the default, moves house, deletes the old one; bad input is refused field by field and writes nothing;
there are never more than 20 addresses nor other than one default, also under concurrent requests."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest

from infra.query_counter import count_queries
from models import Address, Member, StaffRole
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.members import addresses
from services.members.tokens import issue_tokens
from tests.graphql_client import gql

ERRORS = "errors { field message code }"
FIELDS = "id name phone province city district detail isDefault"
CREATE = f"""
mutation($input: AddressInput!) {{ addressCreate(input: $input) {{ address {{ {FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""
mutation($id: ID!, $input: AddressUpdateInput!) {{
  addressUpdate(id: $id, input: $input) {{ address {{ {FIELDS} }} {ERRORS} }}
}}"""
DELETE = f"mutation($id: ID!) {{ addressDelete(id: $id) {{ deletedId {ERRORS} }} }}"
SET_DEFAULT = f"mutation($id: ID!) {{ addressSetDefault(id: $id) {{ address {{ id isDefault }} {ERRORS} }} }}"
MY_ADDRESSES = f"{{ myAddresses {{ {FIELDS} }} }}"

HOME = {
    "name": "林晓",
    "phone": "13800138000",
    "province": "广东省",
    "city": "深圳市",
    "district": "南山区",
    "detail": "科技园南路 88 号 1 栋 101",
}
OFFICE = {
    "name": "林晓",
    "phone": "0755-86013388",
    "province": "广东",
    "city": "深圳",
    "district": "福田区",
    "detail": "深南大道 1 号 20 楼",
}


async def new_member() -> tuple[Member, str]:
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    return member, (await issue_tokens(member)).access_token


def address(**changes: Any) -> dict[str, Any]:
    return {**HOME, **changes}


async def payload(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """The single root field's payload of a mutation."""
    (result,) = (await gql(client, query, variables, token=token))["data"].values()
    return result


async def ok(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> Any:
    result = await payload(client, query, variables, token)
    assert result["errors"] == [], result["errors"]
    return result


async def mine(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return (await gql(client, MY_ADDRESSES, token=token))["data"]["myAddresses"]


async def rows(member: Member) -> list[tuple[Any, ...]]:
    """Everything stored of the member's addresses, to show a refused write changed nothing."""
    return [
        tuple(a.values())
        for a in await Address.filter(member_id=member.id)
        .order_by("id")
        .values("id", "name", "phone", "province", "city", "district", "detail", "is_default", "updated_at")
    ]


async def defaults(member: Member) -> int:
    return await Address.filter(member_id=member.id, is_default=True).count()


# --- A shopper's addresses -------------------------------------------------------------------------------


async def test_a_shopper_keeps_her_addresses_with_exactly_one_default(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    assert await mine(client, token) == []

    home = (await ok(client, CREATE, {"input": address(isDefault=False)}, token))["address"]
    assert home["isDefault"] is True, "a first address is the default whatever it asked"
    assert {k: home[k] for k in HOME} == HOME

    office = (await ok(client, CREATE, {"input": {**OFFICE, "isDefault": True}}, token))["address"]
    # Short names are taken and stored in full.
    assert (office["province"], office["city"], office["district"]) == ("广东省", "深圳市", "福田区")
    assert office["isDefault"] is True
    parents = (await ok(client, CREATE, {"input": address(name="林父", district="罗湖区")}, token))["address"]
    assert parents["isDefault"] is False

    listed = await mine(client, token)
    assert [a["id"] for a in listed] == [office["id"], parents["id"], home["id"]], "default, then newest"
    assert [a["isDefault"] for a in listed] == [True, False, False]

    moved = await ok(
        client,
        UPDATE,
        {"id": home["id"], "input": {"city": "广州", "district": "天河区", "phone": "139 0000 1111"}},
        token,
    )
    assert {k: moved["address"][k] for k in ("city", "district", "phone", "name", "isDefault")} == {
        "city": "广州市",
        "district": "天河区",
        "phone": "13900001111",
        "name": "林晓",
        "isDefault": False,
    }

    made = await ok(client, SET_DEFAULT, {"id": home["id"]}, token)
    assert made["address"] == {"id": home["id"], "isDefault": True}
    first = (await mine(client, token))[0]
    assert (first["id"], first["isDefault"]) == (home["id"], True)
    assert await defaults(member) == 1
    again = await ok(client, SET_DEFAULT, {"id": home["id"]}, token)
    assert again["address"]["isDefault"] is True and await defaults(member) == 1

    by_update = await ok(client, UPDATE, {"id": office["id"], "input": {"isDefault": True}}, token)
    assert by_update["address"]["isDefault"] is True
    assert [a["id"] for a in await mine(client, token) if a["isDefault"]] == [office["id"]]

    # Deleting the default promotes the newest remaining address.
    deleted = await ok(client, DELETE, {"id": office["id"]}, token)
    assert deleted["deletedId"] == office["id"]
    listed = await mine(client, token)
    assert [(a["id"], a["isDefault"]) for a in listed] == [(parents["id"], True), (home["id"], False)]

    await ok(client, DELETE, {"id": home["id"]}, token)
    await ok(client, DELETE, {"id": parents["id"]}, token)
    assert await mine(client, token) == []
    again_first = (await ok(client, CREATE, {"input": address()}, token))["address"]
    assert again_first["isDefault"] is True


async def test_the_default_cannot_simply_be_switched_off(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    home = (await ok(client, CREATE, {"input": address()}, token))["address"]
    before = await rows(member)
    refused = await payload(
        client, UPDATE, {"id": home["id"], "input": {"isDefault": False, "name": "X"}}, token
    )
    assert refused["address"] is None
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("input.isDefault", "BAD_USER_INPUT")]
    assert await rows(member) == before


async def test_a_municipality_address_names_a_district_of_it(client: httpx.AsyncClient) -> None:
    _, token = await new_member()
    created = await ok(
        client, CREATE, {"input": address(province="北京", city="北京市", district="朝阳")}, token
    )
    assert [created["address"][k] for k in ("province", "city", "district")] == ["北京市", "北京市", "朝阳区"]
    county = await ok(
        client, CREATE, {"input": address(province="重庆市", city="县", district="忠县")}, token
    )
    assert [county["address"][k] for k in ("city", "district")] == ["重庆市", "忠县"]


# --- Bad input -------------------------------------------------------------------------------------------

BAD_INPUT = [
    pytest.param({"phone": "12345678901"}, ["input.phone"], id="phone-not-a-mobile"),
    pytest.param({"phone": "1380013800"}, ["input.phone"], id="phone-too-short"),
    pytest.param({"phone": "755-12345678"}, ["input.phone"], id="landline-without-leading-zero"),
    pytest.param({"phone": "  "}, ["input.phone"], id="phone-missing"),
    pytest.param({"name": "   "}, ["input.name"], id="name-blank"),
    pytest.param({"name": "名" * 33}, ["input.name"], id="name-too-long"),
    pytest.param({"detail": ""}, ["input.detail"], id="detail-missing"),
    pytest.param({"detail": "路" * 201}, ["input.detail"], id="detail-too-long"),
    pytest.param({"district": " "}, ["input.district"], id="district-missing"),
    pytest.param({"province": "火星省"}, ["input.province"], id="unknown-province"),
    pytest.param({"province": "香港特别行政区"}, ["input.province"], id="outside-the-mainland"),
    pytest.param({"city": "杭州市"}, ["input.city"], id="city-not-in-province"),
    pytest.param({"province": "上海市", "city": "上海市", "district": "南山区"}, ["input.district"], id="not-a-district-of-shanghai"),
    pytest.param({"province": "上海市", "city": "杭州市", "district": "黄浦区"}, ["input.city"], id="municipality-city"),
    pytest.param({"name": "", "phone": "x", "city": "杭州市"}, ["input.name", "input.phone", "input.city"], id="all-at-once"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "fields"), BAD_INPUT)
async def test_bad_input_is_refused_field_by_field_and_writes_nothing(
    client: httpx.AsyncClient, changes: dict[str, Any], fields: list[str]
) -> None:
    member, token = await new_member()
    home = (await ok(client, CREATE, {"input": address()}, token))["address"]
    before = await rows(member)

    created = await payload(client, CREATE, {"input": address(**changes, isDefault=True)}, token)
    assert created["address"] is None
    assert [e["field"] for e in created["errors"]] == fields
    assert {e["code"] for e in created["errors"]} == {"BAD_USER_INPUT"}
    assert all(e["message"] for e in created["errors"])

    updated = await payload(
        client, UPDATE, {"id": home["id"], "input": {**changes, "isDefault": True}}, token
    )
    assert updated["address"] is None
    assert [e["field"] for e in updated["errors"]] == fields
    assert await rows(member) == before


async def test_an_update_is_checked_against_the_rest_of_the_address(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    home = (await ok(client, CREATE, {"input": address()}, token))["address"]
    before = await rows(member)
    moved = await payload(client, UPDATE, {"id": home["id"], "input": {"city": "杭州市"}}, token)
    assert [(e["field"], e["code"]) for e in moved["errors"]] == [("input.city", "BAD_USER_INPUT")]
    assert "广东省" in moved["errors"][0]["message"]
    assert await rows(member) == before
    # Province and city changed together fit.
    await ok(client, UPDATE, {"id": home["id"], "input": {"province": "浙江", "city": "杭州市"}}, token)


async def test_ids_that_are_not_addresses_are_refused(client: httpx.AsyncClient) -> None:
    _, token = await new_member()
    for query in (DELETE, SET_DEFAULT):
        refused = await payload(client, query, {"id": encode_id("Product", 1)}, token)
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [("id", "INVALID_ID")]
        missing = await payload(client, query, {"id": encode_id("Address", 2**31 - 1)}, token)
        assert [(e["field"], e["code"]) for e in missing["errors"]] == [("id", "NOT_FOUND")]


# --- Who may --------------------------------------------------------------------------------------------


async def test_guests_must_sign_in_and_staff_have_no_addresses(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    home = (await ok(client, CREATE, {"input": address()}, token))["address"]
    before = await rows(member)
    _, staff = await create_staff(f"cs-{secrets.token_hex(4)}", StaffRole.ADMIN)
    for caller, code in ((None, "UNAUTHENTICATED"), (staff, "FORBIDDEN")):
        attempts = [
            (CREATE, {"input": address()}),
            (UPDATE, {"id": home["id"], "input": {"name": "X"}}),
            (DELETE, {"id": home["id"]}),
            (SET_DEFAULT, {"id": home["id"]}),
        ]
        for query, variables in attempts:
            result = await payload(client, query, variables, caller)
            assert [e["code"] for e in result["errors"]] == [code], (query, result)
        listed = await gql(client, MY_ADDRESSES, token=caller, expect_errors=True)
        assert listed["data"] is None
        assert listed["errors"][0]["extensions"]["code"] == code
        seen = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": home["id"]}, token=caller)
        assert seen["data"]["node"] is None
    assert await rows(member) == before


# --- Limits and races ------------------------------------------------------------------------------------


async def test_the_21st_address_is_refused(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    for i in range(addresses.MAX_ADDRESSES):
        draft = addresses.AddressDraft(**{**HOME, "detail": f"{HOME['detail']} {i}"})
        await addresses.create_address(member.id, draft)
    before = await rows(member)
    refused = await payload(client, CREATE, {"input": address(isDefault=True)}, token)
    assert refused["address"] is None
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [(None, "LIMIT_EXCEEDED")]
    assert await rows(member) == before
    assert len(await mine(client, token)) == addresses.MAX_ADDRESSES

    # Deleting one makes room again.
    await ok(client, DELETE, {"id": encode_id("Address", before[0][0])}, token)
    await ok(client, CREATE, {"input": address()}, token)
    assert await defaults(member) == 1


@pytest.mark.parametrize("is_default", [False, True], ids=["plain", "each-asking-to-be-default"])
async def test_ten_concurrent_first_addresses_leave_one_default(
    client: httpx.AsyncClient, is_default: bool
) -> None:
    member, token = await new_member()
    await mine(client, token)  # the member's session is warm: the race is between the writes
    results = await asyncio.gather(
        *(payload(client, CREATE, {"input": address(detail=f"{i} 号", isDefault=is_default)}, token)
          for i in range(10))
    )  # fmt: skip
    assert all(r["errors"] == [] for r in results), results
    assert await Address.filter(member_id=member.id).count() == 10
    assert await defaults(member) == 1
    answered_default = [r["address"]["id"] for r in results if r["address"]["isDefault"]]
    if is_default:
        # Each became the default in turn; the one stored as default is the last one written.
        (stored,) = await Address.filter(member_id=member.id, is_default=True).values_list("id", flat=True)
        assert encode_id("Address", stored) in answered_default
    else:
        assert len(answered_default) == 1


async def test_concurrent_creates_never_pass_the_limit(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    for i in range(15):
        await addresses.create_address(member.id, addresses.AddressDraft(**{**HOME, "detail": f"{i} 号"}))
    results = await asyncio.gather(
        *(payload(client, CREATE, {"input": address(detail=f"新 {i} 号", isDefault=True)}, token)
          for i in range(10))
    )  # fmt: skip
    codes = sorted(e["code"] for r in results for e in r["errors"])
    assert codes == ["LIMIT_EXCEEDED"] * 5
    assert sum(r["address"] is not None for r in results) == 5
    assert await Address.filter(member_id=member.id).count() == addresses.MAX_ADDRESSES
    assert await defaults(member) == 1


async def test_concurrent_default_changes_and_deletes_leave_one_default(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    ids = [
        (await ok(client, CREATE, {"input": address(detail=f"{i} 号")}, token))["address"]["id"]
        for i in range(8)
    ]
    default_id = ids[0]
    others = ids[1:]
    await asyncio.gather(
        *(payload(client, SET_DEFAULT, {"id": i}, token) for i in others[:4]),
        payload(client, DELETE, {"id": default_id}, token),
        *(payload(client, DELETE, {"id": i}, token) for i in others[4:6]),
    )
    assert await Address.filter(member_id=member.id).count() == 5
    assert await defaults(member) == 1


# --- Cost ------------------------------------------------------------------------------------------------


async def test_addresses_load_in_one_statement_per_loader(client: httpx.AsyncClient) -> None:
    _, token = await new_member()
    ids = [
        (await ok(client, CREATE, {"input": address(detail=f"{i} 号")}, token))["address"]["id"]
        for i in range(3)
    ]
    nodes = " ".join(f'n{i}: node(id: "{gid}") {{ id }}' for i, gid in enumerate(ids))
    query = f"{{ myAddresses {{ id }} {nodes} }}"
    await gql(client, query, token=token)
    with count_queries() as counter:
        data = (await gql(client, query, token=token))["data"]
    assert [data[f"n{i}"]["id"] for i in range(3)] == ids
    assert {decode_id(a["id"], "Address") for a in data["myAddresses"]} == {
        decode_id(i, "Address") for i in ids
    }
    touching = [s for s in counter.statements if "addresses" in s]
    assert len(touching) == 2, touching
