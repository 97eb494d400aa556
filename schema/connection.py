"""Relay connections with offset cursors; every list that can grow is one of these."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry
from strawberry.relay.utils import from_base64, to_base64

from services.errors import DomainError, ErrorCode

NodeT = TypeVar("NodeT")

_CURSOR_PREFIX = "offset"


def offset_cursor(offset: int) -> str:
    return to_base64(_CURSOR_PREFIX, offset)


def cursor_offset(cursor: str | None) -> int:
    """The offset just after `cursor` (0 without one)."""
    if cursor is None:
        return 0
    try:
        prefix, raw = from_base64(cursor)
        value = int(raw)
    except Exception:
        value, prefix = -1, ""
    if prefix != _CURSOR_PREFIX or value < 0:
        raise DomainError(ErrorCode.INVALID_CURSOR, "`after` is not a cursor this API returned", "after")
    return value + 1


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


def build_edges(nodes: list[NodeT], offset: int) -> tuple[list[Edge[NodeT]], PageInfo]:
    edges = [Edge(cursor=offset_cursor(offset + i), node=node) for i, node in enumerate(nodes)]
    info = PageInfo(
        has_next_page=False,
        has_previous_page=offset > 0,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return edges, info
