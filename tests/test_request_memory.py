"""What a served request leaves behind: nothing that only the cyclic garbage collector could free.

A server collects its young generation rarely (infra/gc_tuning.py), so anything a request leaves in a reference
cycle (its context, its loaders and every row they cached) stays in memory until a middle or full collection:
that was ~80 MB per worker under the benchmark's cold load.
"""

from __future__ import annotations

import gc

import httpx

from infra.settings import Settings
from models import Product, ProductStatus
from schema.context import Context
from schema.node import encode_id

LISTING = (
    "query($c: ID!) { products(first: 20, filter: {categoryId: $c}) { edges { node { id title "
    "price { min max } skus { id price stock specValues { name value } } brand { name } tags { name } } } } }"
)


def _contexts() -> list[Context]:
    return [o for o in gc.get_objects() if isinstance(o, Context)]


async def test_a_cold_listing_leaves_no_context_for_the_cyclic_collector(
    settings: Settings, seeded: None, runtime: object
) -> None:
    from main import create_app

    app = create_app(settings.model_copy(update={"response_cache": False}), manage_resources=False)
    product = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").first()
    assert product is not None
    body = {"query": LISTING, "variables": {"c": encode_id("Category", product.category_id)}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.post("/graphql", json=body)  # first use: memoised documents, prepared statements
        gc.collect()
        assert _contexts() == []
        gc.disable()
        try:
            response = await client.post("/graphql", json=body)
            left = _contexts()
        finally:
            gc.enable()
    payload = response.json()
    assert response.status_code == 200 and "errors" not in payload
    assert payload["data"]["products"]["edges"]  # the loaders did load rows
    assert left == []
