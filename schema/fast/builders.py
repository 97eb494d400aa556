"""One generated function per object plan that builds an object's answer in one dict display.

A listing of 20 with SKUs builds ~300 objects of ~4 fields: looping over the plan's fields with a call for
the read and another for the serialisation costs about as much as the SQL. The generated function reads each
scalar inline (`source.title`), keeps the value when it already is what the GraphQL scalar would serialise it
to (a str for String and ID, an int in range for Int, a bool for Boolean) and only calls the type's
serialiser otherwise, so the answer is the same value for value. Generated once per plan (plans are cached).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from infra.volatile import present
from schema.fast.fields import Hole, Leaf, Link

if TYPE_CHECKING:
    from schema.fast.plan import TypePlan

_KEEP = {
    "str": "type(v := {read}) is str",
    "int": "type(v := {read}) is int and -2147483648 <= v <= 2147483647",
    "bool": "type(v := {read}) is bool",
}


def _shown(described: tuple[str, str, int, int]) -> int | bool:
    _, form, argument, value = described
    return present(form, argument, value)


def builder(plan: TypePlan) -> Callable[..., dict[str, Any]]:
    """`build(source, context, level, path, execution)`: the object's answer, in the plan's field order;
    loading fields are None until their level is done (execute.py fills them)."""
    names: dict[str, Any] = {"PLAN": plan, "shown": _shown}
    entries: list[str] = []
    for index, field in enumerate(plan.fields):
        spec = field.spec
        key = repr(field.key)
        if spec is None:
            value = repr(plan.type_name)
        elif isinstance(spec, Leaf):
            if spec.attribute is not None and spec.attribute.isidentifier():
                read = f"source.{spec.attribute}"
            elif spec.item is not None:
                read = f"source[{spec.item!r}]"
            else:
                names[f"R{index}"] = spec.read
                read = f"R{index}(source, context)"
            names[f"S{index}"] = field.serialize
            keep = _KEEP.get(field.scalar or "")
            value = f"(v if {keep.format(read=read)} else S{index}(v))" if keep else f"S{index}({read})"
        elif isinstance(spec, Hole):
            # Where the answer may be cached the executor notes the hole; otherwise the value is all it needs.
            names[f"F{index}"] = field
            names[f"D{index}"] = spec.describe
            names[f"S{index}"] = field.serialize
            value = (
                f"(S{index}(shown(D{index}(source))) if execution.noted is None "
                f"else execution.hole(F{index}, source, path, PLAN))"
            )
        elif isinstance(spec, Link) and not spec.deferred:
            # Nothing to load (an edge's node, a SKU's tier prices): its objects join this very level, so their
            # loads start together with their parents' (as the root resolvers' prefetch does).
            names[f"F{index}"] = field
            names[f"G{index}"] = spec.get
            value = f"execution.complete(F{index}, G{index}(source, context, None, 0), level, path, PLAN)"
        else:
            value = "None"  # filled when the level's loads are done, in this place of the order
        entries.append(f"        {key}: {value},")
    register = "    execution.register(PLAN, source, out, path, level)\n" if plan.links else ""
    code = (
        "def build(source, context, level, path, execution):\n"
        "    out = {\n" + "\n".join(entries) + "\n    }\n" + register + "    return out\n"
    )
    exec(compile(code, f"<fast builder {plan.type_name}>", "exec"), names)
    return names["build"]  # type: ignore[no-any-return]
