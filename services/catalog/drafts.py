"""The shapes of staff catalog input (drafts and changes) and the limits they are checked against.

Column sizes of the models are checked before writing, so PostgreSQL never has to reject (or SQLite silently
keep) an over-long value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from models import (
    MediaKind,
)

# Column sizes of the models: checked here so PostgreSQL never has to reject (or SQLite silently keep) them.
TITLE_MAX = 120
SUBTITLE_MAX = 200
# A TEXT column, so no size the database enforces: a rich description (HTML) fits well within this.
DESCRIPTION_MAX = 20_000
SPEC_TEXT_MAX = 32
MEDIA_URL_MAX = 500
IMAGE_URL_MAX = 255
BARCODE_MAX = 32
CATEGORY_NAME_MAX = 32
BRAND_NAME_MAX = 64
TAG_NAME_MAX = 32

# The highest price (list, original, member, tier) of one unit: ¥200,000. With at most 100 of a SKU per line
# (PURCHASE_LIMIT_PER_SKU's bound) a line stays within one order's MAX_ORDER_TOTAL (services.orders.pricing),
# so every line and order total fits GraphQL's (and PostgreSQL's) 32-bit Int.
MAX_PRICE = 20_000_000
# A spec picker with more rows than this is unusable; spec_key (one id per dimension) fits easily.
MAX_SPEC_DIMENSIONS = 5
MAX_SKUS_PER_PRODUCT = 200
# MAX_SKUS_PER_PRODUCT SKUs at this stock still sum below the 32-bit `Product.total_stock`.
MAX_STOCK = 10_000_000
MAX_TIER_PRICES = 10
MIN_TIER_QUANTITY = 2
# The one dimension of a product sold in a single variant (as in the demo catalog).
DEFAULT_SPEC = ("规格", "默认")


class Unchanged(Enum):
    """Marks an update field the caller left out, as opposed to one set to None (cleared)."""

    UNCHANGED = "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


# --- Inputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierPrice:
    min_quantity: int
    price: int


@dataclass(frozen=True)
class SpecChoice:
    """One dimension's value of a SKU, by name: 颜色 = 红."""

    name: str
    value: str


@dataclass(frozen=True)
class SpecDeclaration:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class MediaItem:
    url: str
    kind: MediaKind = MediaKind.IMAGE


@dataclass(frozen=True)
class SkuDraft:
    price: int
    spec_values: tuple[SpecChoice, ...] = ()
    stock: int = 0
    original_price: int | None = None
    member_price: int | None = None
    tier_prices: tuple[TierPrice, ...] = ()
    barcode: str = ""
    weight_grams: int = 0


@dataclass(frozen=True)
class SkuChanges:
    price: int | Unchanged = UNCHANGED
    stock: int | Unchanged = UNCHANGED
    original_price: int | Unchanged | None = UNCHANGED
    member_price: int | Unchanged | None = UNCHANGED
    tier_prices: tuple[TierPrice, ...] | Unchanged = UNCHANGED
    barcode: str | Unchanged = UNCHANGED
    weight_grams: int | Unchanged = UNCHANGED


@dataclass(frozen=True)
class ProductDraft:
    title: str
    category_id: int
    subtitle: str = ""
    description: str = ""
    brand_id: int | None = None
    tag_ids: tuple[int, ...] = ()
    media: tuple[MediaItem, ...] = ()
    specs: tuple[SpecDeclaration, ...] = ()
    skus: tuple[SkuDraft, ...] = ()
    stock_warning: int = 10


@dataclass(frozen=True)
class ProductChanges:
    title: str | Unchanged = UNCHANGED
    subtitle: str | Unchanged = UNCHANGED
    description: str | Unchanged = UNCHANGED
    category_id: int | Unchanged = UNCHANGED
    brand_id: int | Unchanged | None = UNCHANGED
    tag_ids: tuple[int, ...] | Unchanged = UNCHANGED
    media: tuple[MediaItem, ...] | Unchanged = UNCHANGED
    stock_warning: int | Unchanged = UNCHANGED


@dataclass(frozen=True)
class CategoryDraft:
    name: str
    parent_id: int | None = None
    sort: int = 0
    icon_url: str = ""


@dataclass(frozen=True)
class CategoryChanges:
    name: str | Unchanged = UNCHANGED
    parent_id: int | Unchanged | None = UNCHANGED
    sort: int | Unchanged = UNCHANGED
    icon_url: str | Unchanged = UNCHANGED
