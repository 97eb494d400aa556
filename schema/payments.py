"""Staff refunds: the `Refund` type, the `refundOrder` input and its payload. Money is integer fen."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import Payment as PaymentModel
from models import PaymentStage as PaymentStageModel
from models import PaymentStatus as PaymentStatusModel
from models import Refund as RefundModel
from models import RefundStatus as RefundStatusModel
from schema.catalog_inputs import UserError
from schema.node import Node, encode_id
from schema.orders import Order

RefundStatus = strawberry.enum(
    RefundStatusModel,
    name="RefundStatus",
    description="PENDING until WeChat Pay's refund notification says SUCCEEDED (or FAILED).",
)


PaymentStage = strawberry.enum(PaymentStageModel, name="PaymentStage")


@strawberry.type(description="One refunded line of a partial refund.")
class RefundLine:
    line_id: strawberry.ID
    quantity: int


PaymentStatus = strawberry.enum(
    PaymentStatusModel,
    name="PaymentStatus",
    description="PENDING until WeChat Pay's payment notification says SUCCEEDED; CLOSED when paying could not "
    "start.",
)


@strawberry.type(description="One attempt to pay an order through WeChat Pay (a prepay and its outcome).")
class Payment(Node):
    order_id: strawberry.ID
    out_trade_no: str = strawberry.field(description="Our trade number at WeChat Pay.")
    amount: int = strawberry.field(description="Fen.")
    status: PaymentStatus
    transaction_id: str | None = strawberry.field(description="WeChat Pay's transaction number, once paid.")
    sandbox: bool = strawberry.field(
        description="Made with the built-in WeChat sandbox (embedded default only): no money moved."
    )
    stage: PaymentStage = strawberry.field(
        description="FULL, or the DEPOSIT then BALANCE of an order paid in two (a presale)."
    )
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def from_model(cls, m: PaymentModel) -> Payment:
        return cls(
            id=encode_id("Payment", m.id),
            order_id=encode_id("Order", m.order_id),  # type: ignore[attr-defined]
            out_trade_no=m.out_trade_no,
            amount=m.amount,
            status=m.status,
            transaction_id=m.transaction_id,
            sandbox=m.sandbox,
            stage=m.stage,
            created_at=m.created_at,
            paid_at=m.paid_at,
        )


@strawberry.type(description="Money going back to the member through WeChat Pay's refund API.")
class Refund(Node):
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


@strawberry.type(description="The order after the sandbox's payment notification was settled (PAID).")
class SandboxPayPayload:
    order: Order | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
