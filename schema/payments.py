"""Staff refunds: the `Refund` type, the `refundOrder` input and its payload. Money is integer fen."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import Refund as RefundModel
from models import RefundStatus as RefundStatusModel
from schema.catalog_inputs import UserError
from schema.node import encode_id

RefundStatus = strawberry.enum(
    RefundStatusModel,
    name="RefundStatus",
    description="PENDING until WeChat Pay's refund notification says SUCCEEDED (or FAILED).",
)


@strawberry.type(description="One refunded line of a partial refund.")
class RefundLine:
    line_id: strawberry.ID
    quantity: int


@strawberry.type(description="Money going back to the member through WeChat Pay's refund API.")
class Refund:
    id: strawberry.ID
    order_id: strawberry.ID
    out_refund_no: str = strawberry.field(description="Our refund number at WeChat Pay.")
    amount: int = strawberry.field(description="Fen refunded.")
    status: RefundStatus
    reason: str
    lines: list[RefundLine]
    created_at: datetime
    succeeded_at: datetime | None

    @classmethod
    def from_model(cls, m: RefundModel) -> Refund:
        return cls(
            id=encode_id("Refund", m.id),
            order_id=encode_id("Order", m.order_id),  # type: ignore[attr-defined]
            out_refund_no=m.out_refund_no,
            amount=m.amount,
            status=m.status,
            reason=m.reason,
            lines=[
                RefundLine(line_id=encode_id("OrderLine", int(x["line_id"])), quantity=int(x["quantity"]))
                for x in m.lines or []
                if isinstance(x, dict)
            ],
            created_at=m.created_at,
            succeeded_at=m.succeeded_at,
        )


@strawberry.input(description="One line to refund and how many of its units.")
class RefundLineInput:
    line_id: strawberry.ID
    quantity: int


@strawberry.input(description="What to refund of a paid order.")
class RefundOrderInput:
    reason: str = strawberry.field(description="Why; shown to the member by WeChat (first 80 characters).")
    amount: int | None = strawberry.field(
        default=None,
        description="Fen to refund. Omitted: the lines' share of what was paid, or without lines everything "
        "not yet refunded.",
    )
    lines: list[RefundLineInput] = strawberry.field(
        default_factory=list,
        description="Lines refunded (their stock goes back if the order was not shipped); empty for money only.",
    )


@strawberry.type
class RefundOrderPayload:
    refund: Refund | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
