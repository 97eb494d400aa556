"""The signed-in member's cart as the mini-program shows it: lines, lines by shop, and the summary."""

from __future__ import annotations

import strawberry

from schema.catalog import Sku
from schema.catalog_inputs import UserError
from services.orders.cart import CartLine as CartLineData
from services.orders.cart import CartView
from services.orders.cart import LineProblem as LineProblemModel
from services.orders.pricing import Quote

CartLineProblem = strawberry.enum(
    LineProblemModel, name="CartLineProblem", description="Why a cart line cannot be bought now."
)


@strawberry.type(description="Money in fen: payable = itemsTotal - discount + shipping.")
class CartSummary:
    items_total: int
    discount: int
    shipping: int
    payable: int

    @classmethod
    def from_quote(cls, q: Quote) -> CartSummary:
        return cls(items_total=q.items_total, discount=q.discount, shipping=q.shipping_fee, payable=q.payable)


@strawberry.type(description="One SKU in the cart. Unavailable lines stay, flagged with their problem.")
class CartLine:
    sku: Sku
    quantity: int
    selected: bool
    unit_price: int = strawberry.field(description="Fen, at this quantity, for this member.")
    line_total: int = strawberry.field(description="Fen: unitPrice × quantity.")
    available: bool
    problem: CartLineProblem | None

    @classmethod
    def from_line(cls, line: CartLineData) -> CartLine:
        return cls(
            sku=Sku.from_model(line.sku),
            quantity=line.item.quantity,
            selected=line.item.selected,
            unit_price=line.unit_price,
            line_total=line.line_total,
            available=line.available,
            problem=line.problem,
        )


@strawberry.type
class CartShop:
    name: str


@strawberry.type
class CartGroup:
    shop: CartShop
    lines: list[CartLine]


@strawberry.type(description="The member's cart; the summary counts the available selected lines.")
class Cart:
    lines: list[CartLine]
    groups: list[CartGroup]
    summary: CartSummary

    @classmethod
    def from_view(cls, view: CartView) -> Cart:
        lines = {id(line): CartLine.from_line(line) for line in view.lines}
        return cls(
            lines=list(lines.values()),
            groups=[
                CartGroup(shop=CartShop(name=g.shop.name), lines=[lines[id(line)] for line in g.lines])
                for g in view.groups
            ],
            summary=CartSummary.from_quote(view.summary),
        )


@strawberry.type
class CartPayload:
    cart: Cart | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
