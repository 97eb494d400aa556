"""The campaign plug-in point of checkout: a campaign prices its line, takes its allotment before the order's
transaction and gives it back when no order is written, records its part inside the transaction, and hears the
order's cancellation through the state machine's hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from models import ActorKind, Order, OrderLine, OrderStatus, Sku
from schema.node import encode_id
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode
from services.orders import campaigns, states
from services.orders.campaigns import (
    CampaignKind,
    CampaignPrice,
    CampaignRef,
    register_campaign,
    unregister_campaign,
)
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE, PREVIEW

pytestmark = pytest.mark.usefixtures("runtime")


class HalfPrice:
    """A campaign that sells at half the shelf price, one unit per member, from an allotment of `left`."""

    kind = CampaignKind.AUCTION

    def __init__(self, left: int) -> None:
        self.left = left
        self.attached: list[tuple[int, int, int]] = []
        self.unreserved = 0

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        if ref.node != "Sku" or ref.id != sku.id:
            raise DomainError(ErrorCode.NOT_FOUND, "No such campaign", "input.items[0].campaign.id")
        return CampaignPrice(sku.price // 2, {"note": "half"})

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        if self.left < quantity:
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "Sold out", "input.items[0].campaign")
        self.left -= quantity

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        self.left += quantity
        self.unreserved += quantity

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        self.attached.append((order.id, line_id, quantity))


@pytest.fixture
async def half_price() -> AsyncIterator[HalfPrice]:
    handler = HalfPrice(left=3)
    # The shop's own AUCTION handler (services.live.auctions) comes back afterwards.
    shop_handler = campaigns._handlers.get(CampaignKind.AUCTION)
    register_campaign(handler)
    yield handler
    unregister_campaign(CampaignKind.AUCTION)
    if shop_handler is not None:
        register_campaign(shop_handler)


def _input(address_id: int, sku: Sku, quantity: int, campaign: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {"skuId": encode_id("Sku", sku.id), "quantity": quantity}
    if campaign:
        item["campaign"] = {"kind": "AUCTION", "id": encode_id("Sku", sku.id)}
    return {"addressId": encode_id("Address", address_id), "items": [item]}


async def test_a_campaign_prices_reserves_and_attaches_its_line(client: Any, half_price: HalfPrice) -> None:
    member, token = await new_member()
    address_id = await new_address(member, "上海市", "上海市", "浦东新区")
    sku = await new_sku(price=10000, stock=5)
    preview = (await gql(client, PREVIEW, {"input": _input(address_id, sku, 2)}, token))["data"]
    assert preview["checkoutPreview"]["preview"]["lines"][0]["unitPrice"] == 5000
    placed = (await gql(client, PLACE, {"input": _input(address_id, sku, 2), "key": "c1"}, token))["data"]
    order = await Order.get(number=placed["placeOrder"]["order"]["number"])
    line = await OrderLine.get(order_id=order.id)
    assert (line.unit_price, line.campaign_kind, line.campaign_id, line.campaign) == (
        5000,
        "AUCTION",
        sku.id,
        {"note": "half"},
    )
    assert half_price.attached == [(order.id, line.id, 2)] and half_price.left == 1

    # The allotment refuses the next one: nothing is written and nothing else is taken.
    refused = (await gql(client, PLACE, {"input": _input(address_id, sku, 2), "key": "c2"}, token))["data"]
    assert [e["code"] for e in refused["placeOrder"]["errors"]] == ["INSUFFICIENT_STOCK"]
    assert await Order.filter(member_id=member.id).count() == 1


async def test_an_order_that_is_not_written_gives_the_allotment_back(
    client: Any, half_price: HalfPrice
) -> None:
    member, token = await new_member()
    address_id = await new_address(member, "上海市", "上海市", "浦东新区")
    sku = await new_sku(price=10000, stock=1)
    refused = (await gql(client, PLACE, {"input": _input(address_id, sku, 2), "key": "n1"}, token))["data"]
    assert [e["code"] for e in refused["placeOrder"]["errors"]] == ["INSUFFICIENT_STOCK"]
    assert (half_price.left, half_price.unreserved) == (3, 2)


@pytest.fixture
def without_auctions() -> Iterator[None]:
    """A shop that runs no auctions: the AUCTION kind has no handler for the test's length."""
    shop_handler = campaigns._handlers.get(CampaignKind.AUCTION)
    unregister_campaign(CampaignKind.AUCTION)
    yield
    if shop_handler is not None:
        register_campaign(shop_handler)


async def test_unknown_campaigns_are_refused_and_shelf_lines_stay_apart(
    client: Any, without_auctions: None
) -> None:
    member, token = await new_member()
    address_id = await new_address(member, "上海市", "上海市", "浦东新区")
    sku = await new_sku(price=10000, stock=5)
    answer = (await gql(client, PLACE, {"input": _input(address_id, sku, 1), "key": "u1"}, token))["data"]
    [error] = answer["placeOrder"]["errors"]
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "input.items[0].campaign")
    assert not await Order.filter(member_id=member.id).exists()


async def test_hooks_and_guards_of_higher_domains_run_inside_the_transition(
    client: Any, half_price: HalfPrice
) -> None:
    member, token = await new_member()
    address_id = await new_address(member, "上海市", "上海市", "浦东新区")
    sku = await new_sku(price=10000, stock=5)
    placed = (await gql(client, PLACE, {"input": _input(address_id, sku, 1), "key": "h1"}, token))["data"]
    order = await Order.get(number=placed["placeOrder"]["order"]["number"])
    heard: list[tuple[int, OrderStatus]] = []

    async def hook(o: Order, from_status: OrderStatus, news: Any) -> None:
        heard.append((o.id, from_status))

    async def guard(o: Order, to: OrderStatus) -> None:
        if o.id == order.id and to == OrderStatus.CANCELLED and not heard:
            raise DomainError(ErrorCode.CONFLICT, "not yet", "id")

    states.register_entry_hook(OrderStatus.CANCELLED, hook)
    states.register_transition_guard(OrderStatus.CANCELLED, guard)
    try:
        with pytest.raises(DomainError):
            await states.transition(order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM)
        assert (await Order.get(id=order.id)).status == OrderStatus.PENDING_PAYMENT
        heard.append((0, OrderStatus.PAID))  # lets the guard pass
        await states.transition(order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM)
        assert heard[-1] == (order.id, OrderStatus.PENDING_PAYMENT)
        assert (await Sku.get(id=sku.id)).stock == 5, "the built-in hook returned the stock first"
    finally:
        states._extra_hooks[OrderStatus.CANCELLED].remove(hook)
        states._guards[OrderStatus.CANCELLED].remove(guard)
