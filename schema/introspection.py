"""Introspection for staff and partners only (and for everyone when DEBUG is on).

strawberry's DisableIntrospection is all-or-nothing, so this adds graphql-core's introspection rule during
validation for the callers who may not introspect. `{ __typename }` stays open to all: health checks use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, GraphQLError, get_named_type, is_introspection_type
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

from infra.settings import get_settings
from services.access.permissions import may_introspect
from services.errors import ErrorCode
from services.members.viewer import ANONYMOUS

MESSAGE = (
    "Introspection needs a staff token or a partner API key (Authorization: Bearer ...); "
    "it is open to everyone only when the server runs with DEBUG=true"
)


class IntrospectionNeedsAccess(NoSchemaIntrospectionCustomRule):
    """graphql-core's rule, reporting one FORBIDDEN error per `__schema` or `__type` rather than one per field."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        named = get_named_type(self.context.get_type())
        if named and is_introspection_type(named) and node.name.value in {"__schema", "__type"}:
            self.report_error(GraphQLError(MESSAGE, node, extensions={"code": ErrorCode.FORBIDDEN.value}))


# Built once: the validation memo (schema/query_guard.py) keys on the rule tuple; the same class keeps it hitting.
NO_INTROSPECTION = (IntrospectionNeedsAccess,)


class IntrospectionGate(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        viewer = getattr(context, "viewer", ANONYMOUS)
        settings = getattr(context, "settings", None) or get_settings()
        if not may_introspect(viewer, settings.debug):
            self.execution_context.validation_rules = (
                self.execution_context.validation_rules + NO_INTROSPECTION
            )
        yield
