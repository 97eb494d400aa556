"""One loader per "load X by Y" for content: review pages, stats and photos, authors, uploads, article links.

Loaders do not check who is asking: the schema decides what a viewer sees of what they load.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from aiodataloader import DataLoader

from models import ArticleProduct, ArticleTag, Member, Review, ReviewPhoto, Upload
from services.content import reviews
from services.content.reviews import ReviewFilter, ReviewStats


class ReviewPageKey(NamedTuple):
    product_id: int
    with_photos: bool
    rating: int | None
    offset: int
    limit: int
    featured: bool


class ReviewPageLoader(DataLoader[ReviewPageKey, list[Review]]):
    """A page of a product's public reviews; keys asking the same page of several products share a query."""

    async def batch_load_fn(self, keys: list[ReviewPageKey]) -> list[list[Review]]:
        groups: dict[tuple[bool, int | None, int, int, bool], list[int]] = defaultdict(list)
        for key in keys:
            groups[(key.with_photos, key.rating, key.offset, key.limit, key.featured)].append(key.product_id)
        pages: dict[ReviewPageKey, list[Review]] = {}
        for (with_photos, rating, offset, limit, featured), product_ids in groups.items():
            found = await reviews.review_pages(
                list(dict.fromkeys(product_ids)),
                ReviewFilter(with_photos, rating),
                offset,
                limit,
                featured=featured,
            )
            for product_id, page in found.items():
                pages[ReviewPageKey(product_id, with_photos, rating, offset, limit, featured)] = page
        return [pages.get(key, []) for key in keys]


class ReviewStatsLoader(DataLoader[int, ReviewStats]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[ReviewStats]:
        stats = await reviews.review_stats(product_ids)
        return [stats[p] for p in product_ids]


class ReviewPhotosLoader(DataLoader[int, list[tuple[ReviewPhoto, Upload]]]):
    async def batch_load_fn(self, review_ids: list[int]) -> list[list[tuple[ReviewPhoto, Upload]]]:
        photos = await reviews.photos_of(review_ids)
        return [photos[i] for i in review_ids]


class MemberLoader(DataLoader[int, Member | None]):
    """Members as authors (nickname and avatar only are shown)."""

    async def batch_load_fn(self, ids: list[int]) -> list[Member | None]:
        found = {m.id: m for m in await Member.filter(id__in=ids).only("id", "nickname", "avatar_url")}
        return [found.get(i) for i in ids]


class UploadLoader(DataLoader[int, Upload | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[Upload | None]:
        found = {u.id: u for u in await Upload.filter(id__in=ids)}
        return [found.get(i) for i in ids]


class ArticleProductIdsLoader(DataLoader[int, list[int]]):
    async def batch_load_fn(self, article_ids: list[int]) -> list[list[int]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for article_id, product_id in (
            await ArticleProduct.filter(article_id__in=article_ids)
            .order_by("article_id", "sort", "id")
            .values_list("article_id", "product_id")
        ):
            groups[article_id].append(product_id)
        return [groups.get(i, []) for i in article_ids]


class ArticleTagsLoader(DataLoader[int, list[str]]):
    async def batch_load_fn(self, article_ids: list[int]) -> list[list[str]]:
        groups: dict[int, list[str]] = defaultdict(list)
        for article_id, name in (
            await ArticleTag.filter(article_id__in=article_ids)
            .order_by("article_id", "id")
            .values_list("article_id", "name")
        ):
            groups[article_id].append(name)
        return [groups.get(i, []) for i in article_ids]


class ContentLoaders:
    """The content loaders of one request."""

    def __init__(self) -> None:
        self.review_page = ReviewPageLoader()
        self.review_stats = ReviewStatsLoader()
        self.review_photos = ReviewPhotosLoader()
        self.member = MemberLoader()
        self.upload = UploadLoader()
        self.article_product_ids = ArticleProductIdsLoader()
        self.article_tags = ArticleTagsLoader()
