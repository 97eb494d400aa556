"""Subscriptions: events from the cross-process bus, filtered for one subscriber."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from infra.runtime import current_runtime
from schema.context import Context
from schema.live import StockChanged
from schema.node import decode_id, encode_id
from services.catalog.events import stock_channel
from services.errors import DomainError, ErrorCode


async def product_stock_changed(
    info: Info[Context, None], product_id: strawberry.ID
) -> AsyncGenerator[StockChanged, None]:
    pk = decode_id(product_id, "Product", "productId")
    # A fresh context: the connection's own lives as long as the socket, and its loaders would go stale.
    product = await info.context.fresh().loaders.product.load(pk)
    if product is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such product", "productId")
    async with current_runtime().bus.subscribe(stock_channel(pk)) as events:
        async for event in events:
            yield StockChanged(
                product_id=encode_id("Product", event["productId"]),
                sku_id=encode_id("Sku", event["skuId"]),
                stock=event["stock"],
            )
