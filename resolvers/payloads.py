"""Mutation payloads: a DomainError raised while a mutation runs becomes its payload's `errors`.

Mapped once, here, instead of a try/except in every resolver. The payload type must take `errors` and
default its other fields.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from schema.catalog_inputs import user_errors
from services.errors import DomainError

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

    return typing.cast(Resolver, mapped)
