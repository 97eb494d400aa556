"""Counts SQL statements through Tortoise's query log, for tests and the benchmark."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_db_logger = logging.getLogger("tortoise.db_client")


@dataclass
class QueryCount:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


class _CountingHandler(logging.Handler):
    def __init__(self, target: QueryCount) -> None:
        super().__init__(logging.DEBUG)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if message.startswith(("Created connection pool", "Closed connection pool")):
            return
        self.target.statements.append(record.getMessage())


@contextmanager
def count_queries() -> Iterator[QueryCount]:
    result = QueryCount()
    handler = _CountingHandler(result)
    previous_level = _db_logger.level
    _db_logger.addHandler(handler)
    _db_logger.setLevel(logging.DEBUG)
    try:
        yield result
    finally:
        _db_logger.removeHandler(handler)
        _db_logger.setLevel(previous_level)
