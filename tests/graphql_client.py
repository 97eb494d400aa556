"""A small helper to send GraphQL over the test client."""

from __future__ import annotations

from typing import Any

import httpx

from tests.error_fields import error_field_problems


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    expect_errors: bool = False,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    body = response.json()
    assert_error_fields(query, body)
    if not expect_errors:
        assert "errors" not in body, body.get("errors")
    return body


def assert_error_fields(query: str, body: dict[str, Any]) -> None:
    """Every error `field` in the answer names an argument path of the field that reported it."""
    from schema.root import schema

    problems = error_field_problems(schema._schema, query, body)
    assert not problems, "errors name something that is not an input field:\n" + "\n".join(problems)
