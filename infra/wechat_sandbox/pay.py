"""The sandbox's WeChat Pay (api.mch.weixin.qq.com, API v2): unified order, refund, order query, close order and
refund query (the sweeper asks about money no notification settled), answering signed XML, and the
notifications WeChat Pay sends, posted over HTTP to the notify URLs our server gave it.

A payment completes when the shopper confirms it (`confirm_payment`, behind the `sandboxPay` mutation); a
refund's notification follows on its own shortly after the refund is accepted, and is retried as WeChat Pay
retries until our server answers SUCCESS.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.blocking_io import ThreadLane
from infra.settings import get_settings
from infra.wechat_sandbox import TRANSACTION_PREFIX
from infra.wechat_sandbox.wire import from_xml, refund_notification_xml, sign, signed_xml, to_xml

log = logging.getLogger("lianmall.wechat_sandbox")

# Seconds between accepting a refund and notifying it, and between notification attempts (WeChat Pay waits
# 15 s, 15 s, 30 s, 3 min, ... in earnest; the sandbox keeps a newcomer's day short).
REFUND_NOTIFY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
NOTIFY_LANE = ThreadLane(threads=4, timeout=10.0)


@dataclass
class Trade:
    out_trade_no: str
    total_fee: int
    openid: str
    notify_url: str
    prepay_id: str = field(default_factory=lambda: "wx" + secrets.token_hex(15))
    transaction_id: str = field(default_factory=lambda: TRANSACTION_PREFIX + secrets.token_hex(10).upper())
    refunded: int = 0
    # What WeChat Pay's order query says: NOTPAY, SUCCESS (the shopper paid), CLOSED (closeorder).
    state: str = "NOTPAY"
    time_end: str = ""


class UnknownTrade(LookupError):
    """The sandbox has no such trade (its memory ends with the process, a prepay_id lives on in our DB)."""


class NotifyFailed(RuntimeError):
    pass


def _nonce() -> str:
    return secrets.token_hex(16)


def _post(url: str, body: bytes) -> str:
    session = NOTIFY_LANE.session
    response = session.post(url, data=body, headers={"Content-Type": "text/xml"})
    return response.text


class PaySandbox:
    def __init__(self) -> None:
        self.trades: dict[str, Trade] = {}
        self._refunds: dict[str, tuple[str, int, str]] = {}  # out_refund_no → (out_trade_no, fee, refund_id)
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(
            routes=[
                Route("/pay/unifiedorder", self._unifiedorder, methods=["POST"]),
                Route("/secapi/pay/refund", self._refund, methods=["POST"]),
                Route("/pay/orderquery", self._orderquery, methods=["POST"]),
                Route("/pay/closeorder", self._closeorder, methods=["POST"]),
                Route("/pay/refundquery", self._refundquery, methods=["POST"]),
            ]
        )

    # --- what the shopper does in WeChat ---------------------------------------------------------------------

    async def confirm_payment(self, out_trade_no: str) -> None:
        """The shopper pays trade `out_trade_no` in WeChat: post WeChat Pay's signed payment notification to
        the trade's notify URL and wait for our server's answer. Raises UnknownTrade or NotifyFailed."""
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise UnknownTrade(out_trade_no)
        if trade.state == "CLOSED":
            raise NotifyFailed(f"trade {out_trade_no} was closed")
        if trade.state == "NOTPAY":
            trade.state, trade.time_end = "SUCCESS", time.strftime("%Y%m%d%H%M%S")
        settings = get_settings()
        params = {
            "appid": settings.wechat_appid,
            "bank_type": "OTHERS",
            "cash_fee": trade.total_fee,
            "fee_type": "CNY",
            "is_subscribe": "N",
            "mch_id": settings.wechat_mch_id,
            "nonce_str": _nonce(),
            "openid": trade.openid,
            "out_trade_no": trade.out_trade_no,
            "result_code": "SUCCESS",
            "return_code": "SUCCESS",
            "time_end": trade.time_end,
            "total_fee": trade.total_fee,
            "trade_type": "JSAPI",
            "transaction_id": trade.transaction_id,
        }
        answer = await self._notify(trade.notify_url, signed_xml(params, settings.wechat_pay_api_key))
        if answer != "SUCCESS":
            raise NotifyFailed(f"{trade.notify_url} answered {answer}")

    async def _notify(self, url: str, body: bytes) -> str:
        try:
            text = await NOTIFY_LANE.run(lambda: _post(url, body))
        except Exception as exc:
            log.warning("WeChat sandbox could not reach %s: %s", url, type(exc).__name__)
            return "UNREACHABLE"
        return str((from_xml(text.encode()) or {}).get("return_code") or "UNREADABLE")

    # --- the API ---------------------------------------------------------------------------------------------

    def _answer(self, params: dict[str, Any]) -> Response:
        settings = get_settings()
        base = {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "appid": settings.wechat_appid,
            "mch_id": settings.wechat_mch_id,
            "nonce_str": _nonce(),
        }
        return Response(signed_xml({**base, **params}, settings.wechat_pay_api_key), media_type="text/xml")

    def _refuse(self, return_msg: str) -> Response:
        return Response(to_xml({"return_code": "FAIL", "return_msg": return_msg}), media_type="text/xml")

    def _fail(self, err_code: str, description: str) -> Response:
        return self._answer({"result_code": "FAIL", "err_code": err_code, "err_code_des": description})

    async def _begin(
        self, request: Request, required: tuple[str, ...]
    ) -> tuple[dict[str, Any], Response | None]:
        settings = get_settings()
        body = from_xml(await request.body())
        if body is None:
            return {}, self._refuse("XML格式错误")
        if body.get("sign") != sign(body, settings.wechat_pay_api_key):
            return body, self._refuse("签名错误")
        if body.get("appid") != settings.wechat_appid:
            return body, self._refuse("appid不存在")
        if body.get("mch_id") != settings.wechat_mch_id:
            return body, self._refuse("商户号mch_id与appid不匹配")
        for name in required:
            if not body.get(name):
                return body, self._refuse(f"缺少参数{name}")
        return body, None

    async def _unifiedorder(self, request: Request) -> Response:
        body, refused = await self._begin(
            request, ("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type")
        )
        if refused:
            return refused
        if body["trade_type"] == "JSAPI" and not body.get("openid"):
            return self._fail("PARAM_ERROR", "JSAPI支付必须传openid")
        if not str(body["total_fee"]).isdigit() or int(body["total_fee"]) <= 0:
            return self._fail("PARAM_ERROR", "total_fee")
        trade = self.trades.get(body["out_trade_no"])
        if trade is not None and trade.total_fee != int(body["total_fee"]):
            return self._fail("INVALID_REQUEST", "201 商户订单号重复")
        if trade is None:
            trade = Trade(body["out_trade_no"], int(body["total_fee"]), body["openid"], body["notify_url"])
            self.trades[trade.out_trade_no] = trade
        return self._answer({"result_code": "SUCCESS", "trade_type": "JSAPI", "prepay_id": trade.prepay_id})

    async def _refund(self, request: Request) -> Response:
        body, refused = await self._begin(
            request, ("out_trade_no", "out_refund_no", "total_fee", "refund_fee")
        )
        if refused:
            return refused
        trade = self.trades.get(body["out_trade_no"])
        if trade is None:
            return self._fail("ORDERNOTEXIST", "订单不存在")
        fee = int(body["refund_fee"])
        if int(body["total_fee"]) != trade.total_fee:
            return self._fail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致")
        known = self._refunds.get(body["out_refund_no"])
        if known is None:
            if trade.refunded + fee > trade.total_fee:
                return self._fail("ERROR", "累计退款金额大于支付金额")
            trade.refunded += fee
            known = (trade.out_trade_no, fee, "50000" + secrets.token_hex(12))
            self._refunds[body["out_refund_no"]] = known
            self._later(
                self._notify_refund(trade, body["out_refund_no"], fee, known[2], body.get("notify_url"))
            )
        elif known[1] != fee:
            return self._fail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致")
        return self._answer(
            {
                "result_code": "SUCCESS",
                "transaction_id": trade.transaction_id,
                "out_trade_no": trade.out_trade_no,
                "out_refund_no": body["out_refund_no"],
                "refund_id": known[2],
                "refund_fee": fee,
                "total_fee": trade.total_fee,
                "cash_fee": trade.total_fee,
            }
        )

    async def _orderquery(self, request: Request) -> Response:
        body, refused = await self._begin(request, ("out_trade_no",))
        if refused:
            return refused
        trade = self.trades.get(body["out_trade_no"])
        if trade is None:
            return self._fail("ORDERNOTEXIST", "订单不存在")
        answer: dict[str, Any] = {
            "result_code": "SUCCESS",
            "out_trade_no": trade.out_trade_no,
            "trade_state": trade.state,
            "trade_state_desc": {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "订单已关闭"}[
                trade.state
            ],
        }
        if trade.state == "SUCCESS":
            answer.update(
                openid=trade.openid,
                trade_type="JSAPI",
                bank_type="OTHERS",
                total_fee=trade.total_fee,
                cash_fee=trade.total_fee,
                fee_type="CNY",
                transaction_id=trade.transaction_id,
                time_end=trade.time_end,
            )
        return self._answer(answer)

    async def _closeorder(self, request: Request) -> Response:
        body, refused = await self._begin(request, ("out_trade_no",))
        if refused:
            return refused
        trade = self.trades.get(body["out_trade_no"])
        if trade is None:
            return self._fail("ORDERNOTEXIST", "订单不存在")
        if trade.state == "SUCCESS":
            return self._fail("ORDERPAID", "订单已支付，不能发起关单")
        trade.state = "CLOSED"
        return self._answer({"result_code": "SUCCESS"})

    async def _refundquery(self, request: Request) -> Response:
        body, refused = await self._begin(request, ("out_refund_no",))
        if refused:
            return refused
        known = self._refunds.get(body["out_refund_no"])
        if known is None:
            return self._fail("REFUNDNOTEXIST", "退款订单查询失败")
        trade = self.trades[known[0]]
        # The sandbox refunds at once; its notification follows on its own.
        return self._answer(
            {
                "result_code": "SUCCESS",
                "transaction_id": trade.transaction_id,
                "out_trade_no": trade.out_trade_no,
                "total_fee": trade.total_fee,
                "cash_fee": trade.total_fee,
                "refund_count": 1,
                "out_refund_no_0": body["out_refund_no"],
                "refund_id_0": known[2],
                "refund_fee_0": known[1],
                "refund_status_0": "SUCCESS",
                "refund_success_time_0": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )

    def _later(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify_refund(
        self, trade: Trade, out_refund_no: str, fee: int, refund_id: str, notify_url: str | None
    ) -> None:
        if not notify_url:
            return
        settings = get_settings()
        info = {
            "transaction_id": trade.transaction_id,
            "out_trade_no": trade.out_trade_no,
            "refund_id": refund_id,
            "out_refund_no": out_refund_no,
            "total_fee": trade.total_fee,
            "refund_fee": fee,
            "settlement_refund_fee": fee,
            "refund_status": "SUCCESS",
            "success_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "refund_recv_accout": "支付用户的零钱",
            "refund_account": "REFUND_SOURCE_RECHARGE_FUNDS",
            "refund_request_source": "API",
        }
        for delay in REFUND_NOTIFY_DELAYS:
            await asyncio.sleep(delay)
            body = refund_notification_xml(
                settings.wechat_appid, settings.wechat_mch_id, settings.wechat_pay_api_key, info, _nonce()
            )
            if await self._notify(notify_url, body) == "SUCCESS":
                return
        log.warning("WeChat sandbox gave up notifying refund %s", out_refund_no)
