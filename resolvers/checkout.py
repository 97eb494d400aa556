"""`checkoutPreview`, `placeOrder` and `orderPay`. Thin: decode the input, call services.orders.checkout."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import DeliveryMethod
from resolvers.cart import member_id
from resolvers.payloads import payload_mutation
from schema.catalog_inputs import user_errors
from schema.checkout import (
    CampaignInput,
    CheckoutInput,
    CheckoutPreview,
    CheckoutPreviewPayload,
    OrderPayPayload,
    PayParams,
    PlaceOrderPayload,
)
from schema.context import Context
from schema.node import decode_any, decode_id
from schema.orders import Order
from services.errors import DomainError, ErrorCode
from services.orders import checkout
from services.orders.campaigns import CampaignKind, CampaignRef

CheckoutInfo = Info[Context, None]


MAX_COUPONS = 10


def checkout_request(input: CheckoutInput) -> checkout.CheckoutRequest:
    """The service request a CheckoutInput asks for; DomainError for what cannot be decoded."""
    if input.coupon_ids is not None and len(input.coupon_ids) > MAX_COUPONS:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED, f"At most {MAX_COUPONS} coupons per order", "input.couponIds"
        )
    return checkout.CheckoutRequest(
        address_id=decode_id(input.address_id, "Address", "input.addressId") if input.address_id else None,
        items=tuple(
            checkout.ItemRequest(
                decode_id(item.sku_id, "Sku", f"input.items[{i}].skuId"),
                item.quantity,
                _campaign(item.campaign, f"input.items[{i}].campaign.id") if item.campaign else None,
            )
            for i, item in enumerate(input.items or ())
        ),
        from_cart=input.from_cart,
        delivery=DeliveryMethod(input.delivery),
        points_to_use=input.points_to_use,
        note=input.note,
        coupons=None
        if input.coupon_ids is None
        else tuple(
            decode_id(gid, "MemberCoupon", f"input.couponIds[{i}]") for i, gid in enumerate(input.coupon_ids)
        ),
    )


def _campaign(campaign: CampaignInput, field: str) -> CampaignRef:
    node, id_ = decode_any(campaign.id, field)
    return CampaignRef(CampaignKind(campaign.kind), id_, node)


@payload_mutation
async def checkout_preview(info: CheckoutInfo, input: CheckoutInput) -> CheckoutPreviewPayload:
    preview = await checkout.checkout_preview(member_id(info), checkout_request(input))
    return CheckoutPreviewPayload(preview=CheckoutPreview.from_preview(preview))


@payload_mutation
async def place_order(info: CheckoutInfo, input: CheckoutInput, idempotency_key: str) -> PlaceOrderPayload:
    placed = await checkout.place(member_id(info), checkout_request(input), idempotency_key)
    order = placed.order
    payload = PlaceOrderPayload(order=Order.from_model(order))
    if order.status == checkout.OrderStatus.PENDING_PAYMENT and order.payable > 0:
        try:
            payload.pay_params = PayParams.from_data(await checkout.request_payment(order, placed.new_order))
        except DomainError as exc:
            payload.errors = user_errors(exc)
    return payload


@payload_mutation
async def order_pay(info: CheckoutInfo, order_id: strawberry.ID) -> OrderPayPayload:
    order = await checkout.member_order(member_id(info), decode_id(order_id, "Order", "orderId"))
    params = await checkout.request_payment(order)
    return OrderPayPayload(order=Order.from_model(order), pay_params=PayParams.from_data(params))


@strawberry.type
class CheckoutQuery:
    checkout_preview: CheckoutPreviewPayload = strawberry.field(
        resolver=checkout_preview, description="What placeOrder would charge now; nothing is reserved."
    )


@strawberry.type
class CheckoutMutation:
    place_order: PlaceOrderPayload = strawberry.mutation(
        resolver=place_order,
        description="Reserve stock and create the order (all or nothing), then start WeChat Pay. The same "
        "idempotencyKey returns the same order.",
    )
    order_pay: OrderPayPayload = strawberry.mutation(
        resolver=order_pay, description="WeChat Pay parameters again for a pending order."
    )
