"""Our custom scalars, each pointing at the specification it follows (`@specifiedBy`), so code generators and
partners know the exact format. JSON already names ECMA-404 in strawberry."""

from __future__ import annotations

import dataclasses
import datetime as dt

from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

DATE_TIME_SPEC = "https://scalars.graphql.org/andimarek/date-time"
DATE_SPEC = "https://scalars.graphql.org/andimarek/local-date"


def _date_time(value: dt.datetime) -> str:
    # The spec requires an offset. Rows come back aware (use_tz); a naive value can only be UTC.
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


DateTime = dataclasses.replace(
    DateTimeDefinition,
    description="An instant with its UTC offset (RFC 3339), e.g. 2025-05-20T13:14:00+08:00.",
    specified_by_url=DATE_TIME_SPEC,
    serialize=_date_time,
)
Date = dataclasses.replace(
    DateDefinition,
    description="A calendar date without time zone (YYYY-MM-DD), e.g. a birthday.",
    specified_by_url=DATE_SPEC,
)

SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {dt.datetime: DateTime, dt.date: Date}
