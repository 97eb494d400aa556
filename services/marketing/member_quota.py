"""Per-member unit limits held in one row per (campaign, member): group buy rules and presales.

The row's `units` only moves by conditional UPDATEs, so concurrent orders of one member never pass the
limit; the first order of a member creates the row, and a concurrent first order hits the table's unique
(campaign, member) and is tried again by checkout, then finding the row.
"""

from __future__ import annotations

from typing import Any

from tortoise.expressions import F
from tortoise.models import Model

from services.errors import DomainError, ErrorCode


async def take(
    model: type[Model], campaign: dict[str, Any], member_id: int, quantity: int, limit: int, noun: str
) -> None:
    """Count `quantity` more units against the member's `limit` in the campaign (`campaign` is the row's
    filter, e.g. `{"rule_id": 3}`); raises LIMIT_EXCEEDED naming `noun` when they do not fit."""
    raised = await model.filter(**campaign, member_id=member_id, units__lte=limit - quantity).update(
        units=F("units") + quantity
    )
    if raised:
        return
    if await model.exists(**campaign, member_id=member_id):
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED, f"At most {limit} per member in this {noun}", "input.items[0].quantity"
        )
    await model.create(**campaign, member_id=member_id, units=quantity)


async def give_back(model: type[Model], campaign: dict[str, Any], member_id: int, quantity: int) -> None:
    """Return a cancelled order's units to the member's limit (never below zero)."""
    await model.filter(**campaign, member_id=member_id, units__gte=quantity).update(
        units=F("units") - quantity
    )
