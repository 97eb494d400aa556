"""Staff writes to SKUs: add one to a product, change its prices, stock, tiers and barcode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from models import (
    Sku,
    SkuSpecValue,
    SpecDimension,
    SpecValue,
)
from services.catalog.checks import Problems, check_choices, check_sku, not_found, quoted_names
from services.catalog.derived import refresh_totals, spec_key
from services.catalog.drafts import (
    DEFAULT_SPEC,
    MAX_SKUS_PER_PRODUCT,
    MAX_SPEC_DIMENSIONS,
    SkuChanges,
    SkuDraft,
    TierPrice,
    Unchanged,
)
from services.catalog.events import StockChange, products_changed, stock_changed
from services.catalog.lookups import get_product, lock_product, write_transaction
from services.errors import ErrorCode


async def insert_sku(product_id: int, value_ids: Sequence[int], draft: SkuDraft) -> Sku:
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


# --- SKUs ------------------------------------------------------------------------------------------------


async def create_sku(product_id: int, draft: SkuDraft) -> Sku:
    """Add a spec combination to a product, creating spec values (and dimensions) it does not have yet.

    The spec values must name each of the product's specs once; a product without SKUs may gain new specs
    this way, and one without any specs gets 规格: 默认 when none are given.
    Raises ValidationErrors (BAD_USER_INPUT; CONFLICT for an existing combination) or NOT_FOUND.
    """
    problems = Problems()
    sku = check_sku(problems, "input", draft)
    choices = check_choices(problems, "input.specValues", draft.spec_values)
    problems.raise_any()
    await get_product(product_id, "input.productId")

    async with write_transaction():
        await lock_product(product_id, "input.productId")
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
                    f"'{name}' is not a spec of the product ({quoted_names(dims)}); "
                    "only a product without SKUs can gain a spec",
                )
        missing = [name for name in dims if all(n != name for n, _ in choices)]
        if missing:
            problems.add(
                "input.specValues",
                f"Give a value for every spec of the product; missing {quoted_names(missing)}",
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
        created = await insert_sku(product_id, chosen, sku)
        await refresh_totals(product_id)
    await products_changed(
        [product_id], [StockChange(product_id, created.id, created.stock)], text_changed=False
    )
    return created


async def update_sku(sku_id: int, changes: SkuChanges) -> Sku:
    """Change a SKU's prices, stock, barcode or weight; the product's price range and stock follow.

    Tier prices must stay below the (new) price. Raises ValidationErrors (BAD_USER_INPUT) or NOT_FOUND.
    """
    given = {k: v for k, v in vars(changes).items() if not isinstance(v, Unchanged)}
    # Each given value on its own first (lengths, ranges), before any lookup; how they fit the SKU's other
    # values (tiers below the price) is checked against the locked row below.
    alone = Problems()
    check_sku(alone, "input", replace(SkuDraft(price=given.get("price", 0)), **given), check_tiers=False)
    alone.raise_any()
    found = await Sku.get_or_none(id=sku_id)
    if found is None:
        raise not_found("SKU", "id")

    async with write_transaction():
        await lock_product(found.product_id, "id")
        sku = await Sku.get_or_none(id=sku_id)
        if sku is None:
            raise not_found("SKU", "id")
        current = SkuDraft(
            price=sku.price,
            stock=sku.stock,
            original_price=sku.original_price,
            member_price=sku.member_price,
            tier_prices=tuple(TierPrice(int(t["min_quantity"]), int(t["price"])) for t in sku.tier_prices),
            barcode=sku.barcode,
            weight_grams=sku.weight_grams,
        )
        problems = Problems()
        merged = check_sku(problems, "input", replace(current, **given), check_tiers="tier_prices" in given)
        if "tier_prices" not in given and any(t.price >= merged.price for t in merged.tier_prices):
            problems.add(
                "input.price",
                "The price must stay above the SKU's tier prices "
                f"({quoted_names(str(t.price) for t in merged.tier_prices)})",
            )
        problems.raise_any()
        stock_before = sku.stock
        sku.price = merged.price
        sku.stock = merged.stock
        sku.original_price = merged.original_price
        sku.member_price = merged.member_price
        sku.tier_prices = [{"min_quantity": t.min_quantity, "price": t.price} for t in merged.tier_prices]
        sku.barcode = merged.barcode
        sku.weight_grams = merged.weight_grams
        await sku.save()
        await refresh_totals(sku.product_id)
    moved = sku.stock - stock_before
    changes_out = [StockChange(sku.product_id, sku.id, sku.stock, delta=moved)] if moved else []
    if set(given) <= {"stock"}:
        # A restock (or a count correction): cached answers hold no stock, only listings filtering on it care.
        await stock_changed(changes_out)
    else:
        await products_changed([sku.product_id], changes_out, text_changed=False)
    return sku
