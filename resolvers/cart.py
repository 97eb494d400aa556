"""The signed-in member's cart: `cart` and the cart mutations. Thin: decode IDs, call services.orders.cart."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.payloads import payload_mutation
from schema.cart import Cart, CartPayload
from schema.context import Context
from schema.node import decode_id
from services.errors import DomainError, ErrorCode
from services.orders import cart

CartInfo = Info[Context, None]


def member_id(info: CartInfo) -> int:
    """The viewing member; UNAUTHENTICATED for a guest, FORBIDDEN for staff and partners."""
    viewer = info.context.viewer
    if viewer.member is not None:
        return viewer.member.id
    if viewer.is_anonymous:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in as a member to shop")
    raise DomainError(ErrorCode.FORBIDDEN, "Only members have a cart and orders")


async def _cart(member: int) -> Cart:
    who = await cart.shopper(member)
    view = await cart.cart_view(member, who.price, free_shipping=who.free_shipping, level_id=who.level_id)
    return Cart.from_view(view)


async def my_cart(info: CartInfo) -> Cart:
    return await _cart(member_id(info))


def _sku_pk(id: strawberry.ID, field: str = "skuId") -> int:
    return decode_id(id, "Sku", field)


@payload_mutation
async def cart_add_item(info: CartInfo, sku_id: strawberry.ID, quantity: int = 1) -> CartPayload:
    member = member_id(info)
    await cart.add_item(member, _sku_pk(sku_id), quantity)
    return CartPayload(cart=await _cart(member))


@payload_mutation
async def cart_update_item(info: CartInfo, sku_id: strawberry.ID, quantity: int) -> CartPayload:
    member = member_id(info)
    await cart.update_item(member, _sku_pk(sku_id), quantity)
    return CartPayload(cart=await _cart(member))


@payload_mutation
async def cart_remove_items(info: CartInfo, sku_ids: list[strawberry.ID]) -> CartPayload:
    member = member_id(info)
    await cart.remove_items(member, [_sku_pk(i, "skuIds") for i in sku_ids])
    return CartPayload(cart=await _cart(member))


@payload_mutation
async def cart_select(info: CartInfo, sku_ids: list[strawberry.ID], selected: bool) -> CartPayload:
    member = member_id(info)
    await cart.select(member, [_sku_pk(i, "skuIds") for i in sku_ids], selected)
    return CartPayload(cart=await _cart(member))


@strawberry.type
class CartQuery:
    cart: Cart = strawberry.field(resolver=my_cart, description="The signed-in member's cart.")


@strawberry.type
class CartMutation:
    cart_add_item: CartPayload = strawberry.mutation(
        resolver=cart_add_item, description="Add to the cart; the total per SKU is bounded by stock and 99."
    )
    cart_update_item: CartPayload = strawberry.mutation(
        resolver=cart_update_item, description="Set a line's quantity; 0 removes it."
    )
    cart_remove_items: CartPayload = strawberry.mutation(resolver=cart_remove_items)
    cart_select: CartPayload = strawberry.mutation(
        resolver=cart_select, description="Tick or untick lines for checkout."
    )
