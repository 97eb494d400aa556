"""The audit log: one row per staff mutation (who, what, on which object, with what input, whether it worked).

Rows are written after the mutation's own transaction, so a failed mutation is recorded too. The input is kept
as a summary: secrets are dropped and long strings and lists cut, so the log never holds a credential and a
row stays small however large the input was.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from tortoise.queryset import QuerySet

from models import AuditLog
from services.access.api_keys import KEY_PREFIX
from services.access.staff import TOKEN_PREFIX, StaffIdentity
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.audit")

MAX_STRING = 120
MAX_ITEMS = 20
MAX_DEPTH = 6
# Argument names whose values never reach the log, whatever their value looks like.
SECRET_NAME = re.compile(r"token|password|secret|api_?key|session_?key|encrypted|credential", re.IGNORECASE)
# Values that are credentials of ours, wherever they turn up (a staff member pasting a token into a title).
SECRET_VALUE_PREFIXES = (TOKEN_PREFIX, KEY_PREFIX)
REDACTED = "[redacted]"


def _summarize(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        if value.startswith(SECRET_VALUE_PREFIXES):
            return REDACTED
        if len(value) > MAX_STRING:
            return f"{value[:MAX_STRING]}…(+{len(value) - MAX_STRING} chars)"
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        return {
            str(key): _summarize(item, depth + 1)
            for key, item in value.items()
            if not SECRET_NAME.search(str(key))
        }
    if isinstance(value, list | tuple):
        items = [_summarize(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"…(+{len(value) - MAX_ITEMS} items)")
        return items
    return _summarize(str(value), depth)


def summarize_input(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A loggable copy of a mutation's arguments (plain dicts, lists and scalars).

    Drops arguments whose name suggests a secret and values that are our tokens or API keys, cuts strings to
    MAX_STRING characters and lists to MAX_ITEMS items, and stops at MAX_DEPTH levels of nesting.
    """
    summary = _summarize(dict(arguments), 0)
    assert isinstance(summary, dict)
    return summary


async def record(
    staff: StaffIdentity, action: str, target: str, input_summary: dict[str, Any], succeeded: bool
) -> None:
    """Append an audit row for a staff mutation.

    Never raises: by the time it runs the mutation has committed, and a failure to log must not tell the caller
    that a write which happened did not. A lost row is logged as an error for the operators instead.
    """
    try:
        await AuditLog.create(
            staff_id=staff.id,
            staff_name=staff.name,
            action=action[:64],
            target=target[:128],
            input_summary=input_summary,
            succeeded=succeeded,
        )
    except Exception:
        log.exception("audit row lost: %s by %s on %r (succeeded=%s)", action, staff.name, target, succeeded)


async def list_entries(offset: int, limit: int, action: str | None = None) -> list[AuditLog]:
    """Audit rows newest first, optionally only those of one action (e.g. `productCreate`)."""
    # By id, not created_at: the same order, and the primary key keeps it cheap on a table that only grows.
    return await _entries(action).order_by("-id").offset(offset).limit(limit)


async def count_entries(action: str | None = None) -> int:
    return await _entries(action).count()


ACTION_MAX = 64  # AuditLog.action's column


def _entries(action: str | None) -> QuerySet[AuditLog]:
    if action and len(action) > ACTION_MAX:
        # No action is named that long; refused before the ORM would fail on the filter value.
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"An action has at most {ACTION_MAX} characters", "action"
        )
    return AuditLog.filter(action=action) if action else AuditLog.all()
