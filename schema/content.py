"""Content types: images, reviews and their summary, articles, favourites, browsing history.

What a reader sees is decided here from the viewer: public readers see a review's photos and append only once
they passed WeChat's check; the writer (and staff) see everything, each part with its `status`.
The product page's review fields (`Product.reviews`, `reviewSummary`, `featuredReviews`) resolve here and tag
the answer `reviews:<product id>`, so the cached page is dropped when its reviews change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

import strawberry
from strawberry.types import Info

from models import Article as ArticleModel
from models import ArticleStatus as ArticleStatusModel
from models import BrowsingHistory as HistoryModel
from models import Favorite as FavoriteModel
from models import FavoriteKind as FavoriteKindModel
from models import Moderation as ModerationModel
from models import ProductStatus as ProductStatusModel
from models import Review as ReviewModel
from models import Upload as UploadModel
from schema.catalog import Product
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo, build_edges, cursor_offset
from schema.context import Context
from schema.node import Node, encode_id
from services.catalog.listing import check_page_size
from services.content.reviews import ReviewFilter as ReviewQuery
from services.content.reviews import count_reviews, reviews_tag

if TYPE_CHECKING:
    from loaders.content import ReviewPageKey

ContentInfo = Info[Context, None]

ModerationStatus = strawberry.enum(
    ModerationModel,
    name="ModerationStatus",
    description="Where user content is in WeChat's content check: PENDING (waiting for WeChat), PASSED "
    "(shown), HELD (WeChat asked for a human look: waiting for staff), REJECTED (never shown).",
)
ArticleStatus = strawberry.enum(ArticleStatusModel, name="ArticleStatus")
FavoriteKind = strawberry.enum(FavoriteKindModel, name="FavoriteKind")

ANONYMOUS_NAME = "匿名用户"


@strawberry.type(description="An uploaded image: the stored file, its thumbnail and its content check.")
class Image(Node):
    url: str
    thumbnail_url: str
    width: int
    height: int
    content_type: str
    status: ModerationStatus

    @classmethod
    def from_model(cls, m: UploadModel) -> Image:
        return cls(
            id=encode_id("Upload", m.id),
            url=m.url,
            thumbnail_url=m.thumbnail_url,
            width=m.width,
            height=m.height,
            content_type=m.content_type,
            status=m.moderation,
        )


# --- Reviews ----------------------------------------------------------------------------------------------------


@strawberry.type(description="Who wrote a review, as readers see it (anonymous reviews show a masked name).")
class ReviewAuthor:
    nickname: str
    avatar_url: str
    anonymous: bool


def _masked(nickname: str) -> str:
    return f"{nickname[0]}***{nickname[-1]}" if len(nickname) > 1 else ANONYMOUS_NAME


@strawberry.type(description="The append review (追评) a shopper added later.")
class ReviewAppend:
    content: str
    created_at: datetime
    status: ModerationStatus
    photos: list[Image]


@strawberry.type(description="A shopper's review of one purchased item.")
class Review(Node):
    rating: int = strawberry.field(description="1 to 5 stars.")
    description_score: int = strawberry.field(description="描述相符, 1 to 5.")
    logistics_score: int = strawberry.field(description="物流服务, 1 to 5.")
    service_score: int = strawberry.field(description="服务态度, 1 to 5.")
    content: str
    spec: str = strawberry.field(description="The SKU bought, e.g. 颜色: 红 / 尺码: M.")
    anonymous: bool
    featured: bool
    reply: str | None = strawberry.field(description="The shop's reply.")
    replied_at: datetime | None
    created_at: datetime
    status: ModerationStatus = strawberry.field(
        description="The text's content check; readers only ever see PASSED reviews."
    )
    hidden: bool = strawberry.field(description="Hidden by staff: only the writer and staff see it.")
    _model: strawberry.Private[ReviewModel]
    _full: strawberry.Private[bool]

    @classmethod
    def from_model(cls, m: ReviewModel, full: bool = False) -> Review:
        """`full`: the writer's or staff's view (every photo and the append, with their status)."""
        return cls(
            id=encode_id("Review", m.id),
            rating=m.rating,
            description_score=m.description_score,
            logistics_score=m.logistics_score,
            service_score=m.service_score,
            content=m.content,
            spec=m.spec,
            anonymous=m.anonymous,
            featured=m.featured,
            reply=m.reply or None,
            replied_at=m.replied_at,
            created_at=m.created_at,
            status=m.moderation,
            hidden=m.hidden,
            _model=m,
            _full=full,
        )

    @strawberry.field
    async def author(self, info: ContentInfo) -> ReviewAuthor:
        member = await info.context.content_loaders.member.load(self._model.member_id)  # type: ignore[attr-defined]
        nickname = member.nickname if member and member.nickname else ""
        if self._model.anonymous:
            return ReviewAuthor(nickname=_masked(nickname), avatar_url="", anonymous=True)
        return ReviewAuthor(
            nickname=nickname or ANONYMOUS_NAME,
            avatar_url=member.avatar_url if member else "",
            anonymous=False,
        )

    async def _photos(self, info: ContentInfo, appended: bool) -> list[Image]:
        rows = await info.context.content_loaders.review_photos.load(self._model.id)
        return [
            Image.from_model(upload)
            for photo, upload in rows
            if photo.appended == appended and (self._full or upload.moderation is ModerationModel.PASSED)
        ]

    @strawberry.field(description="Up to 9 photos; readers see those that passed WeChat's check.")
    async def photos(self, info: ContentInfo) -> list[Image]:
        return await self._photos(info, appended=False)

    @strawberry.field(
        name="append", description="The append review, once it passed the check (writer: always)."
    )
    async def append_review(self, info: ContentInfo) -> ReviewAppend | None:
        m = self._model
        if m.appended_at is None or m.append_moderation is None:
            return None
        if not self._full and m.append_moderation is not ModerationModel.PASSED:
            return None
        return ReviewAppend(
            content=m.append_content,
            created_at=m.appended_at,
            status=m.append_moderation,
            photos=await self._photos(info, appended=True),
        )

    @strawberry.field
    async def product(self, info: ContentInfo) -> Product | None:
        model = await info.context.loaders.product.load(self._model.product_id)
        return Product.from_model(model) if model else None


@strawberry.type
class RatingCount:
    rating: int
    count: int


@strawberry.type(description="A product's public reviews in numbers.")
class ReviewSummary:
    count: int
    with_photos: int = strawberry.field(description="Reviews showing at least one photo (晒图).")
    average: float | None = strawberry.field(description="Average rating, one decimal; null without reviews.")
    good_rate_percent: int | None = strawberry.field(
        description="好评率: share of 4 and 5 star reviews, in whole percent; null without reviews."
    )
    rating_counts: list[RatingCount] = strawberry.field(description="Reviews per rating, 5 stars first.")
    description_average: float | None
    logistics_average: float | None
    service_average: float | None


@strawberry.input(description="Which of a product's reviews to list.")
class ReviewFilter:
    with_photos: bool | None = strawberry.field(default=None, description="Only reviews showing photos.")
    rating: int | None = strawberry.field(
        default=None, description="Only reviews with this many stars (1-5)."
    )


@strawberry.type
class ReviewConnection:
    edges: list[Edge[Review]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All matches, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


def _average(total: int, count: int) -> float | None:
    return round(total / count, 1) if count else None


def _review_query(filter: ReviewFilter | None) -> ReviewQuery:
    from services.errors import DomainError, ErrorCode

    rating = filter.rating if filter else None
    if rating is not None and not 1 <= rating <= 5:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "rating is 1 to 5", "filter.rating")
    return ReviewQuery(with_photos=bool(filter and filter.with_photos), rating=rating)


def _page_key(product_id: int, query: ReviewQuery, offset: int, limit: int, featured: bool) -> ReviewPageKey:
    from loaders.content import ReviewPageKey

    return ReviewPageKey(product_id, query.with_photos, query.rating, offset, limit, featured)


async def product_reviews(
    info: ContentInfo, product_id: int, first: int | None, after: str | None, filter: ReviewFilter | None
) -> ReviewConnection:
    """`Product.reviews`: public reviews, newest first."""
    info.context.depends_on(reviews_tag(product_id))
    query = _review_query(filter)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    page = await info.context.content_loaders.review_page.load(
        _page_key(product_id, query, offset, limit + 1, False)
    )
    edges, page_info = build_edges([Review.from_model(r) for r in page[:limit]], offset)
    page_info.has_next_page = len(page) > limit
    return ReviewConnection(edges=edges, page_info=page_info, _total=lambda: count_reviews(product_id, query))


async def product_featured_reviews(info: ContentInfo, product_id: int, limit: int) -> list[Review]:
    """`Product.featuredReviews`: the few reviews staff featured, newest first."""
    from services.content.reviews import FEATURED_SHOWN

    info.context.depends_on(reviews_tag(product_id))
    wanted = max(1, min(limit, FEATURED_SHOWN * 3))
    page = await info.context.content_loaders.review_page.load(
        _page_key(product_id, ReviewQuery(), 0, wanted, True)
    )
    return [Review.from_model(r) for r in page]


async def product_review_summary(info: ContentInfo, product_id: int) -> ReviewSummary:
    info.context.depends_on(reviews_tag(product_id))
    stats = await info.context.content_loaders.review_stats.load(product_id)
    return ReviewSummary(
        count=stats.count,
        with_photos=stats.with_photos,
        average=_average(stats.rating_sum, stats.count),
        good_rate_percent=round(100 * stats.good / stats.count) if stats.count else None,
        rating_counts=[RatingCount(rating=r, count=stats.rating_counts.get(r, 0)) for r in range(5, 0, -1)],
        description_average=_average(stats.description_sum, stats.count),
        logistics_average=_average(stats.logistics_sum, stats.count),
        service_average=_average(stats.service_sum, stats.count),
    )


# --- Articles ---------------------------------------------------------------------------------------------------


@strawberry.type
class ArticleAuthor:
    nickname: str
    avatar_url: str
    is_staff: bool = strawberry.field(description="Written by the shop.")


@strawberry.type(description="A brand story or guide (种草) with linked products.")
class Article(Node):
    title: str
    summary: str
    body_html: str = strawberry.field(description="Sanitised HTML: p, h2-h4, lists, links, images, emphasis.")
    status: ArticleStatus
    moderation: ModerationStatus = strawberry.field(description="A member's article: WeChat's text check.")
    visible: bool = strawberry.field(description="Published and every check passed: readers see it.")
    like_count: int
    favorite_count: int
    published_at: datetime | None
    created_at: datetime
    _model: strawberry.Private[ArticleModel]

    @classmethod
    def from_model(cls, m: ArticleModel) -> Article:
        return cls(
            id=encode_id("Article", m.id),
            title=m.title,
            summary=m.summary,
            body_html=m.body_html,
            status=m.status,
            moderation=m.moderation,
            visible=m.visible,
            like_count=m.like_count,
            favorite_count=m.favorite_count,
            published_at=m.published_at,
            created_at=m.created_at,
            _model=m,
        )

    @strawberry.field
    async def cover(self, info: ContentInfo) -> Image | None:
        if self._model.cover_id is None:  # type: ignore[attr-defined]
            return None
        upload = await info.context.content_loaders.upload.load(self._model.cover_id)  # type: ignore[attr-defined]
        return Image.from_model(upload) if upload else None

    @strawberry.field
    async def tags(self, info: ContentInfo) -> list[str]:
        return await info.context.content_loaders.article_tags.load(self._model.id)

    @strawberry.field(description="Linked products, priced for the viewer (off-shelf ones included, marked).")
    async def products(self, info: ContentInfo) -> list[Product]:
        ids = await info.context.content_loaders.article_product_ids.load(self._model.id)
        for product_id in ids:
            info.context.depends_on(f"p:{product_id}")
        found = await info.context.loaders.product.load_many(ids)
        staff = info.context.viewer.is_staff
        return [
            Product.from_model(p)
            for p in found
            if p is not None and (staff or p.status is not ProductStatusModel.DRAFT)
        ]

    @strawberry.field
    async def author(self, info: ContentInfo) -> ArticleAuthor:
        member_id = self._model.author_member_id  # type: ignore[attr-defined]
        if member_id is None:
            return ArticleAuthor(nickname="", avatar_url="", is_staff=True)
        member = await info.context.content_loaders.member.load(member_id)
        return ArticleAuthor(
            nickname=member.nickname if member else "",
            avatar_url=member.avatar_url if member else "",
            is_staff=False,
        )


@strawberry.type
class ArticleConnection:
    edges: list[Edge[Article]]
    page_info: PageInfo


@strawberry.input
class ArticleFilter:
    tag: str | None = None
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Articles linking this product."
    )


@strawberry.input(description="An article's content; on update every field is replaced.")
class ArticleInput:
    title: str
    body_html: str = strawberry.field(
        default="", description="HTML; anything beyond the allowed tags is removed."
    )
    summary: str = ""
    cover_id: strawberry.ID | None = strawberry.field(default=None, description="An Image (upload) ID.")
    product_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    tags: list[str] = strawberry.field(default_factory=list)


# --- Member content ---------------------------------------------------------------------------------------------


@strawberry.type(description="A favourite (收藏): a product or an article.")
class Favorite:
    kind: FavoriteKind
    created_at: datetime
    _model: strawberry.Private[FavoriteModel]

    @strawberry.field
    async def product(self, info: ContentInfo) -> Product | None:
        if self._model.kind is not FavoriteKindModel.PRODUCT:
            return None
        model = await info.context.loaders.product.load(self._model.target_id)
        return Product.from_model(model) if model else None

    @strawberry.field
    async def article(self, info: ContentInfo) -> Article | None:
        if self._model.kind is not FavoriteKindModel.ARTICLE:
            return None
        from services.content.articles import visible_article

        model = await visible_article(self._model.target_id)
        return Article.from_model(model) if model else None


@strawberry.type
class FavoriteConnection:
    edges: list[Edge[Favorite]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self._total()


@strawberry.type(description="A product the member looked at (足迹).")
class HistoryEntry:
    viewed_at: datetime
    views: int
    _model: strawberry.Private[HistoryModel]

    @strawberry.field
    async def product(self, info: ContentInfo) -> Product | None:
        model = await info.context.loaders.product.load(self._model.product_id)
        return Product.from_model(model) if model else None


@strawberry.type
class HistoryConnection:
    edges: list[Edge[HistoryEntry]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self._total()


# --- Inputs and payloads ----------------------------------------------------------------------------------------


@strawberry.input(description="A review of one line of a received order.")
class ReviewCreateInput:
    order_line_id: strawberry.ID
    rating: int = strawberry.field(description="1 to 5 stars.")
    content: str = strawberry.field(default="", description="At most 500 characters; checked by WeChat.")
    description_score: int | None = strawberry.field(default=None, description="1-5; the rating if omitted.")
    logistics_score: int | None = None
    service_score: int | None = None
    photo_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Up to 9 Image IDs from the upload endpoint."
    )
    anonymous: bool = False


@strawberry.type
class ReviewPayload:
    review: Review | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ImagePayload:
    image: Image | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ArticlePayload:
    article: Article | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FavoritePayload:
    favorite: bool | None = strawberry.field(default=None, description="Whether it is a favourite now.")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class HistoryPayload:
    entry: HistoryEntry | None = None
    removed: int | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def favorite_of(m: FavoriteModel) -> Favorite:
    return Favorite(kind=m.kind, created_at=m.created_at, _model=m)


def history_entry_of(m: HistoryModel) -> HistoryEntry:
    return HistoryEntry(viewed_at=m.viewed_at, views=m.views, _model=m)
