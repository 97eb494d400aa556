"""Input objects built from a plan made once per type, not worked out again for every field of every request.

strawberry converts an argument's input object field by field, and for each field of each request it converts
the field's name, resolves its type annotation and walks a chain of type checks (~200 µs for placeOrder's
CheckoutInput with one campaign item). `StrawberryObjectDefinition.from_input` is strawberry's hook for types
that build their own value: `install` gives every input type of the schema a builder that does the same
conversion from a plan made on first use (GraphQL name, Python name, and for scalar and enum fields, which
strawberry passes through unchanged, nothing to do). Any other field (nested inputs, lists of them, GlobalID,
lazy types) is still converted by strawberry (`InputContext.convert`), which reaches the nested type's
builder. Types with `Maybe` fields are left alone: strawberry does not check their nulls for types with a
builder. tests/test_input_builders.py holds every input type's answer equal to strawberry's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

# (GraphQL name, Python name, what to do with the value: None passes it through, a type is strawberry's job)
_Field = tuple[str, str, StrawberryType | type | None]
_Convert = Callable[[object, InputContext, str], object]


class _Builder:
    """`from_input` of one input type; its plan is made on the first call (it needs the schema's scalars)."""

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self._definition = definition
        self._fields: list[_Field] | None = None
        self._nulls: dict[str, None] = {}

    def _plan(self, context: InputContext) -> list[_Field]:
        definition = self._definition
        fields: list[_Field] = []
        for field in definition.fields:
            name = context.config.name_converter.from_field(field)
            type_ = field.resolve_type(type_definition=definition)
            fields.append((name, field.python_name, None if _passes(type_, context) else type_))
        if definition.is_input:
            # As strawberry does: fields without a default are None unless given (required ones always are).
            self._nulls = {
                f.python_name: None
                for f in definition.fields
                if f.default_value is MISSING and f.default_factory is MISSING
            }
        self._fields = fields
        return fields

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        fields = self._fields if self._fields is not None else self._plan(context)
        kwargs: dict[str, object] = dict(self._nulls)
        for name, python_name, type_ in fields:
            if name in value:
                given = value[name]
                if type_ is None or given is None:
                    kwargs[python_name] = given
                else:
                    kwargs[python_name] = context.convert(given, type_, name)
        return cls(**kwargs)


def _passes(type_: StrawberryType | type, context: InputContext) -> bool:
    """Whether strawberry hands values of `type_` over unchanged (scalars but GlobalID, enums, optional ones).
    UNSET and None pass unchanged whatever the type."""
    if isinstance(type_, StrawberryMaybe):
        return False
    if isinstance(type_, StrawberryOptional):
        return _passes(type_.of_type, context)
    if isinstance(type_, StrawberryList):
        return False  # strawberry copies lists
    if type_ is GlobalID:
        return False
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return True
    return is_scalar(type_, context.scalar_registry)


def _has_maybe(definition: StrawberryObjectDefinition) -> bool:
    return any(_is_maybe(f.type) for f in definition.fields)


def _is_maybe(type_: object) -> bool:
    if isinstance(type_, StrawberryMaybe):
        return True
    of_type = getattr(type_, "of_type", None)
    return of_type is not None and _is_maybe(of_type)


def install(schema: strawberry.Schema) -> int:
    """Give every input type of `schema` without a builder of its own a planned one; returns how many."""
    installed = 0
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if (
            isinstance(definition, StrawberryObjectDefinition)
            and definition.is_input
            and definition.from_input is None
            and not _has_maybe(definition)
        ):
            definition.from_input = _Builder(definition)
            installed += 1
    return installed


def builder_of(definition: StrawberryObjectDefinition) -> Callable[..., Any] | None:
    """The builder `install` gave `definition`, if any (for tests)."""
    found = definition.from_input
    return found if isinstance(found, _Builder) else None
