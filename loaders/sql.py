"""Read paths in plain SQL: rows as plain objects instead of ORM instances.

Building a Tortoise instance per row (and the query through Tortoise's builder) was most of a cold listing's
CPU: 89 SKUs cost ~2.7 ms as model instances, ~0.3 ms as rows. Loaders on hot read paths therefore run a fixed
statement and build `Rows`: plain slotted objects whose attributes carry the model's field names and the
values the model would hold (each column goes through its model field's own conversion where it is not an
identity: enums, datetimes, JSON), so code reading `row.price` or `row.status` cannot tell the difference.
They are read-only snapshots: nothing saves them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tortoise import connections
from tortoise.fields import CharField, IntField, SmallIntField, TextField
from tortoise.models import Model

# Fields whose database value is already the Python value (on PostgreSQL and SQLite alike).
_AS_STORED = (IntField, SmallIntField, CharField, TextField)


class Rows:
    """How one model's rows are read: the columns, and the conversions of those that need one."""

    def __init__(self, model: type[Model], row_class: type[Any]) -> None:
        self.model = model
        self.row_class = row_class
        self.names: tuple[str, ...] = row_class.__slots__
        self._select: str | None = None
        self._conversions: list[tuple[int, Callable[[Any], Any]]] = []

    def _prepare(self) -> str:
        # On first use, not at import: Tortoise adds the foreign keys' `*_id` fields when it starts.
        meta = self.model._meta
        fields = meta.fields_map
        self._conversions = [
            (index, fields[name].to_python_value)
            for index, name in enumerate(self.names)
            if type(fields[name]) not in _AS_STORED
        ]
        columns = ", ".join(meta.fields_db_projection[name] for name in self.names)
        self._select = f"SELECT {columns} FROM {meta.db_table}"
        return self._select

    def build(self, values: Sequence[Any]) -> Any:
        """The row object of one result tuple (columns in `names` order)."""
        if self._conversions:
            values = list(values)
            for index, convert in self._conversions:
                if values[index] is not None:
                    values[index] = convert(values[index])
        return self.row_class(*values)

    def columns(self, alias: str) -> str:
        """The row's columns qualified by `alias`, in `names` order (for a join that reads more after them)."""
        if self._select is None:
            self._prepare()
        projection = self.model._meta.fields_db_projection
        return ", ".join(f"{alias}.{projection[name]}" for name in self.names)

    @property
    def select(self) -> str:
        """`SELECT <the row's columns> FROM <table>`."""
        return self._select or self._prepare()

    async def everything(self, order_by: str) -> list[Any]:
        return [self.build(values) for values in await fetch(f"{self.select} ORDER BY {order_by}", [])]

    async def by_ids(self, ids: Sequence[int], column: str = "id", order_by: str = "id") -> list[Any]:
        """The rows whose `column` is in `ids`, ordered by `order_by` (columns)."""
        select = self._select or self._prepare()
        query = f"{select} WHERE {column} {{ids}} ORDER BY {order_by}"
        return [self.build(values) for values in await fetch(query, ids)]


async def fetch(query: str, ids: Sequence[int]) -> list[Sequence[Any]]:
    """The rows of `query`, as tuples, on the current connection (so inside a transaction too). `{ids}` in it
    becomes a membership test in `ids` in the backend's dialect (each time it appears): on PostgreSQL
    `= (SELECT $1::int)` for one id and `= ANY($1)` for more, two statements whatever the number of ids;
    `IN (?, ...)` on SQLite.

    PostgreSQL plans a prepared statement anew on every execution while its generic plan looks costlier than
    the plans made for the values it was given, and planning took longer than running these (0.2-0.9 ms):
    - one id on its own statement: a product page (one id) and a listing (twenty) sharing `= ANY($1)` kept
      each other's statements from settling on a generic plan;
    - the one id as a sub-select, which the planner cannot see into: the plan for the top seller (3 SKUs)
      always looked cheaper than the generic one (6 SKUs on average), so a product page's SKUs with their
      spec values were planned on every request; now the custom and generic plans are the same and the
      generic one is kept (0.41 -> 0.23 ms for that statement)."""
    client = connections.get("default")
    uses = query.count("{ids}")
    if not uses:
        _, rows = await client.execute_query(query)
    elif client.capabilities.dialect == "postgres":
        if len(ids) == 1:
            _, rows = await client.execute_query(query.format(ids="= (SELECT $1::int)"), [ids[0]])
        else:
            _, rows = await client.execute_query(query.format(ids="= ANY($1)"), [list(ids)])
    else:
        marks = ", ".join("?" * len(ids))
        _, rows = await client.execute_query(query.format(ids=f"IN ({marks})"), list(ids) * uses)
    return list(rows)
