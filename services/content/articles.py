"""Articles (种草, brand stories, guides): sanitised rich text, a cover, linked products and tags, publishing,
likes; written by staff, and by members when ARTICLES_BY_MEMBERS is on.

The body is HTML cleaned by nh3 (a maintained sanitiser) to a small set of tags: no scripts, no event handlers,
no styles, links and images over http(s) only. A member's article passes WeChat's content check (title,
summary and text; held for staff on "review") and may show only the member's own uploads, each of which must
pass its media check too: readers see it only when it is published, its text passed and every image passed
(`visible`). Staff articles are the shop's own voice and are not checked.

Like counts and favourite counts are counters changed in the same transaction as the like or favourite row, so
they never drift from the rows.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any

import nh3
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Subquery
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.runtime import current_runtime
from infra.settings import get_settings
from models import (
    Article,
    ArticleLike,
    ArticleMedia,
    ArticleProduct,
    ArticleStatus,
    ArticleTag,
    Moderation,
    Product,
    ProductStatus,
    Upload,
)
from services.content import security
from services.content.security import ContentKind
from services.errors import DomainError, ErrorCode, ValidationErrors

log = logging.getLogger("lianmall.content")

TITLE_MAX = 64
SUMMARY_MAX = 200
BODY_MAX = 50_000
MAX_TAGS = 10
TAG_MAX = 32
MAX_PRODUCTS = 20

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "strong", "b", "em", "i", "u", "s", "blockquote", "ul", "ol", "li", "img", "a",
    "hr", "figure", "figcaption", "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"img": {"src", "alt", "width", "height"}, "a": {"href", "title"}}


def sanitize_html(body: str, allowed_images: set[str] | None = None) -> str:
    """`body` with only ALLOWED_TAGS and their attributes, http(s) URLs, and `rel` on every link.

    With `allowed_images`, an image whose src is not one of those URLs loses its src (a member's article may
    show only the member's own, checked uploads).
    """

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src" and allowed_images is not None and value not in allowed_images:
            return None
        return value

    return nh3.clean(
        body,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def plain_text(body: str) -> str:
    """The text of sanitised HTML, for the content check."""
    return html.unescape(nh3.clean(body, tags=set())).strip()


def _image_sources(body: str) -> list[str]:
    from html.parser import HTMLParser

    found: list[str] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                found.extend(value for name, value in attrs if name == "src" and value)

    Images().feed(body)
    return found


def articles_tag(article_id: int | None = None) -> str:
    """Response-cache tag of one article (or of article lists, without an id)."""
    return f"article:{article_id}" if article_id is not None else "articles"


@dataclass(frozen=True)
class Author:
    staff_id: int | None = None
    member_id: int | None = None
    openid: str = ""


@dataclass(frozen=True)
class ArticleInput:
    title: str
    body_html: str = ""
    summary: str = ""
    cover_id: int | None = None
    product_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def _validate(data: ArticleInput) -> tuple[str, str, list[str]]:
    problems: list[DomainError] = []
    title, summary = data.title.strip(), data.summary.strip()
    tags = list(dict.fromkeys(t.strip() for t in data.tags if t.strip()))
    if not 1 <= len(title) <= TITLE_MAX:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"The title is 1 to {TITLE_MAX} characters", "input.title")
        )
    if len(summary) > SUMMARY_MAX:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT, f"The summary is at most {SUMMARY_MAX} characters", "input.summary"
            )
        )
    if len(data.body_html) > BODY_MAX:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT, f"The body is at most {BODY_MAX} characters", "input.bodyHtml"
            )
        )
    if len(tags) > MAX_TAGS or any(len(t) > TAG_MAX for t in tags):
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT, f"At most {MAX_TAGS} tags of {TAG_MAX} characters", "input.tags"
            )
        )
    if len(set(data.product_ids)) > MAX_PRODUCTS:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"At most {MAX_PRODUCTS} products", "input.productIds")
        )
    if problems:
        raise ValidationErrors(problems)
    return title, summary, tags


def members_may_write() -> bool:
    return get_settings().articles_by_members


async def _uploads_for(author: Author, data: ArticleInput, body: str) -> list[Upload]:
    """The uploads the article shows: its cover and, for a member, the images of the body."""
    ids = [data.cover_id] if data.cover_id is not None else []
    found: list[Upload] = []
    if ids:
        cover = await Upload.get_or_none(id=ids[0])
        mine = author.member_id is None or (cover is not None and cover.member_id == author.member_id)  # type: ignore[attr-defined]
        if cover is None or not mine or cover.moderation is Moderation.REJECTED:
            raise DomainError(ErrorCode.NOT_FOUND, "No such upload for a cover", "input.coverId")
        found.append(cover)
    if author.member_id is not None:
        sources = _image_sources(body)
        if sources:
            found.extend(
                u
                for u in await Upload.filter(member_id=author.member_id, url__in=sources)
                if u.id not in {f.id for f in found}
            )
    return found


async def _product_ids(ids: list[int]) -> list[int]:
    unique = list(dict.fromkeys(ids))
    existing = set(
        await Product.filter(id__in=unique).exclude(status=ProductStatus.DRAFT).values_list("id", flat=True)
    )
    if len(existing) != len(unique):
        raise DomainError(ErrorCode.NOT_FOUND, "No such product", "input.productIds")
    return unique


async def _write(author: Author, data: ArticleInput, article: Article | None) -> Article:
    title, summary, tags = _validate(data)
    if author.member_id is not None:
        own = {u.url for u in await Upload.filter(member_id=author.member_id).only("url")}
        body = sanitize_html(data.body_html, allowed_images=own)
    else:
        body = sanitize_html(data.body_html)
    media = await _uploads_for(author, data, body)
    product_ids = await _product_ids(data.product_ids)
    moderation = Moderation.PASSED
    if author.member_id is not None:
        text = "\n".join(part for part in (title, summary, plain_text(body)) if part)
        moderation = await security.check_text(ContentKind.ARTICLE, author.openid, text, "input")
    cover = media[0] if data.cover_id is not None and media else None
    async with in_transaction():
        values: dict[str, Any] = {
            "title": title,
            "summary": summary,
            "body_html": body,
            "cover_id": cover.id if cover else None,
            "moderation": moderation,
        }
        if article is None:
            article = await Article.create(
                author_staff_id=author.staff_id, author_member_id=author.member_id, **values
            )
        else:
            await Article.filter(id=article.id).update(**values)
            await ArticleTag.filter(article_id=article.id).delete()
            await ArticleProduct.filter(article_id=article.id).delete()
            await ArticleMedia.filter(article_id=article.id).delete()
        for name in tags:
            await ArticleTag.create(article_id=article.id, name=name)
        for sort, product_id in enumerate(product_ids):
            await ArticleProduct.create(article_id=article.id, product_id=product_id, sort=sort)
        for upload in media:
            await ArticleMedia.create(article_id=article.id, upload_id=upload.id)
    return await refresh_visibility(article.id, force_announce=True)


async def create_article(author: Author, data: ArticleInput) -> Article:
    """A new draft. Raises ValidationErrors, NOT_FOUND (cover, product), CONTENT_REJECTED, WECHAT_UNAVAILABLE,
    FORBIDDEN (a member while ARTICLES_BY_MEMBERS is off)."""
    _may_write(author)
    return await _write(author, data, None)


def _may_write(author: Author) -> None:
    if author.member_id is not None and not members_may_write():
        raise DomainError(ErrorCode.FORBIDDEN, "Members cannot write articles in this shop")


async def editable_article(author: Author, article_id: int) -> Article:
    """The article if `author` may edit it: staff any, a member their own (NOT_FOUND otherwise)."""
    _may_write(author)
    query = Article.filter(id=article_id)
    if author.member_id is not None:
        query = query.filter(author_member_id=author.member_id)
    article = await query.first()
    if article is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such article", "id")
    return article


async def update_article(author: Author, article_id: int, data: ArticleInput) -> Article:
    """Replace the article's text, cover, products and tags (checked again for a member)."""
    _validate(data)  # the input first: a malformed request is refused before any lookup
    return await _write(author, data, await editable_article(author, article_id))


async def set_published(author: Author, article_id: int, published: bool) -> Article:
    """Publish (readers see it once every check passed) or take back to draft."""
    article = await editable_article(author, article_id)
    status = ArticleStatus.PUBLISHED if published else ArticleStatus.DRAFT
    values: dict[str, Any] = {"status": status}
    if published and article.published_at is None:
        values["published_at"] = now()
    await Article.filter(id=article.id).update(**values)
    return await refresh_visibility(article.id, force_announce=True)


async def moderate(article_id: int, approve: bool) -> Article:
    """Staff decide a member's article WeChat held for review. Raises NOT_FOUND, CONFLICT."""
    decided = Moderation.PASSED if approve else Moderation.REJECTED
    if not await Article.filter(id=article_id, moderation=Moderation.HELD).update(moderation=decided):
        if not await Article.exists(id=article_id):
            raise DomainError(ErrorCode.NOT_FOUND, "No such article", "id")
        raise DomainError(ErrorCode.CONFLICT, "The article is not waiting for a decision", "id")
    return await refresh_visibility(article_id, force_announce=True)


async def refresh_visibility(article_id: int, force_announce: bool = False) -> Article:
    """Recompute whether readers may see the article; announce a change to cached answers."""
    article = await Article.get(id=article_id)
    waiting = (
        await ArticleMedia.filter(article_id=article_id)
        .exclude(upload__moderation=Moderation.PASSED)
        .exists()
    )
    visible = (
        article.status is ArticleStatus.PUBLISHED and article.moderation is Moderation.PASSED and not waiting
    )
    changed = visible != article.visible
    if changed:
        await Article.filter(id=article_id).update(visible=visible)
        article.visible = visible
    if changed or force_announce:
        await _announce(article_id)
    return article


async def _announce(article_id: int) -> None:
    try:
        await current_runtime().cache.invalidate({articles_tag(article_id), articles_tag()})
    except Exception:
        log.exception("dropping cached answers of article %s failed", article_id)


async def media_moderated(upload_id: int) -> None:
    """An upload's verdict arrived: the articles showing it may become visible (or stay hidden)."""
    for article_id in await ArticleMedia.filter(upload_id=upload_id).values_list("article_id", flat=True):
        await refresh_visibility(int(article_id))


# --- Reading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleFilter:
    tag: str | None = None
    product_id: int | None = None
    author_member_id: int | None = None


async def visible_article(
    article_id: int, member_id: int | None = None, staff: bool = False
) -> Article | None:
    """The article if the viewer may read it: anyone when visible, its writer and staff always."""
    article = await Article.get_or_none(id=article_id)
    if article is None:
        return None
    if article.visible or staff or (member_id is not None and article.author_member_id == member_id):  # type: ignore[attr-defined]
        return article
    return None


async def list_articles(
    article_filter: ArticleFilter, offset: int, limit: int, *, staff: bool = False
) -> tuple[list[Article], bool]:
    """One page of articles, newest published first (staff: every article, newest first)."""
    query = Article.all() if staff else Article.filter(visible=True)
    if article_filter.tag and len(article_filter.tag) > TAG_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A tag is at most {TAG_MAX} characters", "filter.tag")
    if article_filter.tag:
        query = query.filter(id__in=Subquery(ArticleTag.filter(name=article_filter.tag).values("article_id")))
    if article_filter.product_id is not None:
        query = query.filter(
            id__in=Subquery(ArticleProduct.filter(product_id=article_filter.product_id).values("article_id"))
        )
    if article_filter.author_member_id is not None:
        query = query.filter(author_member_id=article_filter.author_member_id)
    order = ("-id",) if staff else ("-published_at", "-id")
    rows = list(await query.order_by(*order).offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


# --- Likes --------------------------------------------------------------------------------------------------------


async def _readable(article_id: int) -> Article:
    article = await Article.get_or_none(id=article_id, visible=True)
    if article is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such article", "id")
    return article


async def set_liked(member_id: int, article_id: int, liked: bool) -> Article:
    """Like (or unlike) an article; repeating either is a no-op. The counter moves with the row."""
    await _readable(article_id)
    changed = False
    try:
        async with in_transaction():
            if liked:
                await ArticleLike.create(article_id=article_id, member_id=member_id)
                await Article.filter(id=article_id).update(like_count=F("like_count") + 1)
                changed = True
            else:
                if await ArticleLike.filter(article_id=article_id, member_id=member_id).delete():
                    await Article.filter(id=article_id).update(like_count=F("like_count") - 1)
                    changed = True
    except IntegrityError:
        pass  # liked already (perhaps by a concurrent request): nothing changes
    if changed:
        await _announce(article_id)
    return await Article.get(id=article_id)


async def liked_articles(member_id: int, article_ids: list[int]) -> set[int]:
    return set(
        await ArticleLike.filter(member_id=member_id, article_id__in=article_ids).values_list(
            "article_id", flat=True
        )
    )
