"""Checkout: the input, the preview and the placeOrder / orderPay payloads."""

from __future__ import annotations

import strawberry

from schema.catalog_inputs import UserError
from schema.coupons import CheckoutCoupon, checkout_coupons
from schema.node import encode_id
from schema.orders import CampaignKind, DeliveryMethod, Order
from schema.pricing import AppliedDiscount
from services.orders.checkout import Preview
from services.payments.wechat_pay import PayParams as PayParamsData


@strawberry.input(description="Buy an item through a campaign: its kind and the campaign's own ID.")
class CampaignInput:
    kind: CampaignKind
    id: strawberry.ID


@strawberry.input(description="One item bought now, without the cart.")
class CheckoutItemInput:
    sku_id: strawberry.ID
    quantity: int
    campaign: CampaignInput | None = strawberry.field(
        default=None,
        description="Buy at a campaign's price (flash sale, group buy, ...) instead of the shelf.",
    )


@strawberry.input(description="What to buy: `items` (buy now) or `fromCart: true` (the selected cart lines).")
class CheckoutInput:
    address_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for EXPRESS delivery."
    )
    items: list[CheckoutItemInput] | None = None
    from_cart: bool = False
    delivery: DeliveryMethod = DeliveryMethod.EXPRESS
    points_to_use: int = strawberry.field(
        default=0, description="At most the allowed share of the goods is paid with points; extra is unused."
    )
    note: str = strawberry.field(default="", description="To the shop, at most 200 characters.")
    coupon_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="The held coupons (MemberCoupon IDs) to use. Omitted or null: the best combination is "
        "picked for the shopper; []: no coupon. A chosen coupon that cannot be used is an error naming it.",
    )


@strawberry.type(description="A gift a promotion adds to the order at no cost (while its stock lasts).")
class CheckoutGift:
    sku_id: strawberry.ID
    quantity: int
    promotion_id: strawberry.ID
    title: str = strawberry.field(description="The promotion's title.")


@strawberry.type(description="A line as the order would snapshot it.")
class CheckoutLine:
    sku_id: strawberry.ID
    title: str
    spec: str
    image_url: str
    unit_price: int
    quantity: int
    line_total: int
    discount: int = strawberry.field(description="Fen of the promotions and coupons prorated onto this line.")
    points_discount: int = strawberry.field(description="Fen of this line paid with points.")
    paid: int = strawberry.field(description="Fen paid for this line: lineTotal - discount - pointsDiscount.")


@strawberry.type(description="Money in fen: payable = itemsTotal - discount + shippingFee - pointsDiscount.")
class CheckoutPreview:
    lines: list[CheckoutLine]
    items_total: int
    discount: int
    shipping_fee: int
    points_used: int
    points_discount: int
    payable: int
    discounts: list[AppliedDiscount] = strawberry.field(
        description="Every discount applied, in pipeline order, with its source."
    )
    gifts: list[CheckoutGift] = strawberry.field(
        default_factory=list, description="Gifts promotions add; placeOrder adds them as free lines."
    )
    coupons: list[CheckoutCoupon] = strawberry.field(
        description="Every coupon the shopper holds: usable here or not (and why), and which are used."
    )

    @classmethod
    def from_preview(cls, p: Preview) -> CheckoutPreview:
        q = p.quote
        return cls(
            lines=[
                CheckoutLine(
                    sku_id=encode_id("Sku", line.sku_id),
                    title=line.title,
                    spec=line.spec,
                    image_url=line.image_url,
                    unit_price=line.unit_price,
                    quantity=line.quantity,
                    line_total=line.line_total,
                    discount=q.line_discounts[i],
                    points_discount=q.line_points[i],
                    paid=q.line_paid(i),
                )
                for i, line in enumerate(p.lines)
            ],
            items_total=q.items_total,
            discount=q.discount,
            shipping_fee=q.shipping_fee,
            points_used=q.points_used,
            points_discount=q.points_discount,
            payable=q.payable,
            discounts=[AppliedDiscount.from_data(d) for d in q.discounts],
            gifts=[
                CheckoutGift(
                    sku_id=encode_id("Sku", g.sku_id),
                    quantity=g.quantity,
                    promotion_id=encode_id("Promotion", g.source_id),
                    title=g.title,
                )
                for g in q.gifts
            ],
            coupons=checkout_coupons(p.pricing.memo),
        )


@strawberry.type(description="Pass these to `wx.requestPayment` as they are.")
class PayParams:
    app_id: str
    time_stamp: str
    nonce_str: str
    package: str
    sign_type: str
    pay_sign: str

    @classmethod
    def from_data(cls, p: PayParamsData) -> PayParams:
        return cls(
            app_id=p.app_id,
            time_stamp=p.time_stamp,
            nonce_str=p.nonce_str,
            package=p.package,
            sign_type=p.sign_type,
            pay_sign=p.pay_sign,
        )


@strawberry.type
class CheckoutPreviewPayload:
    preview: CheckoutPreview | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(
    description="The order, even when paying could not start (`payParams` null, error PAYMENT_UNAVAILABLE: "
    "retry with `orderPay`). A free order is already PAID and has no payParams."
)
class PlaceOrderPayload:
    order: Order | None = None
    pay_params: PayParams | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderPayPayload:
    order: Order | None = None
    pay_params: PayParams | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
