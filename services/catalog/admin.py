"""Staff writes to the catalog: products with their specs and SKUs, categories, brands and tags.

Every write checks its input first, collecting what it can into one ValidationErrors, then writes everything
inside one transaction, which also keeps a product's denormalised fields (price range, total stock, search
text) in step. Only after the commit is the change announced (services.catalog_events): a rejected or
rolled-back write changes nothing and announces nothing.

Field paths in errors name the GraphQL argument, e.g. `input.skus[1].price` or `id`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from enum import Enum

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from infra.clock import now
from models import (
    DEFAULT_SHOP_CODE,
    MAX_CATEGORY_LEVEL,
    Brand,
    Category,
    MediaKind,
    Product,
    ProductMedia,
    ProductStatus,
    ProductTag,
    Shop,
    Sku,
    SkuSpecValue,
    SpecDimension,
    SpecValue,
    Tag,
)
from services.catalog.events import StockChange, products_changed, taxonomy_changed
from services.catalog.search import search_document
from services.errors import DomainError, ErrorCode, ValidationErrors

# Column sizes of the models: checked here so PostgreSQL never has to reject (or SQLite silently keep) them.
TITLE_MAX = 120
SUBTITLE_MAX = 200
SPEC_TEXT_MAX = 32
MEDIA_URL_MAX = 500
IMAGE_URL_MAX = 255
BARCODE_MAX = 32
CATEGORY_NAME_MAX = 32
BRAND_NAME_MAX = 64
TAG_NAME_MAX = 32

# A spec picker with more rows than this is unusable; spec_key (one id per dimension) fits easily.
MAX_SPEC_DIMENSIONS = 5
MAX_SKUS_PER_PRODUCT = 200
# MAX_SKUS_PER_PRODUCT SKUs at this stock still sum below the 32-bit `Product.total_stock`.
MAX_STOCK = 10_000_000
MAX_TIER_PRICES = 10
MIN_TIER_QUANTITY = 2
# The one dimension of a product sold in a single variant (as in the demo catalog).
DEFAULT_SPEC = ("规格", "默认")
# Staff write into the deployment's default shop (the one the demo seed fills); tests point this at their own.
SHOP_CODE = DEFAULT_SHOP_CODE
DEFAULT_SHOP_NAME = "Lianmall"
_REINDEX_BATCH = 500


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


# --- Checks ----------------------------------------------------------------------------------------------


class _Problems:
    """Input problems found so far, raised together so a form can show them all."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def add(self, field: str, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT) -> None:
        self.errors.append(DomainError(code, message, field))

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationErrors(self.errors)


def _not_found(what: str, field: str) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"No {what} has this ID", field)


def _text(
    problems: _Problems, field: str, value: str, label: str, max_length: int, required: bool = True
) -> str:
    text = value.strip()
    if required and not 1 <= len(text) <= max_length:
        problems.add(field, f"{label} must be 1 to {max_length} characters")
    elif len(text) > max_length:
        problems.add(field, f"{label} may be at most {max_length} characters")
    return text


def _count(problems: _Problems, field: str, value: int, label: str, maximum: int | None = None) -> None:
    if value < 0:
        problems.add(field, f"{label} must not be negative")
    elif maximum is not None and value > maximum:
        problems.add(field, f"{label} may be at most {maximum}")


def _check_media(problems: _Problems, field: str, media: Sequence[MediaItem]) -> list[MediaItem]:
    checked: list[MediaItem] = []
    for i, item in enumerate(media):
        url = _text(problems, f"{field}[{i}].url", item.url, "A media URL", MEDIA_URL_MAX)
        if url and not url.startswith(("https://", "http://")):
            problems.add(f"{field}[{i}].url", "A media URL must start with https:// or http://")
        checked.append(replace(item, url=url))
    return checked


def _check_image_url(problems: _Problems, field: str, url: str) -> str:
    url = _text(problems, field, url, "The image URL", IMAGE_URL_MAX, required=False)
    if url and not url.startswith(("https://", "http://")):
        problems.add(field, "The image URL must start with https:// or http://")
    return url


def _check_sku(problems: _Problems, prefix: str, sku: SkuDraft, check_tiers: bool = True) -> SkuDraft:
    """Problems with a SKU's own numbers, each under `prefix`; the SKU with its barcode trimmed."""
    _count(problems, f"{prefix}.price", sku.price, "The price")
    if sku.original_price is not None:
        _count(problems, f"{prefix}.originalPrice", sku.original_price, "The original price")
    if sku.member_price is not None:
        _count(problems, f"{prefix}.memberPrice", sku.member_price, "The member price")
    _count(problems, f"{prefix}.stock", sku.stock, "Stock", MAX_STOCK)
    _count(problems, f"{prefix}.weightGrams", sku.weight_grams, "The weight")
    barcode = _text(problems, f"{prefix}.barcode", sku.barcode, "The barcode", BARCODE_MAX, required=False)
    if check_tiers:
        _check_tiers(problems, f"{prefix}.tierPrices", sku.tier_prices, sku.price)
    return replace(sku, barcode=barcode)


def _check_tiers(problems: _Problems, field: str, tiers: Sequence[TierPrice], price: int) -> None:
    if len(tiers) > MAX_TIER_PRICES:
        problems.add(field, f"A SKU has at most {MAX_TIER_PRICES} tier prices")
    previous = MIN_TIER_QUANTITY - 1
    for i, tier in enumerate(tiers):
        if tier.min_quantity <= previous:
            problems.add(
                f"{field}[{i}].minQuantity",
                f"Tier quantities start at {MIN_TIER_QUANTITY} and must ascend; got {tier.min_quantity}",
            )
        previous = max(previous, tier.min_quantity)
        if tier.price < 0:
            problems.add(f"{field}[{i}].price", "A tier price must not be negative")
        elif tier.price >= price:
            problems.add(f"{field}[{i}].price", f"A tier price must be below the SKU's price ({price})")


def _check_specs(
    problems: _Problems, specs: Sequence[SpecDeclaration], skus: Sequence[SkuDraft]
) -> tuple[list[SpecDeclaration], list[tuple[str, ...]]]:
    """The product's dimensions and, per SKU, its values in dimension order (valid only without problems).

    A product declared without specs whose only SKU names no spec values gets the default 规格: 默认.
    """
    if not specs and len(skus) == 1 and not skus[0].spec_values:
        name, value = DEFAULT_SPEC
        return [SpecDeclaration(name, (value,))], [(value,)]

    dims: list[SpecDeclaration] = []
    if len(specs) > MAX_SPEC_DIMENSIONS:
        problems.add("input.specs", f"A product has at most {MAX_SPEC_DIMENSIONS} specs")
    for i, spec in enumerate(specs):
        name = _text(problems, f"input.specs[{i}].name", spec.name, "A spec name", SPEC_TEXT_MAX)
        if any(d.name == name for d in dims):
            problems.add(f"input.specs[{i}].name", f"The spec '{name}' is declared twice")
        if not spec.values:
            problems.add(f"input.specs[{i}].values", f"The spec '{name}' needs at least one value")
        values: list[str] = []
        for j, raw in enumerate(spec.values):
            value = _text(problems, f"input.specs[{i}].values[{j}]", raw, "A spec value", SPEC_TEXT_MAX)
            if value in values:
                problems.add(f"input.specs[{i}].values[{j}]", f"'{value}' is listed twice under '{name}'")
            values.append(value)
        dims.append(SpecDeclaration(name, tuple(values)))

    if skus and not dims:
        problems.add(
            "input.specs",
            "Declare the specs these SKUs differ by (only a single SKU without specValues gets 规格: 默认)",
        )
        return dims, []

    combos: list[tuple[str, ...]] = []
    seen: dict[tuple[str, ...], int] = {}
    for i, sku in enumerate(skus):
        combo = _choose(problems, f"input.skus[{i}].specValues", dims, sku.spec_values)
        if combo is None:
            continue
        if combo in seen:
            problems.add(
                f"input.skus[{i}].specValues",
                f"The same spec combination as input.skus[{seen[combo]}]",
                ErrorCode.CONFLICT,
            )
        seen.setdefault(combo, i)
        combos.append(combo)
    return dims, combos


def _choose(
    problems: _Problems, field: str, dims: Sequence[SpecDeclaration], choices: Sequence[SpecChoice]
) -> tuple[str, ...] | None:
    """A SKU's values in dimension order, or None when they do not name each declared value exactly once."""
    chosen: dict[str, str] = {}
    valid = True
    for j, choice in enumerate(choices):
        name, value = choice.name.strip(), choice.value.strip()
        dim = next((d for d in dims if d.name == name), None)
        if dim is None:
            problems.add(
                f"{field}[{j}].name",
                f"'{name}' is not a spec of the product ({_names(d.name for d in dims)})",
            )
            valid = False
        elif name in chosen:
            problems.add(f"{field}[{j}].name", f"'{name}' is given twice")
            valid = False
        elif value not in dim.values:
            problems.add(
                f"{field}[{j}].value", f"'{value}' is not a value of '{name}' ({_names(dim.values)})"
            )
            valid = False
        else:
            chosen[name] = value
    missing = [
        d.name for d in dims if d.name not in chosen and all(c.name.strip() != d.name for c in choices)
    ]
    if missing:
        problems.add(field, f"Give a value for every spec of the product; missing {_names(missing)}")
        valid = False
    return tuple(chosen[d.name] for d in dims) if valid else None


def _names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def _check_choices(problems: _Problems, field: str, choices: Sequence[SpecChoice]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for j, choice in enumerate(choices):
        name = _text(problems, f"{field}[{j}].name", choice.name, "A spec name", SPEC_TEXT_MAX)
        value = _text(problems, f"{field}[{j}].value", choice.value, "A spec value", SPEC_TEXT_MAX)
        if any(n == name for n, _ in pairs):
            problems.add(f"{field}[{j}].name", f"'{name}' is given twice")
        pairs.append((name, value))
    return pairs


# --- Lookups ---------------------------------------------------------------------------------------------


async def _shop_id() -> int:
    shop, _ = await Shop.get_or_create(code=SHOP_CODE, defaults={"name": DEFAULT_SHOP_NAME})
    return shop.id


async def _leaf_category(problems: _Problems, shop_id: int, category_id: int, field: str) -> Category | None:
    category = await Category.get_or_none(id=category_id, shop_id=shop_id)
    if category is None:
        problems.errors.append(_not_found("category", field))
    elif category.level != MAX_CATEGORY_LEVEL:
        problems.add(
            field,
            f"Products belong in a level-{MAX_CATEGORY_LEVEL} (leaf) category; "
            f"'{category.name}' is level {category.level}",
        )
    return category


async def _brand(problems: _Problems, shop_id: int, brand_id: int | None, field: str) -> Brand | None:
    if brand_id is None:
        return None
    brand = await Brand.get_or_none(id=brand_id, shop_id=shop_id)
    if brand is None:
        problems.errors.append(_not_found("brand", field))
    return brand


async def _tags(problems: _Problems, shop_id: int, tag_ids: Sequence[int], field: str) -> list[int]:
    """The distinct tag ids in the order given; unknown ones are problems under `field[i]`."""
    wanted = list(dict.fromkeys(tag_ids))
    found = (
        set(await Tag.filter(id__in=wanted, shop_id=shop_id).values_list("id", flat=True))
        if wanted
        else set()
    )
    for i, tag_id in enumerate(tag_ids):
        if tag_id not in found:
            problems.errors.append(_not_found("tag", f"{field}[{i}]"))
    return wanted


async def _product(product_id: int, field: str) -> Product:
    product = await Product.get_or_none(id=product_id)
    if product is None:
        raise _not_found("product", field)
    return product


async def _locked_product(product_id: int, field: str) -> Product:
    # Every write to a product or its SKUs takes this row lock first, so two writers cannot both recompute
    # the price range and stock total from a view missing the other's change (PostgreSQL; SQLite has one
    # writer anyway and ignores FOR UPDATE).
    product = await Product.filter(id=product_id).select_for_update().first()
    if product is None:
        raise _not_found("product", field)
    return product


@asynccontextmanager
async def _transaction() -> AsyncIterator[None]:
    """One transaction; a unique or foreign key clash with a concurrent write becomes a CONFLICT."""
    try:
        async with in_transaction():
            yield
    except IntegrityError as exc:
        raise DomainError(
            ErrorCode.CONFLICT, "A concurrent change to the same records was saved first; try again"
        ) from exc


# --- Denormalised product fields -------------------------------------------------------------------------


def spec_key(value_ids: Iterable[int]) -> str:
    """The SKU's unique combination key: its spec value ids sorted, joined by "-" (as the demo seed does)."""
    return "-".join(str(i) for i in sorted(value_ids))


def product_search_text(
    title: str, subtitle: str, category_names: Sequence[str], brand: str, tags: Sequence[str]
) -> str:
    """What a product is found by; `category_names` run from its leaf category up to the root."""
    return search_document(title, subtitle, *category_names, brand, *tags)


async def _refresh_totals(product_id: int) -> None:
    rows = await Sku.filter(product_id=product_id).values_list("price", "stock")
    prices = [price for price, _ in rows]
    await Product.filter(id=product_id).update(
        min_price=min(prices, default=0),
        max_price=max(prices, default=0),
        total_stock=sum(stock for _, stock in rows),
        updated_at=now(),
    )


async def _reindex(product_ids: Iterable[int]) -> None:
    """Rewrite the search text of these products from their current title, category, brand and tags."""
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), _REINDEX_BATCH):
        await _reindex_batch(ids[start : start + _REINDEX_BATCH])


async def _reindex_batch(ids: list[int]) -> None:
    products = await Product.filter(id__in=ids)
    if not products:
        return
    leaves = {c.id: c for c in await Category.filter(id__in={p.category_id for p in products})}
    ancestor_ids = {int(i) for c in leaves.values() for i in c.path.split("/") if i}
    names = {c.id: c.name for c in leaves.values()}
    if ancestor_ids:
        names.update(await Category.filter(id__in=ancestor_ids).values_list("id", "name"))
    brand_ids = {p.brand_id for p in products if p.brand_id is not None}
    brands = dict(await Brand.filter(id__in=brand_ids).values_list("id", "name")) if brand_ids else {}
    tags: dict[int, list[str]] = defaultdict(list)
    links = (
        await ProductTag.filter(product_id__in=ids).order_by("tag_id").values_list("product_id", "tag__name")
    )
    for product_id, tag_name in links:
        tags[product_id].append(tag_name)

    for product in products:
        leaf = leaves.get(product.category_id)
        chain = [leaf.id, *reversed([int(i) for i in leaf.path.split("/") if i])] if leaf else []
        product.search_text = product_search_text(
            product.title,
            product.subtitle,
            [names[c] for c in chain if c in names],
            brands.get(product.brand_id, "") if product.brand_id is not None else "",
            tags[product.id],
        )
    await Product.bulk_update(products, fields=["search_text"])


# --- Writing helpers -------------------------------------------------------------------------------------


async def _link_tags(product_id: int, tag_ids: Sequence[int]) -> None:
    if tag_ids:
        await ProductTag.bulk_create([ProductTag(product_id=product_id, tag_id=t) for t in tag_ids])


async def _add_media(product_id: int, media: Sequence[MediaItem]) -> None:
    if media:
        await ProductMedia.bulk_create(
            [ProductMedia(product_id=product_id, kind=m.kind, url=m.url, sort=i) for i, m in enumerate(media)]
        )


async def _insert_sku(product_id: int, value_ids: Sequence[int], draft: SkuDraft) -> Sku:
    sku = await Sku.create(
        product_id=product_id,
        spec_key=spec_key(value_ids),
        price=draft.price,
        original_price=draft.original_price,
        member_price=draft.member_price,
        tier_prices=[{"min_quantity": t.min_quantity, "price": t.price} for t in draft.tier_prices],
        stock=draft.stock,
        barcode=draft.barcode,
        weight_grams=draft.weight_grams,
    )
    await SkuSpecValue.bulk_create([SkuSpecValue(sku_id=sku.id, spec_value_id=v) for v in value_ids])
    return sku


# --- Products --------------------------------------------------------------------------------------------


async def create_product(draft: ProductDraft) -> Product:
    """Create a DRAFT product with its tags, media, spec dimensions and SKUs in one transaction.

    SKU spec values must name each declared spec exactly once, with a declared value; a product declared
    without specs and with one SKU without spec values gets the single spec 规格: 默认.
    Raises ValidationErrors (BAD_USER_INPUT, NOT_FOUND, CONFLICT for repeated spec combinations).
    """
    problems = _Problems()
    title = _text(problems, "input.title", draft.title, "The title", TITLE_MAX)
    subtitle = _text(problems, "input.subtitle", draft.subtitle, "The subtitle", SUBTITLE_MAX, required=False)
    _count(problems, "input.stockWarning", draft.stock_warning, "The stock warning")
    media = _check_media(problems, "input.media", draft.media)
    if len(draft.skus) > MAX_SKUS_PER_PRODUCT:
        problems.add("input.skus", f"A product has at most {MAX_SKUS_PER_PRODUCT} SKUs")
    skus = [_check_sku(problems, f"input.skus[{i}]", s) for i, s in enumerate(draft.skus)]
    dims, combos = _check_specs(problems, draft.specs, skus)
    shop_id = await _shop_id()
    await _leaf_category(problems, shop_id, draft.category_id, "input.categoryId")
    await _brand(problems, shop_id, draft.brand_id, "input.brandId")
    tag_ids = await _tags(problems, shop_id, draft.tag_ids, "input.tagIds")
    problems.raise_any()

    async with _transaction():
        product = await Product.create(
            shop_id=shop_id,
            category_id=draft.category_id,
            brand_id=draft.brand_id,
            title=title,
            subtitle=subtitle,
            description=draft.description,
            stock_warning=draft.stock_warning,
            status=ProductStatus.DRAFT,
        )
        await _link_tags(product.id, tag_ids)
        await _add_media(product.id, media)
        value_ids: dict[tuple[str, str], int] = {}
        for sort, dim in enumerate(dims):
            dimension = await SpecDimension.create(product_id=product.id, name=dim.name, sort=sort)
            for value_sort, value in enumerate(dim.values):
                row = await SpecValue.create(dimension_id=dimension.id, value=value, sort=value_sort)
                value_ids[(dim.name, value)] = row.id
        created = [
            await _insert_sku(
                product.id, [value_ids[(d.name, v)] for d, v in zip(dims, combo, strict=True)], sku
            )
            for sku, combo in zip(skus, combos, strict=True)
        ]
        await _refresh_totals(product.id)
        await _reindex([product.id])
        product = await Product.get(id=product.id)
    await products_changed([product.id], [StockChange(product.id, s.id, s.stock) for s in created])
    return product


async def update_product(product_id: int, changes: ProductChanges) -> Product:
    """Change a product's own fields; `tag_ids` and `media` replace the current ones when given.

    Raises ValidationErrors (BAD_USER_INPUT, NOT_FOUND) or DomainError NOT_FOUND on `id`.
    """
    product = await _product(product_id, "id")
    problems = _Problems()
    fields: dict[str, object] = {}
    if not isinstance(changes.title, Unchanged):
        fields["title"] = _text(problems, "input.title", changes.title, "The title", TITLE_MAX)
    if not isinstance(changes.subtitle, Unchanged):
        fields["subtitle"] = _text(
            problems, "input.subtitle", changes.subtitle, "The subtitle", SUBTITLE_MAX, required=False
        )
    if not isinstance(changes.description, Unchanged):
        fields["description"] = changes.description
    if not isinstance(changes.stock_warning, Unchanged):
        _count(problems, "input.stockWarning", changes.stock_warning, "The stock warning")
        fields["stock_warning"] = changes.stock_warning
    media = (
        None if isinstance(changes.media, Unchanged) else _check_media(problems, "input.media", changes.media)
    )
    if not isinstance(changes.category_id, Unchanged):
        await _leaf_category(problems, product.shop_id, changes.category_id, "input.categoryId")
        fields["category_id"] = changes.category_id
    if not isinstance(changes.brand_id, Unchanged):
        await _brand(problems, product.shop_id, changes.brand_id, "input.brandId")
        fields["brand_id"] = changes.brand_id
    tag_ids = None
    if not isinstance(changes.tag_ids, Unchanged):
        tag_ids = await _tags(problems, product.shop_id, changes.tag_ids, "input.tagIds")
    problems.raise_any()

    async with _transaction():
        await _locked_product(product_id, "id")
        await Product.filter(id=product_id).update(**fields, updated_at=now())
        if tag_ids is not None:
            await ProductTag.filter(product_id=product_id).delete()
            await _link_tags(product_id, tag_ids)
        if media is not None:
            await ProductMedia.filter(product_id=product_id).delete()
            await _add_media(product_id, media)
        await _reindex([product_id])
        product = await Product.get(id=product_id)
    await products_changed([product_id])
    return product


# Target status -> the statuses a product may reach it from. Moving to the status it has is a no-op.
_STATUS_SOURCES: dict[ProductStatus, frozenset[ProductStatus]] = {
    ProductStatus.ON_SALE: frozenset({ProductStatus.DRAFT, ProductStatus.OFF_SHELF}),
    ProductStatus.OFF_SHELF: frozenset({ProductStatus.ON_SALE}),
}


async def _transition(product_id: int, to: ProductStatus) -> Product:
    async with _transaction():
        product = await _locked_product(product_id, "id")
        if product.status == to:
            return product
        if product.status not in _STATUS_SOURCES[to]:
            raise DomainError(
                ErrorCode.CONFLICT, f"A {product.status.value} product cannot become {to.value}", "id"
            )
        if to is ProductStatus.ON_SALE and not await Sku.exists(product_id=product_id):
            raise DomainError(ErrorCode.CONFLICT, "Add at least one SKU before publishing the product", "id")
        product.status = to
        if to is ProductStatus.ON_SALE:
            product.published_at = now()
        await product.save(update_fields=["status", "published_at", "updated_at"])
    await products_changed([product_id])
    return product


async def publish_product(product_id: int) -> Product:
    """Put a DRAFT or OFF_SHELF product on sale (it needs a SKU) and stamp `published_at`.

    Publishing a product already on sale changes nothing. Raises DomainError NOT_FOUND or CONFLICT on `id`.
    """
    return await _transition(product_id, ProductStatus.ON_SALE)


async def unpublish_product(product_id: int) -> Product:
    """Take a product off the shelf; its page stays (已下架). A DRAFT was never on sale: CONFLICT."""
    return await _transition(product_id, ProductStatus.OFF_SHELF)


# --- SKUs ------------------------------------------------------------------------------------------------


async def create_sku(product_id: int, draft: SkuDraft) -> Sku:
    """Add a spec combination to a product, creating spec values (and dimensions) it does not have yet.

    The spec values must name each of the product's specs once; a product without SKUs may gain new specs
    this way, and one without any specs gets 规格: 默认 when none are given.
    Raises ValidationErrors (BAD_USER_INPUT; CONFLICT for an existing combination) or NOT_FOUND.
    """
    problems = _Problems()
    sku = _check_sku(problems, "input", draft)
    choices = _check_choices(problems, "input.specValues", draft.spec_values)
    problems.raise_any()
    await _product(product_id, "input.productId")

    async with _transaction():
        await _locked_product(product_id, "input.productId")
        dims = {d.name: d for d in await SpecDimension.filter(product_id=product_id).order_by("sort", "id")}
        values = await SpecValue.filter(dimension__product_id=product_id)
        existing = set(await Sku.filter(product_id=product_id).values_list("spec_key", flat=True))
        if len(existing) >= MAX_SKUS_PER_PRODUCT:
            problems.add("input.productId", f"A product has at most {MAX_SKUS_PER_PRODUCT} SKUs")
        if not dims and not existing and not choices:
            choices = [DEFAULT_SPEC]
        new_dims = [name for name, _ in choices if name not in dims]
        for j, (name, _) in enumerate(choices):
            if name not in dims and existing:
                problems.add(
                    f"input.specValues[{j}].name",
                    f"'{name}' is not a spec of the product ({_names(dims)}); "
                    "only a product without SKUs can gain a spec",
                )
        missing = [name for name in dims if all(n != name for n, _ in choices)]
        if missing:
            problems.add(
                "input.specValues", f"Give a value for every spec of the product; missing {_names(missing)}"
            )
        if len(dims) + len(new_dims) > MAX_SPEC_DIMENSIONS:
            problems.add("input.specValues", f"A product has at most {MAX_SPEC_DIMENSIONS} specs")
        value_ids = {(v.dimension_id, v.value): v.id for v in values}
        known = [value_ids.get((dims[n].id, v)) if n in dims else None for n, v in choices]
        if all(i is not None for i in known) and spec_key(i for i in known if i is not None) in existing:
            problems.add(
                "input.specValues", "The product already has a SKU with these specs", ErrorCode.CONFLICT
            )
        problems.raise_any()

        chosen: list[int] = []
        for name, value in choices:
            dimension = dims.get(name)
            if dimension is None:
                dimension = await SpecDimension.create(product_id=product_id, name=name, sort=len(dims))
                dims[name] = dimension
            value_id = value_ids.get((dimension.id, value))
            if value_id is None:
                sort = 1 + max((v.sort for v in values if v.dimension_id == dimension.id), default=-1)
                row = await SpecValue.create(dimension_id=dimension.id, value=value, sort=sort)
                values.append(row)
                value_id = value_ids[(dimension.id, value)] = row.id
            chosen.append(value_id)
        created = await _insert_sku(product_id, chosen, sku)
        await _refresh_totals(product_id)
    await products_changed(
        [product_id], [StockChange(product_id, created.id, created.stock)], text_changed=False
    )
    return created


async def update_sku(sku_id: int, changes: SkuChanges) -> Sku:
    """Change a SKU's prices, stock, barcode or weight; the product's price range and stock follow.

    Tier prices must stay below the (new) price. Raises ValidationErrors (BAD_USER_INPUT) or NOT_FOUND.
    """
    found = await Sku.get_or_none(id=sku_id)
    if found is None:
        raise _not_found("SKU", "id")

    async with _transaction():
        await _locked_product(found.product_id, "id")
        sku = await Sku.get_or_none(id=sku_id)
        if sku is None:
            raise _not_found("SKU", "id")
        current = SkuDraft(
            price=sku.price,
            stock=sku.stock,
            original_price=sku.original_price,
            member_price=sku.member_price,
            tier_prices=tuple(TierPrice(int(t["min_quantity"]), int(t["price"])) for t in sku.tier_prices),
            barcode=sku.barcode,
            weight_grams=sku.weight_grams,
        )
        given = {k: v for k, v in vars(changes).items() if not isinstance(v, Unchanged)}
        problems = _Problems()
        merged = _check_sku(problems, "input", replace(current, **given), check_tiers="tier_prices" in given)
        if "tier_prices" not in given and any(t.price >= merged.price for t in merged.tier_prices):
            problems.add(
                "input.price",
                "The price must stay above the SKU's tier prices "
                f"({_names(str(t.price) for t in merged.tier_prices)})",
            )
        problems.raise_any()
        stock_changed = merged.stock != sku.stock
        sku.price = merged.price
        sku.stock = merged.stock
        sku.original_price = merged.original_price
        sku.member_price = merged.member_price
        sku.tier_prices = [{"min_quantity": t.min_quantity, "price": t.price} for t in merged.tier_prices]
        sku.barcode = merged.barcode
        sku.weight_grams = merged.weight_grams
        await sku.save()
        await _refresh_totals(sku.product_id)
    changes_out = [StockChange(sku.product_id, sku.id, sku.stock)] if stock_changed else []
    await products_changed([sku.product_id], changes_out, text_changed=False)
    return sku


# --- Categories ------------------------------------------------------------------------------------------


def _child_path(parent: Category | None) -> str:
    """The `path` of a child of `parent`: its ancestors root-first, then the parent itself."""
    if parent is None:
        return ""
    return f"{parent.path}/{parent.id}" if parent.path else str(parent.id)


async def _category_name_taken(
    shop_id: int, parent_id: int | None, name: str, exclude: int | None = None
) -> bool:
    siblings = Category.filter(shop_id=shop_id, name=name)
    siblings = (
        siblings.filter(parent_id=parent_id)
        if parent_id is not None
        else siblings.filter(parent_id__isnull=True)
    )
    if exclude is not None:
        siblings = siblings.exclude(id=exclude)
    return await siblings.exists()


async def _category(category_id: int, field: str = "id") -> Category:
    category = await Category.get_or_none(id=category_id, shop_id=await _shop_id())
    if category is None:
        raise _not_found("category", field)
    return category


async def _subtree_product_ids(category: Category) -> list[int]:
    prefix = _child_path(category)
    subtree = Q(id=category.id) | Q(path=prefix) | Q(path__startswith=f"{prefix}/")
    ids = await Category.filter(subtree, shop_id=category.shop_id).values_list("id", flat=True)
    return list(await Product.filter(category_id__in=list(ids)).values_list("id", flat=True))


async def create_category(draft: CategoryDraft) -> Category:
    """Create a category under `parent_id` (or a root), at most MAX_CATEGORY_LEVEL levels deep.

    Raises ValidationErrors: BAD_USER_INPUT (a 4th level, bad name), NOT_FOUND (parent), CONFLICT (a sibling
    already has the name).
    """
    problems = _Problems()
    name = _text(problems, "input.name", draft.name, "The name", CATEGORY_NAME_MAX)
    icon_url = _check_image_url(problems, "input.iconUrl", draft.icon_url)
    shop_id = await _shop_id()
    parent = None
    if draft.parent_id is not None:
        parent = await Category.get_or_none(id=draft.parent_id, shop_id=shop_id)
        if parent is None:
            problems.errors.append(_not_found("category", "input.parentId"))
        elif parent.level >= MAX_CATEGORY_LEVEL:
            problems.add(
                "input.parentId",
                f"Categories have at most {MAX_CATEGORY_LEVEL} levels; "
                f"'{parent.name}' is level {parent.level}",
            )
    if name and await _category_name_taken(shop_id, draft.parent_id, name):
        problems.add("input.name", f"A sibling category is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()

    async with _transaction():
        category = await Category.create(
            shop_id=shop_id,
            parent_id=parent.id if parent else None,
            name=name,
            level=parent.level + 1 if parent else 1,
            path=_child_path(parent),
            sort=draft.sort,
            icon_url=icon_url,
        )
    await taxonomy_changed()
    return category


async def update_category(category_id: int, changes: CategoryChanges) -> Category:
    """Rename, re-sort, re-icon or move a category; its products' search text follows a rename or move.

    A move keeps the category's level (the new parent has the level of the old one), so the tree stays
    three levels deep and products stay in leaf categories. Raises ValidationErrors or NOT_FOUND on `id`.
    """
    category = await _category(category_id)
    problems = _Problems()
    name = category.name
    if not isinstance(changes.name, Unchanged):
        name = _text(problems, "input.name", changes.name, "The name", CATEGORY_NAME_MAX)
    icon_url = category.icon_url
    if not isinstance(changes.icon_url, Unchanged):
        icon_url = _check_image_url(problems, "input.iconUrl", changes.icon_url)
    parent_id = category.parent_id
    new_parent: Category | None = None
    if not isinstance(changes.parent_id, Unchanged) and changes.parent_id != category.parent_id:
        parent_id = changes.parent_id
        if parent_id is not None:
            new_parent = await Category.get_or_none(id=parent_id, shop_id=category.shop_id)
        if parent_id is not None and new_parent is None:
            problems.errors.append(_not_found("category", "input.parentId"))
        elif (new_parent.level if new_parent else 0) != category.level - 1:
            problems.add(
                "input.parentId",
                f"A category moves only to a parent of level {category.level - 1}, so it keeps its level "
                f"({category.level}) and its subcategories and products stay where the tree allows them",
            )
    if (name != category.name or parent_id != category.parent_id) and await _category_name_taken(
        category.shop_id, parent_id, name, exclude=category.id
    ):
        problems.add("input.name", f"A sibling category is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()

    moved = parent_id != category.parent_id
    renamed = name != category.name
    async with _transaction():
        old_prefix = _child_path(category)
        category.name = name
        category.icon_url = icon_url
        if not isinstance(changes.sort, Unchanged):
            category.sort = changes.sort
        if moved:
            category.parent_id = parent_id
            category.path = _child_path(new_parent)
            new_prefix = _child_path(category)
            descendants = await Category.filter(
                Q(path=old_prefix) | Q(path__startswith=f"{old_prefix}/"), shop_id=category.shop_id
            )
            for child in descendants:
                child.path = new_prefix + child.path[len(old_prefix) :]
            if descendants:
                await Category.bulk_update(descendants, fields=["path"])
        await category.save()
        # The search text holds the names of a product's leaf and its ancestors.
        if moved or renamed:
            await _reindex(await _subtree_product_ids(category))
    await taxonomy_changed()
    return category


async def delete_category(category_id: int) -> None:
    """Delete a category without subcategories or products. Raises NOT_FOUND or CONFLICT on `id`."""
    category = await _category(category_id)
    if await Category.exists(parent_id=category.id):
        raise DomainError(
            ErrorCode.CONFLICT, f"'{category.name}' has subcategories; move or delete them first", "id"
        )
    products = await Product.filter(category_id=category.id).count()
    if products:
        raise DomainError(
            ErrorCode.CONFLICT, f"'{category.name}' has {products} products; move them first", "id"
        )
    async with _transaction():
        await Category.filter(id=category.id).delete()
    await taxonomy_changed()


# --- Brands and tags -------------------------------------------------------------------------------------


async def _brand_by_id(brand_id: int) -> Brand:
    brand = await Brand.get_or_none(id=brand_id, shop_id=await _shop_id())
    if brand is None:
        raise _not_found("brand", "id")
    return brand


async def create_brand(name: str, logo_url: str = "") -> Brand:
    """Create a brand. Raises ValidationErrors: BAD_USER_INPUT, CONFLICT when the name is taken."""
    problems = _Problems()
    name = _text(problems, "input.name", name, "The name", BRAND_NAME_MAX)
    logo_url = _check_image_url(problems, "input.logoUrl", logo_url)
    shop_id = await _shop_id()
    if name and await Brand.exists(shop_id=shop_id, name=name):
        problems.add("input.name", f"A brand is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    async with _transaction():
        brand = await Brand.create(shop_id=shop_id, name=name, logo_url=logo_url)
    await taxonomy_changed()
    return brand


async def update_brand(
    brand_id: int, name: str | Unchanged = UNCHANGED, logo_url: str | Unchanged = UNCHANGED
) -> Brand:
    """Rename a brand or change its logo; its products' search text follows a rename."""
    brand = await _brand_by_id(brand_id)
    problems = _Problems()
    new_name = (
        brand.name
        if isinstance(name, Unchanged)
        else _text(problems, "input.name", name, "The name", BRAND_NAME_MAX)
    )
    if not isinstance(logo_url, Unchanged):
        brand.logo_url = _check_image_url(problems, "input.logoUrl", logo_url)
    renamed = new_name != brand.name
    if renamed and await Brand.filter(shop_id=brand.shop_id, name=new_name).exclude(id=brand.id).exists():
        problems.add("input.name", f"A brand is already called '{new_name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    brand.name = new_name
    async with _transaction():
        await brand.save()
        if renamed:
            await _reindex(await Product.filter(brand_id=brand.id).values_list("id", flat=True))
    await taxonomy_changed()
    return brand


async def delete_brand(brand_id: int) -> None:
    """Delete a brand; its products keep selling without one. Raises NOT_FOUND on `id`."""
    brand = await _brand_by_id(brand_id)
    async with _transaction():
        product_ids = await Product.filter(brand_id=brand.id).values_list("id", flat=True)
        await Product.filter(brand_id=brand.id).update(brand_id=None, updated_at=now())
        await Brand.filter(id=brand.id).delete()
        await _reindex(product_ids)
    await taxonomy_changed()


async def _tag_by_id(tag_id: int) -> Tag:
    tag = await Tag.get_or_none(id=tag_id, shop_id=await _shop_id())
    if tag is None:
        raise _not_found("tag", "id")
    return tag


async def create_tag(name: str) -> Tag:
    """Create a tag. Raises ValidationErrors: BAD_USER_INPUT, CONFLICT when the name is taken."""
    problems = _Problems()
    name = _text(problems, "input.name", name, "The name", TAG_NAME_MAX)
    shop_id = await _shop_id()
    if name and await Tag.exists(shop_id=shop_id, name=name):
        problems.add("input.name", f"A tag is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    async with _transaction():
        tag = await Tag.create(shop_id=shop_id, name=name)
    await taxonomy_changed()
    return tag


async def update_tag(tag_id: int, name: str | Unchanged = UNCHANGED) -> Tag:
    """Rename a tag; its products' search text follows."""
    tag = await _tag_by_id(tag_id)
    if isinstance(name, Unchanged):
        return tag
    problems = _Problems()
    new_name = _text(problems, "input.name", name, "The name", TAG_NAME_MAX)
    if (
        new_name != tag.name
        and await Tag.filter(shop_id=tag.shop_id, name=new_name).exclude(id=tag.id).exists()
    ):
        problems.add("input.name", f"A tag is already called '{new_name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    if new_name == tag.name:
        return tag
    tag.name = new_name
    async with _transaction():
        await tag.save()
        await _reindex(await ProductTag.filter(tag_id=tag.id).values_list("product_id", flat=True))
    await taxonomy_changed()
    return tag


async def delete_tag(tag_id: int) -> None:
    """Delete a tag and take it off its products. Raises NOT_FOUND on `id`."""
    tag = await _tag_by_id(tag_id)
    async with _transaction():
        product_ids = await ProductTag.filter(tag_id=tag.id).values_list("product_id", flat=True)
        await ProductTag.filter(tag_id=tag.id).delete()
        await Tag.filter(id=tag.id).delete()
        await _reindex(product_ids)
    await taxonomy_changed()
