"""The pricing pipeline's discounts as checkout previews them and orders keep them."""

from __future__ import annotations

from typing import Any

import strawberry

from schema.node import encode_id
from services.orders.pipeline import AppliedDiscount as AppliedDiscountData
from services.orders.pipeline import DiscountSource as DiscountSourceModel
from services.orders.pipeline import Stage as StageModel

PricingStage = strawberry.enum(
    StageModel,
    name="PricingStage",
    description="The pricing pipeline's stages, in the order they apply: CAMPAIGN, LIMITED_TIME, THRESHOLD, "
    "COUPON, POINTS, SHIPPING.",
)
DiscountSource = strawberry.enum(DiscountSourceModel, description="What granted a discount.")

_SOURCE_NODE = {DiscountSourceModel.PROMOTION: "Promotion", DiscountSourceModel.COUPON: "Coupon"}


@strawberry.type(description="A discount the pricing pipeline applied, and where it came from.")
class AppliedDiscount:
    stage: PricingStage
    source: DiscountSource
    source_id: strawberry.ID = strawberry.field(description="The promotion's or the coupon's ID.")
    kind: str = strawberry.field(description="The promotion's or the coupon's kind, e.g. THRESHOLD.")
    title: str
    amount: int = strawberry.field(
        description="Fen off the goods (on an order line: this line's share); at the SHIPPING stage, the "
        "shipping fee waived (not in `discount`)."
    )

    @classmethod
    def from_data(cls, d: AppliedDiscountData, amount: int | None = None) -> AppliedDiscount:
        return cls(
            stage=d.stage,  # type: ignore[arg-type]
            source=d.source,  # type: ignore[arg-type]
            source_id=encode_id(_SOURCE_NODE[d.source], d.source_id),
            kind=d.kind,
            title=d.title,
            amount=d.amount if amount is None else amount,
        )

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> AppliedDiscount:
        """From what an order (or order line) keeps (services.orders.checkout)."""
        source = DiscountSourceModel(row["source"])
        return cls(
            stage=StageModel[row["stage"]],  # type: ignore[arg-type]
            source=source,  # type: ignore[arg-type]
            source_id=encode_id(_SOURCE_NODE[source], int(row["source_id"])),
            kind=str(row["kind"]),
            title=str(row["title"]),
            amount=int(row["amount"]),
        )
