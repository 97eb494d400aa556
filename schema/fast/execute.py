"""A plan executed breadth-first: every object of a level is built, then each field's loads for the whole
level start together, then the next level. The answer is the `data` graphql-core would have returned."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from graphql import get_argument_values
from graphql.execution.values import VariableValues
from graphql.pyutils import Path
from strawberry.types.arguments import convert_arguments

from infra.volatile import present
from schema.context import Context
from schema.fast.fields import FETCH_FIRST, Fallback, Link, Root, everything
from schema.fast.plan import FieldPlan, OperationPlan, TypePlan

# One level's objects of one plan: the objects, their answers, and their paths (when stock holes are noted).
Group = tuple[list[Any], list[dict[str, Any]], list[Path] | None]
Level = dict[int, tuple[TypePlan, Group]]


class Execution:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.noted = context.volatile

    async def run(self, plan: OperationPlan, arguments: list[dict[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        roots: list[FieldPlan] = []
        calls: list[Awaitable[Any]] = []
        for field in plan.fields:
            if field.spec is None:
                data[field.key] = "Query"
                continue
            data[field.key] = None
            assert isinstance(field.spec, Root)
            roots.append(field)
            calls.append(field.spec.resolve(self.context, **arguments[len(calls)]))
        values = await everything(calls) if calls else []
        level: Level = {}
        for field, value in zip(roots, values, strict=True):
            path = Path(None, field.key, "Query") if self.noted is not None else None
            data[field.key] = self._complete(field, value, level, path)
        while level:
            level = await self._level(level)
        return data

    def _complete(self, field: FieldPlan, value: Any, level: Level, path: Path | None) -> Any:
        if value is None:
            if field.non_null:
                raise Fallback(f"null at {field.key}")
            return None
        if field.serialize is not None:
            return field.serialize(value)
        child = field.child
        assert child is not None
        if not field.is_list:
            return self._object(child, value, level, path)
        if path is None:
            return [self._object(child, item, level, None) for item in value]
        return [self._object(child, item, level, path.add_key(i)) for i, item in enumerate(value)]

    def _object(self, plan: TypePlan, source: Any, level: Level, path: Path | None) -> dict[str, Any]:
        return plan.build(source, self.context, level, path, self)  # type: ignore[misc]

    # Called from the generated builders (builders.py).

    def hole(self, field: FieldPlan, source: Any, path: Path | None, plan: TypePlan) -> Any:
        key, form, argument, value = field.spec.describe(source)  # type: ignore[union-attr]
        if self.noted is not None:
            assert path is not None
            self.noted.append((path.add_key(field.key, plan.type_name), (key, form, argument), value))
        return field.serialize(present(form, argument, value))  # type: ignore[misc]

    def complete(self, field: FieldPlan, value: Any, level: Level, path: Path | None, plan: TypePlan) -> Any:
        return self._complete(field, value, level, path.add_key(field.key, plan.type_name) if path else None)

    def register(
        self, plan: TypePlan, source: Any, out: dict[str, Any], path: Path | None, level: Level
    ) -> None:
        entry = level.get(id(plan))
        if entry is None:
            entry = level[id(plan)] = (plan, ([], [], [] if path is not None else None))
        sources, outs, paths = entry[1]
        sources.append(source)
        outs.append(out)
        if paths is not None:
            paths.append(path)  # type: ignore[arg-type]

    async def _level(self, level: Level) -> Level:
        context = self.context
        started: list[tuple[int, FieldPlan]] = []
        loads: list[Awaitable[Any]] = []
        wanted: dict[str, list[Any]] = {}  # loader: the keys every field of the level needs from it
        for plan_id, (plan, (sources, _, _)) in level.items():
            for field in plan.links:
                link: Link = field.spec  # type: ignore[assignment]
                if field.loads is not None:
                    name, keys = field.loads
                    wanted.setdefault(name, []).extend(keys(sources))
                if link.prepare is not None:
                    started.append((plan_id, field))
                    loads.append(link.prepare(context, sources))
        names = sorted(wanted, key=lambda name: name not in FETCH_FIRST)
        fetches = [getattr(context.loaders, name).fetch_many(wanted[name]) for name in names if wanted[name]]
        prepared: dict[tuple[int, int], Any] = {}
        if loads or fetches:
            results = await everything(loads + fetches)
            for (plan_id, field), result in zip(started, results, strict=False):
                prepared[(plan_id, id(field))] = result
        following: Level = {}
        for plan_id, (plan, (sources, outs, paths)) in level.items():
            for field in plan.links:
                spec: Link = field.spec  # type: ignore[assignment]
                given = prepared.get((plan_id, id(field)))
                key = field.key
                for index, source in enumerate(sources):
                    value = spec.get(source, context, given, index)
                    path = paths[index].add_key(key, plan.type_name) if paths is not None else None
                    outs[index][key] = self._complete(field, value, following, path)
        return following


def root_arguments(plan: OperationPlan, variables: VariableValues, schema: Any) -> list[dict[str, Any]]:
    """The keyword arguments of each root field's resolution, as strawberry converts them for its resolvers
    (`schema` is strawberry's). They are only read, so one request's may serve the next with the same
    variables."""
    arguments = []
    for field in plan.fields:
        if field.spec is None:
            continue
        assert field.definition is not None and field.node is not None
        raw = get_argument_values(field.definition, field.node, variables)
        arguments.append(
            convert_arguments(
                raw,
                field.arguments,
                scalar_registry=schema.schema_converter.scalar_registry,
                config=schema.config,
            )
        )
    return arguments


async def execute_plan(
    plan: OperationPlan, arguments: list[dict[str, Any]], context: Context
) -> dict[str, Any]:
    """The operation's `data` as graphql-core would answer it (raises Fallback, or any error, when it cannot)."""
    return await Execution(context).run(plan, arguments)
