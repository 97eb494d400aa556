"""Every input type's planned builder (schema.input_builders) gives exactly what strawberry's own conversion
gives: for each input type of the schema, values with every field set, every nullable field null, and nothing
set are converted both ways and compared. Scalars are stand-in objects: both ways must hand them over as they
are (the same object), and everything around them (enums, lists, nested inputs, defaults) must be equal."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from strawberry.relay import GlobalID
from strawberry.types.arguments import convert_argument
from strawberry.types.base import (
    StrawberryList,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType

from schema import input_builders
from schema.root import schema

CONFIG = schema.config
REGISTRY = schema.schema_converter.scalar_registry
INPUTS = sorted(
    (
        c.definition
        for c in schema.schema_converter.type_map.values()
        if isinstance(c.definition, StrawberryObjectDefinition) and c.definition.is_input
    ),
    key=lambda d: d.name,
)


class Scalar:
    """A scalar's value after graphql-core: strawberry hands it over as it is."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __repr__(self) -> str:
        return f"Scalar({self.where})"


def sample(type_: StrawberryType | type, where: str, nulls: bool, depth: int = 0) -> Any:
    if isinstance(type_, LazyType):
        type_ = type_.resolve_type()
    if isinstance(type_, StrawberryOptional):
        return None if nulls else sample(type_.of_type, where, nulls, depth)
    if isinstance(type_, StrawberryList):
        return [sample(type_.of_type, f"{where}[{i}]", nulls, depth) for i in range(2)]
    if type_ is GlobalID:
        return str(GlobalID("Sku", "1"))
    if isinstance(type_, StrawberryEnumDefinition):
        return next(iter(type_.wrapped_cls))
    if has_enum_definition(type_):
        assert isinstance(type_, type) and issubclass(type_, enum.Enum)
        return next(iter(type_))
    if isinstance(type_, type) and hasattr(type_, "__strawberry_definition__"):
        definition: StrawberryObjectDefinition = type_.__strawberry_definition__
        if depth > 3:
            return {}
        return {
            CONFIG.name_converter.from_field(f): sample(
                f.resolve_type(type_definition=definition), f"{where}.{f.python_name}", nulls, depth + 1
            )
            for f in definition.fields
        }
    return Scalar(where)


@contextmanager
def strawberry_only() -> Iterator[None]:
    """Convert as strawberry does without the builders (every input type's hook taken away meanwhile)."""
    taken = {d.name: d.from_input for d in INPUTS}
    for d in INPUTS:
        d.from_input = None
    try:
        yield
    finally:
        for d in INPUTS:
            d.from_input = taken[d.name]


def test_every_input_type_has_a_builder() -> None:
    assert INPUTS
    assert [d.name for d in INPUTS if input_builders.builder_of(d) is None] == []


@pytest.mark.parametrize("definition", INPUTS, ids=lambda d: d.name)
def test_a_builder_converts_as_strawberry_does(definition: StrawberryObjectDefinition) -> None:
    for value in (sample(definition.origin, "", False), sample(definition.origin, "", True), {}):
        built = convert_argument(value, definition.origin, REGISTRY, CONFIG)
        with strawberry_only():
            expected = convert_argument(value, definition.origin, REGISTRY, CONFIG)
        assert type(built) is type(expected)
        assert built == expected, value
