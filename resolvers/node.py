"""`node(id:)`: any object with a global ID."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import PointsEntry as PointsEntryModel
from models import ProductMedia
from resolvers.catalog import visible
from resolvers.members import member_node
from resolvers.orders import order_for_viewer
from schema.addresses import Address
from schema.catalog import Brand, Category, Media, Product, Sku, Tag
from schema.context import Context
from schema.loyalty import PointsEntry
from schema.node import Node, decode_any
from services.errors import DomainError, ErrorCode


async def node(info: Info[Context, None], id: strawberry.ID) -> Node | None:
    type_name, pk = decode_any(id)
    loaders = info.context.loaders
    match type_name:
        case "Product":
            product = await loaders.product.load(pk)
            return Product.from_model(product) if product and visible(product.status, info.context) else None
        case "Sku":
            sku = await loaders.sku.load(pk)
            if sku is None:
                return None
            owner = await loaders.product.load(sku.product_id)
            return Sku.from_model(sku) if owner and visible(owner.status, info.context) else None
        case "Category":
            category = await loaders.category.load(pk)
            return Category.from_model(category) if category else None
        case "Brand":
            brand = await loaders.brand.load(pk)
            return Brand.from_model(brand) if brand else None
        case "Tag":
            tag = await loaders.tag.load(pk)
            return Tag.from_model(tag) if tag else None
        case "Address":
            member = info.context.viewer.member
            if member is None:
                return None
            address = await info.context.member_loaders.address.load(pk)
            # Another member's address is answered exactly like a missing one.
            return Address.from_model(address) if address and address.member_id == member.id else None
        case "PointsEntry":
            # Ledger rows are their member's alone: anyone else gets null, as for a row that does not exist.
            member = info.context.viewer.member
            if member is None:
                return None
            entry = await PointsEntryModel.get_or_none(id=pk, member_id=member.id)
            return PointsEntry.from_model(entry) if entry else None
        case "Member":
            return await member_node(info, pk)
        case "Order":
            # The owner's, or any for staff with ORDER_READ; anyone else gets null, as for a missing order.
            return await order_for_viewer(info.context.viewer, pk)
        case "Media":
            media = await ProductMedia.get_or_none(id=pk)
            return Media.from_model(media) if media else None
    raise DomainError(ErrorCode.INVALID_ID, f"No object type is called {type_name}", "id")


@strawberry.type
class NodeQuery:
    node: Node | None = strawberry.field(resolver=node, description="Any object by its global ID.")
