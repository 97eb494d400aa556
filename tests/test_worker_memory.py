"""Worker memory: what a worker imports, and what a served request leaves behind.

Search reads pinyin from its own table (services/catalog/pinyin.py), not from pypinyin's ~50 MB of dictionaries;
the in-process Redis stand-in is only imported on the embedded default. And a served request leaves nothing that
only the cyclic garbage collector could free: a server collects its young generation rarely (infra/gc_tuning.py), so anything a request leaves in a reference
cycle (its context, its loaders and every row they cached) stays in memory until a middle or full collection:
that was ~80 MB per worker under the benchmark's cold load.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys

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


def test_a_worker_on_real_redis_reads_pinyin_without_pypinyin_or_the_redis_stand_in() -> None:
    script = (
        "import sys, main\n"
        "main.create_app()\n"
        "from services.catalog.search import search_document\n"
        "print(search_document('连衣裙'))\n"
        "print(sorted(m for m in ('pypinyin', 'fakeredis') if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "WECHAT_SANDBOX": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["连衣裙|lianyiqun|lyq", "[]"]
