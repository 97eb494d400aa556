"""The README's example queries run against the demo shop exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from models import Product, ProductStatus
from schema.node import encode_id
from tests.graphql_client import gql

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_every_readme_operation_is_valid_against_the_schema() -> None:
    from graphql import parse, validate

    from schema.root import schema

    graphql_schema = schema._schema
    for block in _blocks():
        errors = validate(graphql_schema, parse(block))
        assert not errors, (block, errors)


async def test_readme_queries_run(seeded: None, client: httpx.AsyncClient) -> None:
    product = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").first()
    assert product is not None
    # Queries whose only required variable is a product id run as written; the others need a session.
    queries = [
        b for b in _blocks() if b.lstrip().startswith("query") and not re.search(r"\$(?!id\b)\w+: \w+!", b)
    ]
    assert len(queries) >= 2
    for query in queries:
        variables = {"id": encode_id("Product", product.id)} if "$id" in query else {}
        body = await gql(client, query, variables)
        assert body["data"], query
    inline = re.search(r"`(\{ categories \{.*?\} \})`", README.read_text(encoding="utf-8"))
    assert inline is not None
    tree = await gql(client, inline.group(1))
    # Other tests' shops may add root categories before the demo shop is seeded: find the demo tree.
    roots = tree["data"]["categories"]
    assert any(child["children"] for root in roots for child in root["children"]), roots


async def test_readme_lists_every_setting() -> None:
    from infra.settings import Settings

    text = README.read_text(encoding="utf-8")
    aliases = [f.alias for f in Settings.model_fields.values() if f.alias]
    missing = [a for a in aliases if f"`{a}`" not in text]
    assert not missing, f"README misses settings: {missing}"


def test_debug_defaults_on_only_for_the_embedded_default() -> None:
    from infra.settings import Settings

    assert Settings(DEBUG=None, DATABASE_URL=None).debug is True
    assert Settings(DEBUG=None, DATABASE_URL="postgres://db/shop").debug is False
    assert Settings(DEBUG=False).debug is False
