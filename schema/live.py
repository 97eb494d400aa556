"""Types delivered over subscriptions."""

from __future__ import annotations

import strawberry


@strawberry.type(description="A SKU's stock changed (on any server process).")
class StockChanged:
    product_id: strawberry.ID
    sku_id: strawberry.ID
    stock: int
