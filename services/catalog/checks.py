"""Checks of staff catalog input: problems are collected into one ValidationErrors so a form can show them
all; field paths name the GraphQL argument, e.g. `input.skus[1].price`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from services.catalog.drafts import (
    BARCODE_MAX,
    DEFAULT_SPEC,
    IMAGE_URL_MAX,
    MAX_PRICE,
    MAX_SPEC_DIMENSIONS,
    MAX_STOCK,
    MAX_TIER_PRICES,
    MEDIA_URL_MAX,
    MIN_TIER_QUANTITY,
    SPEC_TEXT_MAX,
    MediaItem,
    SkuDraft,
    SpecChoice,
    SpecDeclaration,
    TierPrice,
)
from services.errors import DomainError, ErrorCode, ValidationErrors

# --- Checks ----------------------------------------------------------------------------------------------


class Problems:
    """Input problems found so far, raised together so a form can show them all."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def add(self, field: str, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT) -> None:
        self.errors.append(DomainError(code, message, field))

    def fine(self, field: str) -> bool:
        """No problem was found with `field` yet: only then may its value go into a database query (an
        over-long value fails the ORM's own check there, as an internal error)."""
        return all(error.field != field for error in self.errors)

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationErrors(self.errors)


def not_found(what: str, field: str) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"No {what} has this ID", field)


def checked_text(
    problems: Problems, field: str, value: str, label: str, max_length: int, required: bool = True
) -> str:
    text = value.strip()
    if required and not 1 <= len(text) <= max_length:
        problems.add(field, f"{label} must be 1 to {max_length} characters")
    elif len(text) > max_length:
        problems.add(field, f"{label} may be at most {max_length} characters")
    return text


def check_count(problems: Problems, field: str, value: int, label: str, maximum: int | None = None) -> None:
    if value < 0:
        problems.add(field, f"{label} must not be negative")
    elif maximum is not None and value > maximum:
        problems.add(field, f"{label} may be at most {maximum}")


def check_media(problems: Problems, field: str, media: Sequence[MediaItem]) -> list[MediaItem]:
    checked: list[MediaItem] = []
    for i, item in enumerate(media):
        url = checked_text(problems, f"{field}[{i}].url", item.url, "A media URL", MEDIA_URL_MAX)
        if url and not url.startswith(("https://", "http://")):
            problems.add(f"{field}[{i}].url", "A media URL must start with https:// or http://")
        checked.append(replace(item, url=url))
    return checked


def check_image_url(problems: Problems, field: str, url: str) -> str:
    url = checked_text(problems, field, url, "The image URL", IMAGE_URL_MAX, required=False)
    if url and not url.startswith(("https://", "http://")):
        problems.add(field, "The image URL must start with https:// or http://")
    return url


def check_sku(problems: Problems, prefix: str, sku: SkuDraft, check_tiers: bool = True) -> SkuDraft:
    """Problems with a SKU's own numbers, each under `prefix`; the SKU with its barcode trimmed."""
    check_count(problems, f"{prefix}.price", sku.price, "The price", MAX_PRICE)
    if sku.original_price is not None:
        check_count(problems, f"{prefix}.originalPrice", sku.original_price, "The original price", MAX_PRICE)
    if sku.member_price is not None:
        check_count(problems, f"{prefix}.memberPrice", sku.member_price, "The member price", MAX_PRICE)
    check_count(problems, f"{prefix}.stock", sku.stock, "Stock", MAX_STOCK)
    check_count(problems, f"{prefix}.weightGrams", sku.weight_grams, "The weight")
    barcode = checked_text(
        problems, f"{prefix}.barcode", sku.barcode, "The barcode", BARCODE_MAX, required=False
    )
    if check_tiers:
        _check_tiers(problems, f"{prefix}.tierPrices", sku.tier_prices, sku.price)
    return replace(sku, barcode=barcode)


def _check_tiers(problems: Problems, field: str, tiers: Sequence[TierPrice], price: int) -> None:
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
        elif tier.price > MAX_PRICE:
            problems.add(f"{field}[{i}].price", f"A tier price may be at most {MAX_PRICE}")
        elif tier.price >= price:
            problems.add(f"{field}[{i}].price", f"A tier price must be below the SKU's price ({price})")


def check_specs(
    problems: Problems, specs: Sequence[SpecDeclaration], skus: Sequence[SkuDraft]
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
        name = checked_text(problems, f"input.specs[{i}].name", spec.name, "A spec name", SPEC_TEXT_MAX)
        if any(d.name == name for d in dims):
            problems.add(f"input.specs[{i}].name", f"The spec '{name}' is declared twice")
        if not spec.values:
            problems.add(f"input.specs[{i}].values", f"The spec '{name}' needs at least one value")
        values: list[str] = []
        for j, raw in enumerate(spec.values):
            value = checked_text(
                problems, f"input.specs[{i}].values[{j}]", raw, "A spec value", SPEC_TEXT_MAX
            )
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
    problems: Problems, field: str, dims: Sequence[SpecDeclaration], choices: Sequence[SpecChoice]
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
                f"'{name}' is not a spec of the product ({quoted_names(d.name for d in dims)})",
            )
            valid = False
        elif name in chosen:
            problems.add(f"{field}[{j}].name", f"'{name}' is given twice")
            valid = False
        elif value not in dim.values:
            problems.add(
                f"{field}[{j}].value", f"'{value}' is not a value of '{name}' ({quoted_names(dim.values)})"
            )
            valid = False
        else:
            chosen[name] = value
    missing = [
        d.name for d in dims if d.name not in chosen and all(c.name.strip() != d.name for c in choices)
    ]
    if missing:
        problems.add(field, f"Give a value for every spec of the product; missing {quoted_names(missing)}")
        valid = False
    return tuple(chosen[d.name] for d in dims) if valid else None


def quoted_names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def check_choices(problems: Problems, field: str, choices: Sequence[SpecChoice]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for j, choice in enumerate(choices):
        name = checked_text(problems, f"{field}[{j}].name", choice.name, "A spec name", SPEC_TEXT_MAX)
        value = checked_text(problems, f"{field}[{j}].value", choice.value, "A spec value", SPEC_TEXT_MAX)
        if any(n == name for n, _ in pairs):
            problems.add(f"{field}[{j}].name", f"'{name}' is given twice")
        pairs.append((name, value))
    return pairs
