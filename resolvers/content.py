"""Content root fields: reviews, articles, favourites, browsing history, and staff moderation.

Thin: decode IDs, find the viewer, call services.content, wrap models. Member mutations report DomainErrors in
their payload; staff mutations are permission-checked and audited (`staff_mutation`); article writing is open to
members too when ARTICLES_BY_MEMBERS is on (audited only for staff, who have an account to record).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from models import Article as ArticleModel
from models import FavoriteKind as FavoriteKindModel
from models import Member as MemberModel
from models import Moderation as ModerationModel
from models import Review as ReviewModel
from models import Upload as UploadModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.connection import build_edges, cursor_offset
from schema.content import (
    Article,
    ArticleConnection,
    ArticleFilter,
    ArticleInput,
    ArticlePayload,
    FavoriteConnection,
    FavoriteKind,
    FavoritePayload,
    HistoryConnection,
    HistoryPayload,
    Image,
    ImagePayload,
    ModerationStatus,
    Review,
    ReviewConnection,
    ReviewCreateInput,
    ReviewPayload,
    favorite_of,
    history_entry_of,
)
from schema.context import Context
from schema.node import decode_any, decode_id, encode_id
from services.access.permissions import Permission, holds, require_permission
from services.catalog.listing import check_page_size
from services.content import articles, favorites, history, media_checks, reviews
from services.errors import DomainError, ErrorCode
from services.members.viewer import MemberIdentity

ContentInfo = Info[Context, None]
Resolver = TypeVar("Resolver", bound=Callable[..., Awaitable[Any]])


def _member(info: ContentInfo) -> MemberIdentity:
    viewer = info.context.viewer
    if viewer.member is not None:
        return viewer.member
    if viewer.is_anonymous:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Log in with WeChat first")
    raise DomainError(ErrorCode.FORBIDDEN, "Only members can do this")


def _ids(values: list[strawberry.ID], type_name: str, field: str) -> list[int]:
    return [decode_id(v, type_name, f"{field}[{i}]") for i, v in enumerate(values)]


def staff_or_member_mutation(permission: Permission, action: str) -> Callable[[Resolver], Resolver]:
    """A mutation staff holding `permission` may run (audited as `action`), and members too (not audited):
    the service decides what a member may do."""

    def decorate(resolver: Resolver) -> Resolver:
        audited = staff_mutation(permission, action)(resolver)
        plain = payload_mutation(resolver)

        @functools.wraps(resolver)
        async def either(*args: Any, **kwargs: Any) -> Any:
            member = kwargs["info"].context.viewer.member is not None
            return await (plain if member else audited)(*args, **kwargs)

        return either  # type: ignore[return-value]

    return decorate


async def _author(info: ContentInfo) -> articles.Author:
    viewer = info.context.viewer
    if viewer.member is not None:
        openid = await MemberModel.filter(id=viewer.member.id).first().values_list("openid", flat=True)
        return articles.Author(member_id=viewer.member.id, openid=str(openid or ""))
    assert viewer.staff is not None  # staff_mutation let only staff through
    return articles.Author(staff_id=viewer.staff.id)


# --- node(id:) ---------------------------------------------------------------------------------------------------


def _writer(context: Context, member_id: int | None) -> bool:
    return context.viewer.member is not None and context.viewer.member.id == member_id


@node_type("Review")
async def review_node(context: Context, pk: int) -> Review | None:
    """Readers see a shown review; its writer and content staff see every one, in full."""
    row = await context.rows(ReviewModel).load(pk)
    if row is None:
        return None
    if _writer(context, row.member_id) or holds(context.viewer, Permission.CONTENT_WRITE):
        return Review.from_model(row, full=True)
    return Review.from_model(row) if row.visible else None


@node_type("Article")
async def article_node(context: Context, pk: int) -> Article | None:
    """As `article(id:)`: anyone when it is visible, its writer and staff always."""
    row = await context.rows(ArticleModel).load(pk)
    if row is None or not (row.visible or context.viewer.is_staff or _writer(context, row.author_member_id)):
        return None
    return Article.from_model(row)


# Images carry "Upload" IDs (the upload endpoint hands them out, and inputs take them as such).
@node_type("Upload")
async def image_node(context: Context, pk: int) -> Image | None:
    """Its uploader and content staff; anyone once it passed the check (it is shown publicly then)."""
    row = await context.rows(UploadModel).load(pk)
    if row is None:
        return None
    own = _writer(context, row.member_id) or (
        context.viewer.staff is not None and context.viewer.staff.id == row.staff_id
    )
    shown = row.moderation == ModerationModel.PASSED
    return Image.from_model(row) if own or shown or holds(context.viewer, Permission.CONTENT_WRITE) else None


# --- Reviews ----------------------------------------------------------------------------------------------------


@payload_mutation
async def review_create(info: ContentInfo, input: ReviewCreateInput) -> ReviewPayload:
    member = _member(info)
    data = reviews.ReviewInput(
        order_line_id=decode_id(input.order_line_id, "OrderLine", "input.orderLineId"),
        rating=input.rating,
        content=input.content,
        description_score=input.description_score,
        logistics_score=input.logistics_score,
        service_score=input.service_score,
        photo_ids=_ids(input.photo_ids, "Upload", "input.photoIds"),
        anonymous=input.anonymous,
    )
    return ReviewPayload(review=Review.from_model(await reviews.create_review(member.id, data), full=True))


@payload_mutation
async def review_append(
    info: ContentInfo, id: strawberry.ID, content: str, photo_ids: list[strawberry.ID] | None = None
) -> ReviewPayload:
    member = _member(info)
    row = await reviews.append_review(
        member.id, decode_id(id, "Review"), content, _ids(photo_ids or [], "Upload", "photoIds")
    )
    return ReviewPayload(review=Review.from_model(row, full=True))


@staff_mutation(Permission.CONTENT_WRITE, action="reviewReply")
async def review_reply(info: ContentInfo, id: strawberry.ID, content: str) -> ReviewPayload:
    staff = info.context.viewer.staff
    assert staff is not None
    return ReviewPayload(
        review=Review.from_model(await reviews.reply(decode_id(id, "Review"), staff.id, content), True)
    )


@staff_mutation(Permission.CONTENT_WRITE, action="reviewHide")
async def review_hide(info: ContentInfo, id: strawberry.ID, hidden: bool = True) -> ReviewPayload:
    return ReviewPayload(
        review=Review.from_model(await reviews.set_hidden(decode_id(id, "Review"), hidden), True)
    )


@staff_mutation(Permission.CONTENT_WRITE, action="reviewFeature")
async def review_feature(info: ContentInfo, id: strawberry.ID, featured: bool = True) -> ReviewPayload:
    return ReviewPayload(
        review=Review.from_model(await reviews.set_featured(decode_id(id, "Review"), featured), True)
    )


@staff_mutation(Permission.CONTENT_WRITE, action="reviewModerate")
async def review_moderate(info: ContentInfo, id: strawberry.ID, approve: bool) -> ReviewPayload:
    return ReviewPayload(
        review=Review.from_model(await reviews.moderate(decode_id(id, "Review"), approve), True)
    )


@staff_mutation(Permission.CONTENT_WRITE, action="imageModerate")
async def image_moderate(info: ContentInfo, id: strawberry.ID, approve: bool) -> ImagePayload:
    return ImagePayload(
        image=Image.from_model(await media_checks.moderate_upload(decode_id(id, "Upload"), approve))
    )


async def my_reviews(info: ContentInfo, first: int | None = 20, after: str | None = None) -> ReviewConnection:
    member = _member(info)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, has_next = await reviews.my_reviews(member.id, offset, limit)
    edges, page_info = build_edges([Review.from_model(r, full=True) for r in rows], offset)
    page_info.has_next_page = has_next
    return ReviewConnection(
        edges=edges, page_info=page_info, _total=lambda: reviews.count_my_reviews(member.id)
    )


@strawberry.input
class StaffReviewFilter:
    status: ModerationStatus | None = strawberry.field(
        default=None, description="HELD: the moderation queue (the text or the append waits for staff)."
    )
    product_id: strawberry.ID | None = None
    hidden: bool | None = None


async def staff_reviews(
    info: ContentInfo,
    filter: StaffReviewFilter | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> ReviewConnection:
    require_permission(info.context.viewer, Permission.CONTENT_WRITE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    filter = filter or StaffReviewFilter()
    product_id = decode_id(filter.product_id, "Product", "filter.productId") if filter.product_id else None
    status = ModerationModel(filter.status) if filter.status is not None else None
    rows, has_next = await reviews.staff_reviews(status, product_id, filter.hidden, offset, limit)
    edges, page_info = build_edges([Review.from_model(r, full=True) for r in rows], offset)
    page_info.has_next_page = has_next
    return ReviewConnection(edges=edges, page_info=page_info, _total=_no_total)


async def _no_total() -> int:
    raise DomainError(ErrorCode.BAD_USER_INPUT, "totalCount is not offered on this list")


async def staff_images(
    info: ContentInfo,
    status: ModerationStatus = ModerationModel.HELD,
    first: int | None = 20,
    after: str | None = None,
) -> list[Image]:
    """Uploaded images in one moderation status (HELD: waiting for staff), oldest first."""
    require_permission(info.context.viewer, Permission.CONTENT_WRITE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    rows = (
        await UploadModel.filter(moderation=ModerationModel(status))
        .order_by("id")
        .offset(cursor_offset(after))
        .limit(limit)
    )
    return [Image.from_model(u) for u in rows]


# --- Articles ---------------------------------------------------------------------------------------------------


def _article_input(input: ArticleInput) -> articles.ArticleInput:
    return articles.ArticleInput(
        title=input.title,
        body_html=input.body_html,
        summary=input.summary,
        cover_id=decode_id(input.cover_id, "Upload", "input.coverId") if input.cover_id else None,
        product_ids=_ids(input.product_ids, "Product", "input.productIds"),
        tags=list(input.tags),
    )


@staff_or_member_mutation(Permission.CONTENT_WRITE, action="articleCreate")
async def article_create(info: ContentInfo, input: ArticleInput) -> ArticlePayload:
    row = await articles.create_article(await _author(info), _article_input(input))
    return ArticlePayload(article=Article.from_model(row))


@staff_or_member_mutation(Permission.CONTENT_WRITE, action="articleUpdate")
async def article_update(info: ContentInfo, id: strawberry.ID, input: ArticleInput) -> ArticlePayload:
    row = await articles.update_article(await _author(info), decode_id(id, "Article"), _article_input(input))
    return ArticlePayload(article=Article.from_model(row))


@staff_or_member_mutation(Permission.CONTENT_WRITE, action="articlePublish")
async def article_publish(info: ContentInfo, id: strawberry.ID) -> ArticlePayload:
    row = await articles.set_published(await _author(info), decode_id(id, "Article"), True)
    return ArticlePayload(article=Article.from_model(row))


@staff_or_member_mutation(Permission.CONTENT_WRITE, action="articleUnpublish")
async def article_unpublish(info: ContentInfo, id: strawberry.ID) -> ArticlePayload:
    row = await articles.set_published(await _author(info), decode_id(id, "Article"), False)
    return ArticlePayload(article=Article.from_model(row))


@staff_mutation(Permission.CONTENT_WRITE, action="articleModerate")
async def article_moderate(info: ContentInfo, id: strawberry.ID, approve: bool) -> ArticlePayload:
    return ArticlePayload(
        article=Article.from_model(await articles.moderate(decode_id(id, "Article"), approve))
    )


@payload_mutation
async def article_like(info: ContentInfo, id: strawberry.ID, liked: bool = True) -> ArticlePayload:
    row = await articles.set_liked(_member(info).id, decode_id(id, "Article"), liked)
    return ArticlePayload(article=Article.from_model(row))


async def article(info: ContentInfo, id: strawberry.ID) -> Article | None:
    pk = decode_id(id, "Article")
    info.context.depends_on(articles.articles_tag(pk))
    viewer = info.context.viewer
    member_id = viewer.member.id if viewer.member else None
    row = await articles.visible_article(pk, member_id=member_id, staff=viewer.is_staff)
    if row is not None and not row.visible:
        info.context.cache_blocked = True  # the writer's own unpublished draft: never a shared answer
    return Article.from_model(row) if row else None


async def article_list(
    info: ContentInfo, filter: ArticleFilter | None = None, first: int | None = 20, after: str | None = None
) -> ArticleConnection:
    """Published articles, newest first; staff see drafts and held ones too."""
    info.context.depends_on(articles.articles_tag())
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    query = articles.ArticleFilter(
        tag=filter.tag.strip() if filter and filter.tag else None,
        product_id=decode_id(filter.product_id, "Product", "filter.productId")
        if filter and filter.product_id
        else None,
    )
    rows, has_next = await articles.list_articles(query, offset, limit, staff=info.context.viewer.is_staff)
    edges, page_info = build_edges([Article.from_model(r) for r in rows], offset)
    page_info.has_next_page = has_next
    return ArticleConnection(edges=edges, page_info=page_info)


# --- Favourites and history -------------------------------------------------------------------------------------

_FAVORITE_KINDS = {"Product": FavoriteKindModel.PRODUCT, "Article": FavoriteKindModel.ARTICLE}


def _favorite_target(id: strawberry.ID) -> tuple[FavoriteKindModel, int]:
    type_name, pk = decode_any(id)
    kind = _FAVORITE_KINDS.get(type_name)
    if kind is None:
        raise DomainError(ErrorCode.INVALID_ID, "Only products and articles can be favourites", "id")
    return kind, pk


@payload_mutation
async def favorite_add(info: ContentInfo, id: strawberry.ID) -> FavoritePayload:
    kind, pk = _favorite_target(id)
    return FavoritePayload(favorite=await favorites.set_favorite(_member(info).id, kind, pk, True))


@payload_mutation
async def favorite_remove(info: ContentInfo, id: strawberry.ID) -> FavoritePayload:
    kind, pk = _favorite_target(id)
    return FavoritePayload(favorite=await favorites.set_favorite(_member(info).id, kind, pk, False))


async def my_favorites(
    info: ContentInfo, kind: FavoriteKind | None = None, first: int | None = 20, after: str | None = None
) -> FavoriteConnection:
    member = _member(info)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    wanted = FavoriteKindModel(kind) if kind is not None else None
    rows, has_next = await favorites.my_favorites(member.id, wanted, offset, limit)
    edges, page_info = build_edges([favorite_of(r) for r in rows], offset)
    page_info.has_next_page = has_next
    return FavoriteConnection(
        edges=edges, page_info=page_info, _total=lambda: favorites.count_favorites(member.id, wanted)
    )


async def favorited(info: ContentInfo, ids: list[strawberry.ID]) -> list[strawberry.ID]:
    """Which of these products and articles the member has as favourites (the heart on a page)."""
    member = info.context.viewer.member
    if member is None or not ids:
        return []
    if len(ids) > info.context.settings.max_page_size:
        raise DomainError(ErrorCode.PAGE_SIZE_EXCEEDED, "Too many IDs at once", "ids")
    targets = [_favorite_target(i) for i in ids]
    found: set[tuple[FavoriteKindModel, int]] = set()
    for kind in set(k for k, _ in targets):
        chosen = [pk for k, pk in targets if k is kind]
        found |= {(kind, pk) for pk in await favorites.favorited(member.id, kind, chosen)}
    names = {FavoriteKindModel.PRODUCT: "Product", FavoriteKindModel.ARTICLE: "Article"}
    return [encode_id(names[k], pk) for k, pk in targets if (k, pk) in found]


@payload_mutation
async def history_record(info: ContentInfo, product_id: strawberry.ID) -> HistoryPayload:
    row = await history.record_view(_member(info).id, decode_id(product_id, "Product", "productId"))
    return HistoryPayload(entry=history_entry_of(row))


@payload_mutation
async def history_clear(info: ContentInfo, product_ids: list[strawberry.ID] | None = None) -> HistoryPayload:
    ids = _ids(product_ids, "Product", "productIds") if product_ids is not None else None
    return HistoryPayload(removed=await history.clear_history(_member(info).id, ids))


async def my_history(
    info: ContentInfo, first: int | None = 20, after: str | None = None
) -> HistoryConnection:
    member = _member(info)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, has_next = await history.my_history(member.id, offset, limit)
    edges, page_info = build_edges([history_entry_of(r) for r in rows], offset)
    page_info.has_next_page = has_next
    return HistoryConnection(
        edges=edges, page_info=page_info, _total=lambda: history.count_history(member.id)
    )


# --- Root fields ------------------------------------------------------------------------------------------------


@strawberry.type
class ContentQuery:
    articles: ArticleConnection = strawberry.field(
        resolver=article_list, description="Published articles, newest first (staff: every article)."
    )
    article: Article | None = strawberry.field(
        resolver=article, description="An article with its products priced for the viewer."
    )
    my_reviews: ReviewConnection = strawberry.field(
        resolver=my_reviews, description="The member's reviews, held and hidden ones too, with their status."
    )
    my_favorites: FavoriteConnection = strawberry.field(resolver=my_favorites, description="Newest first.")
    my_history: HistoryConnection = strawberry.field(
        resolver=my_history, description="Products the member viewed (足迹), most recent first."
    )
    favorited: list[strawberry.ID] = strawberry.field(
        resolver=favorited,
        description="Which of the given product / article IDs the member has as favourites.",
    )
    staff_reviews: ReviewConnection = strawberry.field(
        resolver=staff_reviews, description="Reviews for moderation, newest first. Needs CONTENT_WRITE."
    )
    staff_images: list[Image] = strawberry.field(
        resolver=staff_images,
        description="Uploaded images by moderation status (HELD by default). Needs CONTENT_WRITE.",
    )


@strawberry.type
class ContentMutation:
    review_create: ReviewPayload = strawberry.mutation(
        resolver=review_create,
        description="Review a line of a received order (once, within REVIEW_WINDOW_DAYS); earns REVIEW points.",
    )
    review_append: ReviewPayload = strawberry.mutation(
        resolver=review_append,
        description="The append review (追评), once, within REVIEW_APPEND_DAYS of receipt.",
    )
    review_reply: ReviewPayload = strawberry.mutation(
        resolver=review_reply, description="Staff: the shop's reply."
    )
    review_hide: ReviewPayload = strawberry.mutation(resolver=review_hide, description="Staff: hide or show.")
    review_feature: ReviewPayload = strawberry.mutation(
        resolver=review_feature, description="Staff: feature on the product page (精选)."
    )
    review_moderate: ReviewPayload = strawberry.mutation(
        resolver=review_moderate, description="Staff: approve or refuse what WeChat held for review."
    )
    image_moderate: ImagePayload = strawberry.mutation(
        resolver=image_moderate, description="Staff: approve or refuse an image WeChat held for review."
    )
    article_create: ArticlePayload = strawberry.mutation(
        resolver=article_create,
        description="A new draft article (staff; members when ARTICLES_BY_MEMBERS is on).",
    )
    article_update: ArticlePayload = strawberry.mutation(resolver=article_update)
    article_publish: ArticlePayload = strawberry.mutation(resolver=article_publish)
    article_unpublish: ArticlePayload = strawberry.mutation(resolver=article_unpublish)
    article_moderate: ArticlePayload = strawberry.mutation(
        resolver=article_moderate, description="Staff: approve or refuse a member's article WeChat held."
    )
    article_like: ArticlePayload = strawberry.mutation(resolver=article_like)
    favorite_add: FavoritePayload = strawberry.mutation(
        resolver=favorite_add, description="Add a product or article (by its ID) to the member's favourites."
    )
    favorite_remove: FavoritePayload = strawberry.mutation(resolver=favorite_remove)
    history_record: HistoryPayload = strawberry.mutation(
        resolver=history_record,
        description="Record that the member viewed a product; call it when a product page shows (the page "
        "itself is served from a shared cache and records nothing).",
    )
    history_clear: HistoryPayload = strawberry.mutation(
        resolver=history_clear, description="Forget the given products, or the whole history without IDs."
    )
