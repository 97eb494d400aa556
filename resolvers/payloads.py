"""Mutation payloads: a DomainError raised while a mutation runs becomes its payload's `errors`.

Mapped once, here, instead of a try/except in every resolver. The payload type must take `errors` and
default its other fields. As a last line behind the services' own checks, a value the ORM refuses (an
over-long string reaching a query or a column) is BAD_USER_INPUT too, and logged so the missing check is
added; tests/test_input_lengths.py holds every string input to a check of its own.
"""

from __future__ import annotations

import functools
import logging
import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tortoise.exceptions import ValidationError

from schema.catalog_inputs import user_errors
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.payloads")

Resolver = TypeVar("Resolver", bound=Callable[..., Awaitable[Any]])


def payload_mutation(resolver: Resolver) -> Resolver:
    """Wrap a mutation resolver so that a DomainError returns `PayloadType(errors=[...])`."""
    payload_type = typing.get_type_hints(resolver)["return"]

    @functools.wraps(resolver)
    async def mapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return await resolver(*args, **kwargs)
        except DomainError as exc:
            return payload_type(errors=user_errors(exc))
        except ValidationError as exc:
            log.error("%s: the ORM refused a value no check caught: %s", resolver.__name__, str(exc)[:200])
            return payload_type(
                errors=user_errors(
                    DomainError(ErrorCode.BAD_USER_INPUT, "A value is too long or out of range")
                )
            )

    return typing.cast(Resolver, mapped)
