"""The shape of a GraphQL document, measured before graphql-core validates it.

A hostile document can cost far more to check than to send. Expanding fragment spreads naively is
exponential (`fragment F0 on Query {...F1 ...F1}` ... 40 levels is 2^40 selections), and graphql-core's
OverlappingFieldsCanBeMerged rule compares every pair of fields that share a response key at the same place,
which is quadratic: 2,000 tokens of `{ products(first: 1) { totalCount } ... }` took 350 ms to validate, 222
fragments each spreading `__typename` into one selection set 349 ms.

So `measure` works in two bounded passes, without recursion (a chain of fragments must never reach Python's
recursion limit):
1. Per definition, once: its own selections and the fragments it spreads. From those, in dependency order,
   each fragment's expanded size and spread nesting (memoised, so linear in the document); a cycle ends it.
2. Only when the expanded operations are small enough: one walk over them (and over each fragment's own
   body), counting depth, aliases and overlapping fields (pairs of fields with the same response path: the
   comparisons the quadratic rule would make).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

# Their subtrees are bounded by the schema and graphql-core's MaxIntrospectionDepthRule; the standard
# introspection query nests deeper than any shop query needs, so depth is not counted inside them.
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


@dataclass(frozen=True)
class ShapeLimits:
    max_depth: int
    max_aliases: int
    max_definitions: int
    max_selections: int
    max_overlaps: int


@dataclass(frozen=True)
class Shape:
    """What a document measured; `refusal` says why it must not be validated or run (None: it may)."""

    definitions: int
    selections: int = 0
    nesting: int = 0
    depth: int = 0
    aliases: int = 0
    overlaps: int = 0
    refusal: str | None = None
    cyclic: bool = False


@dataclass
class _Body:
    """One definition's own selections (not those of the fragments it spreads)."""

    selections: int
    spreads: list[str]


def _body(selection_set: SelectionSetNode) -> _Body:
    count = 0
    spreads: list[str] = []
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            count += 1
            if isinstance(selection, FragmentSpreadNode):
                spreads.append(selection.name.value)
            elif selection.selection_set is not None:  # type: ignore[union-attr]
                stack.append(selection.selection_set)  # type: ignore[union-attr]
    return _Body(count, spreads)


def _fragment_order(bodies: dict[str, _Body]) -> tuple[list[str], str | None]:
    """Fragments so that each comes after every fragment it spreads, and the name of one on a cycle, if any.

    Spreads of unknown fragments are left to validation (KnownFragmentNames) and count as empty.
    """
    order: list[str] = []
    done: set[str] = set()
    for root in bodies:
        if root in done:
            continue
        on_path = {root}
        path: list[tuple[str, Iterator[str]]] = [(root, iter(bodies[root].spreads))]
        while path:
            name, spreads = path[-1]
            for spread in spreads:
                if spread in on_path:
                    return order, spread
                if spread in bodies and spread not in done:
                    on_path.add(spread)
                    path.append((spread, iter(bodies[spread].spreads)))
                    break
            else:
                path.pop()
                on_path.discard(name)
                done.add(name)
                order.append(name)
    return order, None


def measure(document: DocumentNode, limits: ShapeLimits) -> Shape:
    """Measure `document` against `limits`, in time linear in the document plus `limits.max_selections`."""
    definitions = [d for d in document.definitions if isinstance(d, ExecutableDefinitionNode)]
    if len(document.definitions) > limits.max_definitions:
        return Shape(
            definitions=len(document.definitions),
            refusal=f"The document has {len(document.definitions)} definitions; "
            f"the limit is {limits.max_definitions}",
        )
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    bodies = {name: _body(fragment.selection_set) for name, fragment in fragments.items()}
    order, cycle = _fragment_order(bodies)
    if cycle is not None:
        return Shape(
            definitions=len(definitions),
            refusal=f"Cannot spread fragment '{cycle}' within itself",
            cyclic=True,
        )

    # Pass 1: expanded sizes and nesting, once per fragment. Sizes saturate just above the limit: a
    # doubling chain would otherwise build a 2^n integer for nothing.
    cap = limits.max_selections + 1
    size: dict[str, int] = {}
    nesting: dict[str, int] = {}
    for name in order:
        body = bodies[name]
        known = [s for s in body.spreads if s in size]
        size[name] = min(cap, body.selections + sum(size[s] for s in known))
        nesting[name] = max((1 + nesting[s] for s in known), default=0)
    # Operations count expanded (that is what runs, and what validation compares); a fragment counts its own
    # body once more, as validation also checks it on its own.
    total = 0
    deepest = 0
    for definition in definitions:
        if isinstance(definition, FragmentDefinitionNode):
            name = definition.name.value
            total += bodies[name].selections
            deepest = max(deepest, nesting[name])
        else:
            body = _body(definition.selection_set)
            known = [s for s in body.spreads if s in size]
            total += body.selections + sum(size[s] for s in known)
            deepest = max(deepest, max((1 + nesting[s] for s in known), default=0))
        total = min(total, cap)
    if deepest > limits.max_depth:
        return Shape(
            definitions=len(definitions),
            selections=total,
            nesting=deepest,
            refusal=f"Fragments are spread {deepest} deep; the limit is {limits.max_depth}",
        )
    if total > limits.max_selections:
        return Shape(
            definitions=len(definitions),
            selections=total,
            nesting=deepest,
            refusal=f"The document expands to more than {limits.max_selections} selections",
        )
    return _walk(definitions, fragments, limits, total, deepest)


def _walk(
    definitions: list[ExecutableDefinitionNode],
    fragments: dict[str, FragmentDefinitionNode],
    limits: ShapeLimits,
    selections: int,
    nesting: int,
) -> Shape:
    """Pass 2: walk the expanded document (bounded by pass 1) for depth, aliases and overlapping fields."""
    depth = aliases = overlaps = 0
    # A response path is interned as an int: (parent path, response key) -> id. Fields sharing a path
    # are the ones the overlapping-fields rule compares pairwise.
    paths: dict[tuple[int, str], int] = {}
    seen_at_path: dict[int, int] = {}
    for root, definition in enumerate(definitions):
        root_path = -1 - root
        # A fragment is checked on its own body too (validation visits it), but what it spreads, its depth
        # and its aliases count where it is spread, inside an operation.
        standalone = isinstance(definition, FragmentDefinitionNode)
        # (selection set, depth of its fields, response path of its parent, not counted for depth)
        stack: list[tuple[SelectionSetNode, int, int, bool]] = [
            (definition.selection_set, 1, root_path, standalone)
        ]
        while stack:
            selection_set, level, parent, uncounted = stack.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    if selection.alias and not standalone:
                        aliases += 1
                    path = paths.setdefault((parent, key), len(paths))
                    count = seen_at_path.get(path, 0)
                    overlaps += count
                    seen_at_path[path] = count + 1
                    inside = uncounted or selection.name.value in INTROSPECTION_ROOTS
                    if not inside:
                        depth = max(depth, level)
                    if selection.selection_set is not None:
                        stack.append((selection.selection_set, level + 1, path, inside))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((selection.selection_set, level, parent, uncounted))
                elif isinstance(selection, FragmentSpreadNode) and not standalone:
                    fragment = fragments.get(selection.name.value)
                    if fragment is not None:
                        stack.append((fragment.selection_set, level, parent, uncounted))
    refusal = None
    if depth > limits.max_depth:
        refusal = f"The query nests fields {depth} deep; the depth limit is {limits.max_depth}"
    elif aliases > limits.max_aliases:
        refusal = f"The query has {aliases} aliases; the limit is {limits.max_aliases}"
    elif overlaps > limits.max_overlaps:
        refusal = (
            f"The query selects the same fields at the same place {overlaps} times over; "
            f"the limit is {limits.max_overlaps}"
        )
    return Shape(
        definitions=len(definitions),
        selections=selections,
        nesting=nesting,
        depth=depth,
        aliases=aliases,
        overlaps=overlaps,
        refusal=refusal,
    )
