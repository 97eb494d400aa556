"""The hot-search-word blocklist: staff take a spam term off the hot words at once (and it stops counting)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.access import staff_mutation
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.hot_words import (
    BlockedSearchTerm,
    BlockedSearchTermConnection,
    HotSearchWordBlockPayload,
    HotSearchWordUnblockPayload,
)
from services.access.permissions import Permission, require_permission
from services.catalog import hot_words
from services.catalog.listing import check_page_size

HotWordsInfo = Info[Context, None]


@staff_mutation(Permission.CONTENT_WRITE, action="hotSearchWordBlock")
async def hot_search_word_block(info: HotWordsInfo, term: str) -> HotSearchWordBlockPayload:
    staff = info.context.viewer.staff
    block = await hot_words.block_term(term, staff.id if staff else None)
    return HotSearchWordBlockPayload(blocked=BlockedSearchTerm.from_model(block))


@staff_mutation(Permission.CONTENT_WRITE, action="hotSearchWordUnblock")
async def hot_search_word_unblock(info: HotWordsInfo, term: str) -> HotSearchWordUnblockPayload:
    normalised = hot_words.hot_term(term)
    unblocked = await hot_words.unblock_term(term)
    return HotSearchWordUnblockPayload(term=normalised, unblocked=unblocked)


async def hot_search_word_blocklist(
    info: HotWordsInfo, first: int | None = 20, after: str | None = None
) -> BlockedSearchTermConnection:
    require_permission(info.context.viewer, Permission.CONTENT_WRITE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, total = await hot_words.blocked_page(offset, limit)
    edges, page_info = build_edges([BlockedSearchTerm.from_model(r) for r in rows], offset)
    page_info.has_next_page = offset + len(rows) < total
    return BlockedSearchTermConnection(edges=edges, page_info=page_info, total_count=total)


@strawberry.type
class HotWordsQuery:
    hot_search_word_blocklist: BlockedSearchTermConnection = strawberry.field(
        resolver=hot_search_word_blocklist,
        description="Terms taken off the hot search words, newest first. Needs CONTENT_WRITE.",
    )


@strawberry.type
class HotWordsMutation:
    hot_search_word_block: HotSearchWordBlockPayload = strawberry.mutation(
        resolver=hot_search_word_block,
        description="Take a term off the hot search words at once and stop counting it. Needs CONTENT_WRITE.",
    )
    hot_search_word_unblock: HotSearchWordUnblockPayload = strawberry.mutation(
        resolver=hot_search_word_unblock,
        description="Let a blocked term count again (from zero). Needs CONTENT_WRITE.",
    )
