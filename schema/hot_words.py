"""Types of the hot-search-word blocklist: the terms staff took off the hot words, and the payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import SearchTermBlock
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo


@strawberry.type(description="A search term staff took off the hot search words; it is not counted either.")
class BlockedSearchTerm:
    term: str = strawberry.field(
        description="As searches are counted: full-width folded, lower case, no spaces."
    )
    blocked_at: datetime

    @classmethod
    def from_model(cls, m: SearchTermBlock) -> BlockedSearchTerm:
        return cls(term=m.term, blocked_at=m.created_at)


@strawberry.type
class BlockedSearchTermConnection:
    edges: list[Edge[BlockedSearchTerm]]
    page_info: PageInfo
    total_count: int


@strawberry.type
class HotSearchWordBlockPayload:
    blocked: BlockedSearchTerm | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class HotSearchWordUnblockPayload:
    term: str | None = strawberry.field(default=None, description="The term as it was blocked (normalised).")
    unblocked: bool = strawberry.field(default=False, description="False when the term was not blocked.")
    errors: list[UserError] = strawberry.field(default_factory=list)
