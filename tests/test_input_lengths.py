"""Every string input of every mutation and query has a length limit that is checked before the database.

The cases come from the schema itself (introspection of the Query and Mutation types), so a new field or input is
covered the day it is added: each string argument and each string field of an input object gets an over-long
value while everything else holds something plausible. The answer must be BAD_USER_INPUT naming that field (list
indexes aside; a foreign cursor is INVALID_CURSOR), never INTERNAL_SERVER_ERROR. IDs point at rows that do not
exist, so a write that reaches the database before checking its input shows up as NOT_FOUND instead. Each case
is sent as staff, then as a member if staff may not use the field.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)

from models import Member, StaffRole
from schema.node import encode_id
from schema.root import schema
from services.access.staff import create_staff
from services.catalog import lookups
from services.members.tokens import issue_tokens
from tests.graphql_client import gql

# Longer than any string the API accepts (the longest limit is an article body's 50,000 characters).
OVERLONG = "长" + "x" * 59_999
MISSING_PK = 2_000_000_000
# Plausible values by field name, so that only the over-long field is wrong.
PLAUSIBLE: dict[str, Any] = {
    "name": "测试",
    "nickname": "林晓",
    "title": "测试商品",
    "phone": "13800138000",
    "province": "广东省",
    "city": "深圳市",
    "district": "南山区",
    "detail": "科技园 1 号",
    "code": "code-" + "1" * 8,
    "token": "rt_" + "1" * 20,
    "idempotencyKey": "key-1",
    "carrier": "顺丰速运",
    "trackingNumber": "SF1234567890",
    "reason": "不想要了",
    "note": "请尽快发货",
    "barcode": "6901234567890",
    "value": "红",
    "values": ["红"],
    "scopes": ["catalog:read"],
    "iv": "AAAAAAAAAAAAAAAAAAAAAA==",
    "encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==",
    "url": "https://img.example.com/a.png",
    "iconUrl": "https://img.example.com/a.png",
    "logoUrl": "https://img.example.com/a.png",
    "avatarUrl": "https://img.example.com/a.png",
    "birthday": "2000-01-01",
    "scheduledStart": "2030-01-01T10:00:00+08:00",
    "scheduledEnd": "2030-01-01T12:00:00+08:00",
}
_EXPECTED_TYPE = re.compile(r"Expected an? (\w+) ID")


@dataclass(frozen=True)
class Case:
    root: str  # "query" or "mutation"
    field: str
    path: tuple[str, ...]  # argument, then input fields

    @property
    def label(self) -> str:
        return f"{self.field}.{'.'.join(self.path)}"


def _unwrap(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _string_paths(
    type_: GraphQLInputType, path: tuple[str, ...], seen: frozenset[str]
) -> Iterator[tuple[str, ...]]:
    named = _unwrap(type_)
    if isinstance(named, GraphQLScalarType) and named.name == "String":
        yield path
    elif isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        for name, field in named.fields.items():
            yield from _string_paths(field.type, (*path, name), seen | {named.name})


def _root(root: str) -> GraphQLObjectType:
    root_type = schema._schema.mutation_type if root == "mutation" else schema._schema.query_type
    assert root_type is not None
    return root_type


def cases() -> list[Case]:
    found = [
        Case(root, name, path)
        for root in ("query", "mutation")
        for name, field in _root(root).fields.items()
        for arg_name, arg in field.args.items()
        for path in _string_paths(arg.type, (arg_name,), frozenset())
    ]
    assert len(found) > 60, "the schema has fewer string inputs than expected: is introspection working?"
    return found


def _value(type_: Any, name: str, target: tuple[str, ...] | None, ids: dict[str, str]) -> Any:
    """A value for an input of `type_` called `name`; `target` is the rest of the path to the over-long field."""
    if isinstance(type_, GraphQLNonNull):
        return _value(type_.of_type, name, target, ids)
    if isinstance(type_, GraphQLList):
        if isinstance(_unwrap(type_), GraphQLScalarType) and name in PLAUSIBLE and target is None:
            return PLAUSIBLE[name]
        return [_value(type_.of_type, name, target, ids)]
    if isinstance(type_, GraphQLScalarType):
        if type_.name == "String":
            return OVERLONG if target == () else PLAUSIBLE.get(name, "x")
        if type_.name == "ID":
            return ids.get(name) or encode_id(
                name[0].upper() + name[1:-2] if name.endswith("Id") else "Nope", MISSING_PK
            )
        if type_.name == "Int":
            return 1
        if type_.name == "Boolean":
            return False
        if type_.name == "Date":
            return PLAUSIBLE["birthday"]
        if type_.name == "DateTime":
            return PLAUSIBLE.get(name, "2030-01-01T08:00:00+08:00")
        if type_.name == "JSON":
            return {}
        raise AssertionError(f"no plausible value for the scalar {type_.name}: add one")
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    assert isinstance(type_, GraphQLInputObjectType)
    value: dict[str, Any] = {}
    for field_name, field in type_.fields.items():
        rest = target[1:] if target and target[0] == field_name else None
        if rest is not None or isinstance(field.type, GraphQLNonNull):
            value[field_name] = _value(field.type, field_name, rest, ids)
    return value


def _type_string(type_: Any) -> str:
    if isinstance(type_, GraphQLNonNull):
        return _type_string(type_.of_type) + "!"
    if isinstance(type_, GraphQLList):
        return f"[{_type_string(type_.of_type)}]"
    return str(type_.name)


def _selection(type_: Any) -> str:
    """A payload's `errors { field code message }` (also of nested per-row results), else `__typename`."""
    named = _unwrap(type_)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return ""
    if not isinstance(named, GraphQLObjectType) or "errors" not in named.fields:
        return "{ __typename }"
    parts = ["errors { field code message }"]
    for name, field in named.fields.items():
        inner = _unwrap(field.type)
        if name != "errors" and isinstance(inner, GraphQLObjectType) and "errors" in inner.fields:
            parts.append(f"{name} {{ errors {{ field code message }} }}")
    return "{ " + " ".join(parts) + " }"


def _errors(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "errors" and isinstance(value, list):
                yield from value
            else:
                yield from _errors(value)
    elif isinstance(data, list):
        for item in data:
            yield from _errors(item)


def _unindexed(field: str | None) -> str:
    return re.sub(r"\[\d+\]", "", field or "")


@pytest.fixture(autouse=True)
def own_shop() -> Iterator[None]:
    # Staff write into the default shop, which the demo seed owns and its tests inspect: write into ours.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lookups, "SHOP_CODE", f"lengths-{secrets.token_hex(4)}")
        yield


@pytest.fixture(scope="module")
async def tokens(seeded: None) -> list[str]:
    """A staff token and a member token: each case is sent as whoever the field lets through."""
    _, staff = await create_staff(f"lengths-{secrets.token_hex(3)}", StaffRole.ADMIN)
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    return [staff, (await issue_tokens(member)).access_token]


async def _send(
    client: httpx.AsyncClient, case: Case, ids: dict[str, str], token: str
) -> list[dict[str, Any]]:
    """The errors of one request (top-level ones flattened to `{field, code, message}`)."""
    field = _root(case.root).fields[case.field]
    variables = {
        name: _value(arg.type, name, case.path[1:] if name == case.path[0] else None, ids)
        for name, arg in field.args.items()
        if name == case.path[0] or isinstance(arg.type, GraphQLNonNull)
    }
    declared = ", ".join(f"${n}: {_type_string(field.args[n].type)}" for n in variables)
    passed = ", ".join(f"{n}: ${n}" for n in variables)
    query = (
        f"{case.root}{f'({declared})' if declared else ''} "
        f"{{ {case.field}{f'({passed})' if passed else ''} {_selection(field.type)} }}"
    )
    body = await gql(client, query, variables, token=token, expect_errors=True)
    top = [
        {
            "field": e.get("extensions", {}).get("field"),
            "code": e.get("extensions", {}).get("code"),
            "message": e["message"],
        }
        for e in body.get("errors") or []
    ]
    return top + list(_errors(body.get("data")))


async def _answer(client: httpx.AsyncClient, case: Case, tokens: list[str]) -> list[dict[str, Any]]:
    ids: dict[str, str] = {}
    for token in tokens:
        for _ in range(6):  # learn the type of each ID argument from INVALID_ID answers
            errors = await _send(client, case, ids, token)
            wrong_type = [
                (e["field"], m.group(1))
                for e in errors
                if e["code"] == "INVALID_ID" and (m := _EXPECTED_TYPE.search(e["message"]))
            ]
            if not wrong_type:
                break
            for id_field, type_name in wrong_type:
                ids[_unindexed(id_field).rsplit(".", 1)[-1]] = encode_id(type_name, MISSING_PK)
        if not any(e["code"] in ("UNAUTHENTICATED", "FORBIDDEN") for e in errors):
            break  # this caller may use the field
    return errors


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.label)
async def test_an_over_long_string_is_refused_naming_the_field(
    client: httpx.AsyncClient, tokens: list[str], case: Case
) -> None:
    errors = await _answer(client, case, tokens)
    assert all(e["code"] != "INTERNAL_SERVER_ERROR" for e in errors), (case.label, errors)
    wanted = ".".join(case.path)
    # A cursor is not free text: one that is not ours is INVALID_CURSOR, whatever its length.
    codes = {"INVALID_CURSOR"} if case.path == ("after",) else {"BAD_USER_INPUT"}
    assert any(e["code"] in codes and _unindexed(e["field"]) == wanted for e in errors), (case.label, errors)


TAXONOMY_NAMES = [
    ("tagCreate", "tag", 32),
    ("brandCreate", "brand", 64),
    ("categoryCreate", "category", 32),
]


@pytest.mark.parametrize(("mutation", "result", "limit"), TAXONOMY_NAMES)
async def test_taxonomy_names_are_accepted_up_to_their_column_and_refused_past_it(
    client: httpx.AsyncClient, tokens: list[str], mutation: str, result: str, limit: int
) -> None:
    """The reported case: a 33-character tag name was INTERNAL_SERVER_ERROR (the uniqueness lookup ran first)."""
    query = (
        f"mutation($name: String!) {{ {mutation}(input: {{name: $name}}) "
        f"{{ {result} {{ id name }} errors {{ field code message }} }} }}"
    )
    fits = secrets.token_hex(limit)[:limit]
    body = await gql(client, query, {"name": fits}, token=tokens[0])
    assert body["data"][mutation]["errors"] == [] and body["data"][mutation][result]["name"] == fits
    update = mutation.replace("Create", "Update")
    renamed = await gql(
        client,
        f"mutation($id: ID!, $name: String!) {{ {update}(id: $id, input: {{name: $name}}) "
        f"{{ errors {{ field code }} }} }}",
        {"id": body["data"][mutation][result]["id"], "name": fits + "x"},
        token=tokens[0],
    )
    assert renamed["data"][update]["errors"] == [{"field": "input.name", "code": "BAD_USER_INPUT"}]
    for name in (fits + "x", "名" * (limit + 1)):
        refused = await gql(client, query, {"name": name}, token=tokens[0])
        errors = refused["data"][mutation]["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [("input.name", "BAD_USER_INPUT")], errors
        assert str(limit) in errors[0]["message"]
