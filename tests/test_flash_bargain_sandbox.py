"""Flash sale and bargain in the WeChat sandbox on the embedded default: staff set each play up and a shopper
completes it through the public API of a served process, with the README's own operations: a flash order paid
in the sandbox and refunded (its unit back on sale), a bargain cut to the floor by two friends and bought."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.clock import SHOP_TZ, now
from tests.server_process import ServerProcess, child_env, run_cli, running_server
from tests.test_flash_sale_processes import wait_past_shop_midnight
from tests.test_sandbox import _ok, readme_day

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_ops() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Flash sales (秒杀) and bargains (砍价)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```graphql\n(.*?)```", section, flags=re.S)
    return {re.search(r"(?:query|mutation|subscription) (\w+)", b).group(1): b for b in blocks}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def play_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("campaign-plays")


@pytest.fixture(scope="module")
async def server(play_dir: Path) -> AsyncIterator[ServerProcess]:
    env = child_env({"DATA_DIR": str(play_dir)})
    async with running_server(env, cwd=play_dir, startup_timeout=90) as served:
        yield served


async def _login(server: ServerProcess, code: str) -> str:
    answer = await server.gql(f'mutation {{ loginWithWechat(code: "{code}") {{ accessToken }} }}')
    return str(answer["loginWithWechat"]["accessToken"])


async def _staff(play_dir: Path) -> str:
    made = await run_cli(["create-staff", "marketing"], child_env({"DATA_DIR": str(play_dir)}), cwd=play_dir)
    assert made.returncode == 0, made.describe()
    return made.last_line


async def _sku_with_stock(server: ServerProcess, token: str) -> dict[str, Any]:
    listing = (await server.gql(readme_day()["SandboxBrowse"], token=token))["products"]["edges"]
    return next(s for edge in listing for s in edge["node"]["skus"] if s["stock"] >= 5 and s["price"] > 1000)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


async def test_a_shopper_wins_a_flash_sale_pays_in_the_sandbox_and_a_refund_puts_the_unit_back(
    server: ServerProcess, play_dir: Path
) -> None:
    await wait_past_shop_midnight()
    ops = readme_ops()
    staff = await _staff(play_dir)
    shopper = await _login(server, "flash-shopper")
    sku = await _sku_with_stock(server, shopper)
    moment = now().astimezone(SHOP_TZ)
    start = max(0, min(moment.hour * 60 + moment.minute - 1, 22 * 60))
    slot = await _ok(
        server,
        ops["FlashSlotCreate"],
        {"input": {"name": "此刻场", "startsAt": _clock(start), "endsAt": "24:00"}},
        staff,
    )
    sale = await _ok(
        server,
        ops["FlashSaleCreate"],
        {
            "input": {
                "title": "沙箱秒杀",
                "startsOn": str(moment.date()),
                "endsOn": str(moment.date() + timedelta(days=1)),
                "items": [
                    {
                        "sessionId": slot["session"]["id"],
                        "skuId": sku["id"],
                        "flashPrice": 100,
                        "allotment": 2,
                        "perMemberLimit": 1,
                    }
                ],
            }
        },
        staff,
    )
    [item] = sale["flashSale"]["items"]

    sessions = (await server.gql(ops["FlashSessions"], token=shopper))["flashSaleSessions"]["sessions"]
    assert [s["state"] for s in sessions if s["sessionId"] == slot["session"]["id"]] == ["ONGOING"]
    products = await server.gql(ops["FlashProducts"], {"sessionId": slot["session"]["id"]}, shopper)
    assert [e["node"]["remaining"] for e in products["flashSaleProducts"]["edges"]] == [2]

    placed = await _ok(
        server, ops["FlashBuy"], {"skuId": sku["id"], "itemId": item["id"], "key": "f1"}, shopper
    )
    order_id = placed["order"]["id"]
    assert placed["order"]["payable"] == 100
    again = await server.gql(
        ops["FlashBuy"], {"skuId": sku["id"], "itemId": item["id"], "key": "f2"}, shopper
    )
    assert [e["code"] for e in again["placeOrder"]["errors"]] == ["LIMIT_EXCEEDED"]
    paid = await _ok(server, readme_day()["SandboxPay"], {"orderId": order_id}, shopper)
    assert paid["order"]["status"] == "PAID"
    numbers = (await server.gql(ops["FlashNumbers"], {"saleId": sale["flashSale"]["id"]}, staff))["flashSale"]
    assert numbers["items"][0] == {"remaining": 1, "numbers": {"sold": 1, "orders": 1, "paidOrders": 1}}

    # Customer service refunds it in full: the order is cancelled and the unit is back on sale.
    await _ok(server, readme_day()["SandboxRefund"], {"orderId": order_id}, staff)
    for _ in range(100):
        state = await server.gql("query($id: ID!) { order(id: $id) { status } }", {"id": order_id}, shopper)
        if state["order"]["status"] == "CANCELLED":
            break
        await asyncio.sleep(0.1)
    assert state["order"]["status"] == "CANCELLED"
    products = await server.gql(ops["FlashProducts"], {"sessionId": slot["session"]["id"]}, shopper)
    assert [e["node"]["remaining"] for e in products["flashSaleProducts"]["edges"]] == [2]


async def test_friends_cut_a_bargain_to_the_floor_and_the_starter_buys_and_pays_in_the_sandbox(
    server: ServerProcess, play_dir: Path
) -> None:
    ops = readme_ops()
    staff = await _staff(play_dir)
    starter = await _login(server, "bargain-starter")
    sku = await _sku_with_stock(server, starter)
    moment = now()
    activity = await _ok(
        server,
        ops["BargainSetUp"],
        {
            "input": {
                "title": "砍到 1 元",
                "skuId": sku["id"],
                "startPrice": sku["price"],
                "floorPrice": 100,
                "helpersNeeded": 2,
                "hoursToFinish": 24,
                "startsAt": (moment - timedelta(minutes=5)).isoformat(),
                "endsAt": (moment + timedelta(days=1)).isoformat(),
                "stock": 3,
            }
        },
        staff,
    )
    started = await _ok(
        server, ops["BargainStart"], {"activityId": activity["bargainActivity"]["id"]}, starter
    )
    bargain_id = started["bargain"]["id"]
    for code in ("friend-one", "friend-two"):
        helped = await _ok(server, ops["BargainHelp"], {"bargainId": bargain_id}, await _login(server, code))
        assert helped["cut"] >= 1
    shared = (await server.gql(ops["BargainShared"], {"bargainId": bargain_id}, starter))["bargain"]
    assert (shared["currentPrice"], shared["status"], shared["mine"], len(shared["cuts"])) == (
        100,
        "SUCCEEDED",
        True,
        2,
    )
    placed = await _ok(
        server, ops["BargainBuy"], {"skuId": sku["id"], "bargainId": bargain_id, "key": "b1"}, starter
    )
    assert placed["order"]["payable"] == 100
    paid = await _ok(server, readme_day()["SandboxPay"], {"orderId": placed["order"]["id"]}, starter)
    assert paid["order"] == {"status": "PAID", "paidAmount": 100}
