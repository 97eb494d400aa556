"""A small helper to send GraphQL over the test client."""

from __future__ import annotations

from typing import Any

import httpx


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
    if not expect_errors:
        assert "errors" not in body, body.get("errors")
    return body
