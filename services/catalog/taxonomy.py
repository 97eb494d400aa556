"""Staff writes to the taxonomy: categories (a 3-level tree), brands and tags. A name can appear in any cached
answer, so every change drops the whole response cache (`events.taxonomy_changed`)."""

from __future__ import annotations

from tortoise.expressions import Q

from infra.clock import now
from models import (
    MAX_CATEGORY_LEVEL,
    Brand,
    Category,
    Product,
    ProductTag,
    Tag,
)
from services.catalog.checks import Problems, check_image_url, checked_text, not_found
from services.catalog.derived import reindex
from services.catalog.drafts import (
    BRAND_NAME_MAX,
    CATEGORY_NAME_MAX,
    TAG_NAME_MAX,
    UNCHANGED,
    CategoryChanges,
    CategoryDraft,
    Unchanged,
)
from services.catalog.events import taxonomy_changed
from services.catalog.lookups import default_shop_id, write_transaction
from services.errors import DomainError, ErrorCode

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
    category = await Category.get_or_none(id=category_id, shop_id=await default_shop_id())
    if category is None:
        raise not_found("category", field)
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
    problems = Problems()
    name = checked_text(problems, "input.name", draft.name, "The name", CATEGORY_NAME_MAX)
    icon_url = check_image_url(problems, "input.iconUrl", draft.icon_url)
    shop_id = await default_shop_id()
    parent = None
    if draft.parent_id is not None:
        parent = await Category.get_or_none(id=draft.parent_id, shop_id=shop_id)
        if parent is None:
            problems.errors.append(not_found("category", "input.parentId"))
        elif parent.level >= MAX_CATEGORY_LEVEL:
            problems.add(
                "input.parentId",
                f"Categories have at most {MAX_CATEGORY_LEVEL} levels; "
                f"'{parent.name}' is level {parent.level}",
            )
    if name and problems.fine("input.name") and await _category_name_taken(shop_id, draft.parent_id, name):
        problems.add("input.name", f"A sibling category is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()

    async with write_transaction():
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
    problems = Problems()
    name: str | Unchanged = changes.name
    if not isinstance(changes.name, Unchanged):
        name = checked_text(problems, "input.name", changes.name, "The name", CATEGORY_NAME_MAX)
    icon_url: str | Unchanged = changes.icon_url
    if not isinstance(changes.icon_url, Unchanged):
        icon_url = check_image_url(problems, "input.iconUrl", changes.icon_url)
    problems.raise_any()  # the input first: a malformed request is refused before any lookup
    category = await _category(category_id)
    name = category.name if isinstance(name, Unchanged) else name
    icon_url = category.icon_url if isinstance(icon_url, Unchanged) else icon_url
    parent_id = category.parent_id
    new_parent: Category | None = None
    if not isinstance(changes.parent_id, Unchanged) and changes.parent_id != category.parent_id:
        parent_id = changes.parent_id
        if parent_id is not None:
            new_parent = await Category.get_or_none(id=parent_id, shop_id=category.shop_id)
        if parent_id is not None and new_parent is None:
            problems.errors.append(not_found("category", "input.parentId"))
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
    async with write_transaction():
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
            await reindex(await _subtree_product_ids(category))
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
    async with write_transaction():
        await Category.filter(id=category.id).delete()
    await taxonomy_changed()


# --- Brands and tags -------------------------------------------------------------------------------------


async def _brand_by_id(brand_id: int) -> Brand:
    brand = await Brand.get_or_none(id=brand_id, shop_id=await default_shop_id())
    if brand is None:
        raise not_found("brand", "id")
    return brand


async def create_brand(name: str, logo_url: str = "") -> Brand:
    """Create a brand. Raises ValidationErrors: BAD_USER_INPUT, CONFLICT when the name is taken."""
    problems = Problems()
    name = checked_text(problems, "input.name", name, "The name", BRAND_NAME_MAX)
    logo_url = check_image_url(problems, "input.logoUrl", logo_url)
    shop_id = await default_shop_id()
    if name and problems.fine("input.name") and await Brand.exists(shop_id=shop_id, name=name):
        problems.add("input.name", f"A brand is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    async with write_transaction():
        brand = await Brand.create(shop_id=shop_id, name=name, logo_url=logo_url)
    await taxonomy_changed()
    return brand


async def update_brand(
    brand_id: int, name: str | Unchanged = UNCHANGED, logo_url: str | Unchanged = UNCHANGED
) -> Brand:
    """Rename a brand or change its logo; its products' search text follows a rename."""
    problems = Problems()
    if not isinstance(name, Unchanged):
        name = checked_text(problems, "input.name", name, "The name", BRAND_NAME_MAX)
    if not isinstance(logo_url, Unchanged):
        logo_url = check_image_url(problems, "input.logoUrl", logo_url)
    problems.raise_any()  # the input first: a malformed request is refused before any lookup
    brand = await _brand_by_id(brand_id)
    new_name = brand.name if isinstance(name, Unchanged) else name
    if not isinstance(logo_url, Unchanged):
        brand.logo_url = logo_url
    renamed = new_name != brand.name
    if renamed and await Brand.filter(shop_id=brand.shop_id, name=new_name).exclude(id=brand.id).exists():
        problems.add("input.name", f"A brand is already called '{new_name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    brand.name = new_name
    async with write_transaction():
        await brand.save()
        if renamed:
            await reindex(await Product.filter(brand_id=brand.id).values_list("id", flat=True))
    await taxonomy_changed()
    return brand


async def delete_brand(brand_id: int) -> None:
    """Delete a brand; its products keep selling without one. Raises NOT_FOUND on `id`."""
    brand = await _brand_by_id(brand_id)
    async with write_transaction():
        product_ids = await Product.filter(brand_id=brand.id).values_list("id", flat=True)
        await Product.filter(brand_id=brand.id).update(brand_id=None, updated_at=now())
        await Brand.filter(id=brand.id).delete()
        await reindex(product_ids)
    await taxonomy_changed()


async def _tag_by_id(tag_id: int) -> Tag:
    tag = await Tag.get_or_none(id=tag_id, shop_id=await default_shop_id())
    if tag is None:
        raise not_found("tag", "id")
    return tag


async def create_tag(name: str) -> Tag:
    """Create a tag. Raises ValidationErrors: BAD_USER_INPUT, CONFLICT when the name is taken."""
    problems = Problems()
    name = checked_text(problems, "input.name", name, "The name", TAG_NAME_MAX)
    shop_id = await default_shop_id()
    if name and problems.fine("input.name") and await Tag.exists(shop_id=shop_id, name=name):
        problems.add("input.name", f"A tag is already called '{name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    async with write_transaction():
        tag = await Tag.create(shop_id=shop_id, name=name)
    await taxonomy_changed()
    return tag


async def update_tag(tag_id: int, name: str | Unchanged = UNCHANGED) -> Tag:
    """Rename a tag; its products' search text follows."""
    if isinstance(name, Unchanged):
        return await _tag_by_id(tag_id)
    problems = Problems()
    new_name = checked_text(problems, "input.name", name, "The name", TAG_NAME_MAX)
    problems.raise_any()  # the input first: a malformed request is refused before any lookup
    tag = await _tag_by_id(tag_id)
    if (
        new_name != tag.name
        and await Tag.filter(shop_id=tag.shop_id, name=new_name).exclude(id=tag.id).exists()
    ):
        problems.add("input.name", f"A tag is already called '{new_name}'", ErrorCode.CONFLICT)
    problems.raise_any()
    if new_name == tag.name:
        return tag
    tag.name = new_name
    async with write_transaction():
        await tag.save()
        await reindex(await ProductTag.filter(tag_id=tag.id).values_list("product_id", flat=True))
    await taxonomy_changed()
    return tag


async def delete_tag(tag_id: int) -> None:
    """Delete a tag and take it off its products. Raises NOT_FOUND on `id`."""
    tag = await _tag_by_id(tag_id)
    async with write_transaction():
        product_ids = await ProductTag.filter(tag_id=tag.id).values_list("product_id", flat=True)
        await ProductTag.filter(tag_id=tag.id).delete()
        await Tag.filter(id=tag.id).delete()
        await reindex(product_ids)
    await taxonomy_changed()
