"""Reviews (评价): one per order line after receipt, an append review (追评), staff reply / hide / feature /
moderation, and what a product page shows of them.

A review is written once the order is RECEIVED or COMPLETED, within REVIEW_WINDOW_DAYS of receipt (the window
is computed from the receipt time, so it closes by itself with no job); the append within
REVIEW_APPEND_DAYS of receipt. The text passes WeChat's content check first (services.content.security):
risky text is refused and nothing is written; text WeChat wants reviewed is held for staff. Photos show only
once their media check passed. Reviewing earns REVIEW_POINTS once per line (idempotency key
`review:line:<id>`), when the review first becomes public.

`visible` (the text passed and staff did not hide it) and `photo_count` (photos that passed) are kept on the
row, so product pages filter and count with indexes. Every change a reader could see drops the cached answers
tagged `reviews:<product id>` (product pages and listings that showed review data) on every process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count, Sum
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.runtime import current_runtime
from infra.settings import get_settings
from models import (
    Member,
    Moderation,
    Order,
    OrderLine,
    OrderStatus,
    PointsReason,
    Review,
    ReviewPhoto,
    Upload,
)
from services.content import security, uploads
from services.content.security import ContentKind
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.loyalty.points import apply_points_change

log = logging.getLogger("lianmall.content")

CONTENT_MAX = 500
REPLY_MAX = 500
MAX_PHOTOS = 9
REVIEWABLE = (OrderStatus.RECEIVED, OrderStatus.COMPLETED)
GOOD_RATING = 4
FEATURED_SHOWN = 3


def reviews_tag(product_id: int) -> str:
    """The response-cache tag of everything a reader sees of a product's reviews."""
    return f"reviews:{product_id}"


@dataclass(frozen=True)
class ReviewInput:
    order_line_id: int
    rating: int
    content: str = ""
    description_score: int | None = None
    logistics_score: int | None = None
    service_score: int | None = None
    photo_ids: list[int] = field(default_factory=list)
    anonymous: bool = False


@dataclass(frozen=True)
class ReviewFilter:
    with_photos: bool = False
    rating: int | None = None


def _score_problem(value: int | None, field_name: str) -> DomainError | None:
    if value is not None and not 1 <= value <= 5:
        return DomainError(ErrorCode.BAD_USER_INPUT, "Scores are 1 to 5 stars", field_name)
    return None


def _validate(data: ReviewInput) -> None:
    problems = [
        p
        for p in (
            _score_problem(data.rating, "input.rating"),
            _score_problem(data.description_score, "input.descriptionScore"),
            _score_problem(data.logistics_score, "input.logisticsScore"),
            _score_problem(data.service_score, "input.serviceScore"),
        )
        if p is not None
    ]
    if len(data.content) > CONTENT_MAX:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT, f"A review is at most {CONTENT_MAX} characters", "input.content"
            )
        )
    if len(data.photo_ids) > MAX_PHOTOS:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"At most {MAX_PHOTOS} photos", "input.photoIds")
        )
    if problems:
        raise ValidationErrors(problems)


def _received_at(order: Order) -> datetime:
    return order.received_at or order.completed_at or order.created_at


async def _photos_free(upload_ids: list[int], field_name: str) -> None:
    if upload_ids and await ReviewPhoto.exists(upload_id__in=upload_ids):
        raise DomainError(ErrorCode.CONFLICT, "A photo already belongs to another review", field_name)


async def _openid(member_id: int) -> str:
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The member no longer exists")
    return member.openid


async def _reward(review: Review) -> None:
    """Inside the transaction that made the review public: REVIEW points, once per order line."""
    points = get_settings().review_points
    if points <= 0:
        return
    await apply_points_change(
        review.member_id,  # type: ignore[attr-defined]
        points,
        PointsReason.REVIEW,
        f"review:line:{review.order_line_id}",  # type: ignore[attr-defined]
        note="评价奖励",
    )


async def reviews_changed(product_ids: set[int]) -> None:
    """Drop cached answers that showed these products' reviews, on every process (after the commit)."""
    if not product_ids:
        return
    try:
        await current_runtime().cache.invalidate({reviews_tag(p) for p in product_ids})
    except Exception:
        # Committed already: a Redis hiccup must not report the write as failed (entries also expire).
        log.exception("dropping cached reviews of %s failed", product_ids)


async def _passed_photo_count(review_id: int) -> int:
    return await ReviewPhoto.filter(review_id=review_id, upload__moderation=Moderation.PASSED).count()


# --- Members ------------------------------------------------------------------------------------------------


async def create_review(member_id: int, data: ReviewInput) -> Review:
    """Review one line of the member's received order.

    Raises ValidationErrors (BAD_USER_INPUT), DomainError NOT_FOUND (not the member's line or photo),
    REVIEW_NOT_ALLOWED (not received yet, or the window closed), ALREADY_REVIEWED, CONFLICT (a photo of
    another review), CONTENT_REJECTED, WECHAT_UNAVAILABLE. Nothing is written on any error.
    """
    _validate(data)
    line = await OrderLine.get_or_none(id=data.order_line_id).select_related("order")
    if line is None or line.order.member_id != member_id:  # type: ignore[attr-defined]
        raise DomainError(ErrorCode.NOT_FOUND, "No such order line of yours", "input.orderLineId")
    order = line.order
    if order.status not in REVIEWABLE:
        raise DomainError(
            ErrorCode.REVIEW_NOT_ALLOWED,
            "A purchase can be reviewed once it is received",
            "input.orderLineId",
        )
    closes = _received_at(order) + timedelta(days=get_settings().review_window_days)
    if now() > closes:
        raise DomainError(
            ErrorCode.REVIEW_NOT_ALLOWED,
            f"The review window closed on {closes:%Y-%m-%d}",
            "input.orderLineId",
        )
    if await Review.exists(order_line_id=line.id):
        raise DomainError(
            ErrorCode.ALREADY_REVIEWED, "This purchase is already reviewed", "input.orderLineId"
        )
    photos = await uploads.owned_uploads(member_id, data.photo_ids, "input.photoIds")
    await _photos_free(data.photo_ids, "input.photoIds")
    content = data.content.strip()
    moderation = await security.check_text(
        ContentKind.REVIEW, await _openid(member_id), content, "input.content"
    )
    try:
        async with in_transaction():
            review = await Review.create(
                order_line_id=line.id,
                member_id=member_id,
                product_id=line.product_id,
                sku_id=line.sku_id,
                spec=line.spec,
                rating=data.rating,
                description_score=data.description_score or data.rating,
                logistics_score=data.logistics_score or data.rating,
                service_score=data.service_score or data.rating,
                content=content,
                anonymous=data.anonymous,
                moderation=moderation,
                visible=moderation is Moderation.PASSED,
                photo_count=sum(1 for p in photos if p.moderation is Moderation.PASSED),
            )
            for sort, upload in enumerate(photos):
                await ReviewPhoto.create(review_id=review.id, upload_id=upload.id, sort=sort)
            if review.visible:
                await _reward(review)
    except IntegrityError:
        # A concurrent request reviewed the line (or took a photo) first; ours rolled back.
        raise DomainError(
            ErrorCode.ALREADY_REVIEWED, "This purchase is already reviewed", "input.orderLineId"
        ) from None
    if review.visible:
        await reviews_changed({review.product_id})
    return review


async def owned_review(member_id: int, review_id: int) -> Review:
    review = await Review.get_or_none(id=review_id, member_id=member_id)
    if review is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such review of yours", "id")
    return review


async def append_review(member_id: int, review_id: int, content: str, photo_ids: list[int]) -> Review:
    """The member's append review (追评) to their review, once, within REVIEW_APPEND_DAYS of receipt.

    Raises DomainError NOT_FOUND, BAD_USER_INPUT, REVIEW_NOT_ALLOWED (window closed), CONFLICT (appended
    already, or a photo of another review), CONTENT_REJECTED, WECHAT_UNAVAILABLE.
    """
    content = content.strip()
    if not 1 <= len(content) <= CONTENT_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"An append is 1 to {CONTENT_MAX} characters", "content")
    if len(photo_ids) > MAX_PHOTOS:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"At most {MAX_PHOTOS} photos", "photoIds")
    review = await owned_review(member_id, review_id)
    if review.appended_at is not None:
        raise DomainError(ErrorCode.CONFLICT, "This review already has its append", "id")
    line = await OrderLine.get(id=review.order_line_id).select_related("order")  # type: ignore[attr-defined]
    closes = _received_at(line.order) + timedelta(days=get_settings().review_append_days)
    if now() > closes:
        raise DomainError(ErrorCode.REVIEW_NOT_ALLOWED, f"Appends closed on {closes:%Y-%m-%d}", "id")
    photos = await uploads.owned_uploads(member_id, photo_ids, "photoIds")
    await _photos_free(photo_ids, "photoIds")
    moderation = await security.check_text(ContentKind.REVIEW, await _openid(member_id), content, "content")
    try:
        async with in_transaction():
            changed = await Review.filter(id=review.id, appended_at__isnull=True).update(
                append_content=content, append_moderation=moderation, appended_at=now()
            )
            if not changed:
                raise DomainError(ErrorCode.CONFLICT, "This review already has its append", "id")
            for sort, upload in enumerate(photos):
                await ReviewPhoto.create(review_id=review.id, upload_id=upload.id, sort=sort, appended=True)
            await Review.filter(id=review.id).update(photo_count=await _passed_photo_count(review.id))
    except IntegrityError:
        raise DomainError(
            ErrorCode.CONFLICT, "A photo already belongs to another review", "photoIds"
        ) from None
    await review.refresh_from_db()
    if review.visible:
        await reviews_changed({review.product_id})
    return review


async def my_reviews(member_id: int, offset: int, limit: int) -> tuple[list[Review], bool]:
    """One page of the member's reviews (held and hidden ones too), newest first, and whether more follow."""
    rows = list(await Review.filter(member_id=member_id).order_by("-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_my_reviews(member_id: int) -> int:
    return await Review.filter(member_id=member_id).count()


# --- Staff ----------------------------------------------------------------------------------------------------


async def _staff_update(review_id: int, **values: object) -> Review:
    review = await Review.get_or_none(id=review_id)
    if review is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such review", "id")
    was_visible = review.visible
    async with in_transaction():
        review.update_from_dict(values)
        review.visible = review.moderation is Moderation.PASSED and not review.hidden
        await review.save(update_fields=[*values, "visible", "updated_at"])
        if review.visible and not was_visible:
            await _reward(review)
    if review.visible or was_visible:
        await reviews_changed({review.product_id})
    return review


async def reply(review_id: int, staff_id: int, text: str) -> Review:
    """The shop's reply under a review (replacing an earlier one). Raises NOT_FOUND, BAD_USER_INPUT."""
    text = text.strip()
    if not 1 <= len(text) <= REPLY_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A reply is 1 to {REPLY_MAX} characters", "content")
    return await _staff_update(review_id, reply=text, reply_staff_id=staff_id, replied_at=now())


async def set_hidden(review_id: int, hidden: bool) -> Review:
    """Hide a review from everyone but its writer (or show it again)."""
    return await _staff_update(review_id, hidden=hidden)


async def set_featured(review_id: int, featured: bool) -> Review:
    """Feature a review at the top of its product's page (or stop featuring it)."""
    return await _staff_update(review_id, featured=featured)


async def moderate(review_id: int, approve: bool) -> Review:
    """Decide the held parts of a review (its text, its append): shown, or refused for good.

    Raises NOT_FOUND, CONFLICT when nothing of it is held.
    """
    review = await Review.get_or_none(id=review_id)
    if review is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such review", "id")
    decided = Moderation.PASSED if approve else Moderation.REJECTED
    values: dict[str, object] = {}
    if review.moderation is Moderation.HELD:
        values["moderation"] = decided
    if review.append_moderation is Moderation.HELD:
        values["append_moderation"] = decided
    if not values:
        raise DomainError(ErrorCode.CONFLICT, "Nothing of this review is waiting for a decision", "id")
    return await _staff_update(review_id, **values)


async def staff_reviews(
    moderation: Moderation | None, product_id: int | None, hidden: bool | None, offset: int, limit: int
) -> tuple[list[Review], bool]:
    """Reviews for staff, newest first: held ones (the moderation queue), a product's, hidden ones."""
    query = Review.all()
    if moderation is not None:
        query = query.filter(Q(moderation=moderation) | Q(append_moderation=moderation))
    if product_id is not None:
        query = query.filter(product_id=product_id)
    if hidden is not None:
        query = query.filter(hidden=hidden)
    rows = list(await query.order_by("-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


# --- Photos' verdicts -----------------------------------------------------------------------------------------


async def photo_moderated(upload_id: int) -> None:
    """An upload's verdict arrived (or staff decided it): recount the photos its review shows."""
    photo = await ReviewPhoto.get_or_none(upload_id=upload_id).select_related("review")
    if photo is None:
        return
    review = photo.review
    count = await _passed_photo_count(review.id)
    if count != review.photo_count:
        await Review.filter(id=review.id).update(photo_count=count)
    if review.visible:
        await reviews_changed({review.product_id})


# --- What product pages show ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewStats:
    count: int = 0
    with_photos: int = 0
    rating_counts: dict[int, int] = field(default_factory=dict)
    rating_sum: int = 0
    description_sum: int = 0
    logistics_sum: int = 0
    service_sum: int = 0

    @property
    def good(self) -> int:
        return sum(n for rating, n in self.rating_counts.items() if rating >= GOOD_RATING)


async def review_stats(product_ids: list[int]) -> dict[int, ReviewStats]:
    """Counts and score sums of the public reviews of each product, in two grouped queries."""
    rows = (
        await Review.filter(product_id__in=product_ids, visible=True)
        .annotate(
            n=Count("id"),
            description=Sum("description_score"),
            logistics=Sum("logistics_score"),
            service=Sum("service_score"),
        )
        .group_by("product_id", "rating")
        .values_list("product_id", "rating", "n", "description", "logistics", "service")
    )
    photos = dict(
        await Review.filter(product_id__in=product_ids, visible=True, photo_count__gt=0)
        .annotate(n=Count("id"))
        .group_by("product_id")
        .values_list("product_id", "n")
    )
    sums: dict[int, dict[str, object]] = {}
    for product_id, rating, n, description, logistics, service in rows:
        entry = sums.setdefault(product_id, {"counts": {}, "d": 0, "l": 0, "s": 0})
        entry["counts"][int(rating)] = int(n)  # type: ignore[index]
        entry["d"] = int(entry["d"]) + int(description or 0)  # type: ignore[call-overload]
        entry["l"] = int(entry["l"]) + int(logistics or 0)  # type: ignore[call-overload]
        entry["s"] = int(entry["s"]) + int(service or 0)  # type: ignore[call-overload]
    stats: dict[int, ReviewStats] = {}
    for product_id in product_ids:
        entry = sums.get(product_id)
        if entry is None:
            stats[product_id] = ReviewStats()
            continue
        counts: dict[int, int] = entry["counts"]  # type: ignore[assignment]
        stats[product_id] = ReviewStats(
            count=sum(counts.values()),
            with_photos=int(photos.get(product_id, 0)),
            rating_counts=counts,
            rating_sum=sum(r * n for r, n in counts.items()),
            description_sum=int(entry["d"]),  # type: ignore[call-overload]
            logistics_sum=int(entry["l"]),  # type: ignore[call-overload]
            service_sum=int(entry["s"]),  # type: ignore[call-overload]
        )
    return stats


def _conditions(review_filter: ReviewFilter, featured: bool) -> list[str]:
    # Integers only (validated ints), so the windowed query below is built without user text.
    conditions = ["visible = TRUE"]
    if review_filter.with_photos:
        conditions.append("photo_count > 0")
    if review_filter.rating is not None:
        conditions.append(f"rating = {int(review_filter.rating)}")
    if featured:
        conditions.append("featured = TRUE")
    return conditions


async def review_pages(
    product_ids: list[int], review_filter: ReviewFilter, offset: int, limit: int, *, featured: bool = False
) -> dict[int, list[Review]]:
    """The same page (newest first) of public reviews of several products: one query for one product, two
    for many (a ROW_NUMBER window picks each product's page, SQLite and PostgreSQL alike)."""
    if len(product_ids) == 1:
        query = Review.filter(product_id=product_ids[0], visible=True)
        if review_filter.with_photos:
            query = query.filter(photo_count__gt=0)
        if review_filter.rating is not None:
            query = query.filter(rating=review_filter.rating)
        if featured:
            query = query.filter(featured=True)
        return {product_ids[0]: list(await query.order_by("-id").offset(offset).limit(limit))}
    ids = ", ".join(str(int(p)) for p in product_ids)
    where = " AND ".join([f"product_id IN ({ids})", *_conditions(review_filter, featured)])
    sql = (
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY id DESC) AS rn "
        f"FROM reviews WHERE {where}) ranked WHERE rn > {int(offset)} AND rn <= {int(offset) + int(limit)}"
    )
    rows = await connections.get("default").execute_query_dict(sql)
    pages: dict[int, list[Review]] = {p: [] for p in product_ids}
    if rows:
        for review in await Review.filter(id__in=[r["id"] for r in rows]).order_by("-id"):
            pages[review.product_id].append(review)
    return pages


async def count_reviews(product_id: int, review_filter: ReviewFilter) -> int:
    query = Review.filter(product_id=product_id, visible=True)
    if review_filter.with_photos:
        query = query.filter(photo_count__gt=0)
    if review_filter.rating is not None:
        query = query.filter(rating=review_filter.rating)
    return await query.count()


async def photos_of(review_ids: list[int]) -> dict[int, list[tuple[ReviewPhoto, Upload]]]:
    """Each review's photos (main ones first, then the append's) with their uploads, in one query."""
    grouped: dict[int, list[tuple[ReviewPhoto, Upload]]] = {i: [] for i in review_ids}
    for photo in (
        await ReviewPhoto.filter(review_id__in=review_ids)
        .select_related("upload")
        .order_by("review_id", "appended", "sort")
    ):
        grouped[photo.review_id].append((photo, photo.upload))  # type: ignore[attr-defined]
    return grouped
