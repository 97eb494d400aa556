"""A local stand-in for WeChat Pay's API v2, speaking its real wire format, for tests.

Requests and answers are XML signed with MD5 over the sorted `k=v` pairs and `key=<API key>` (signature
computed by infra/wechat_sandbox/wire.py, independently of wechatpy). `POST /pay/unifiedorder` checks the signature, appid, mch_id and the
required fields and answers a signed `prepay_id`; `POST /secapi/pay/refund` checks the same, that the trade is
known and that refunds never exceed its amount (the same `out_refund_no` again is the same refund).
`POST /pay/orderquery` answers a trade's `trade_state` (NOTPAY until the shopper pays: `mark_paid`, or a
payment notification built here; CLOSED after `POST /pay/closeorder`, which answers ORDERPAID for a paid trade);
`POST /pay/refundquery` answers a refund as `refund_count` / `*_0` fields with `refund_status_0` (PROCESSING
until `finish_refund`, or a refund notification built here). Unknown ones: ORDERNOTEXIST / REFUNDNOTEXIST.

Builders make the notifications WeChat Pay sends: `payment_notification` (signed XML, optionally forged or with a
wrong amount / appid / mch_id) and `refund_notification` (`req_info` encrypted with AES-256-ECB under
md5(API key), PKCS#7). The `wechat_pay` fixture points the cached settings at the stand-in for one test.

The stand-in serves over plain HTTP, so the merchant certificate WeChat Pay demands for refunds (mutual TLS)
is not checked here.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import xmltodict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.settings import Settings
from infra.wechat_sandbox.wire import refund_notification_xml, sign, signed_xml, to_xml
from tests.threaded_server import ThreadedServer

UNIFIEDORDER = "unifiedorder"
REFUND = "refund"
ORDERQUERY = "orderquery"
CLOSEORDER = "closeorder"
REFUNDQUERY = "refundquery"


@dataclass
class Trade:
    out_trade_no: str
    total_fee: int
    openid: str
    notify_url: str
    prepay_id: str
    transaction_id: str = field(default_factory=lambda: "42000" + secrets.token_hex(12))
    # NOTPAY, SUCCESS (paid), CLOSED (closeorder), as WeChat's order query says.
    state: str = "NOTPAY"
    time_end: str = ""


@dataclass
class RefundRecord:
    out_refund_no: str
    out_trade_no: str
    refund_fee: int
    refund_id: str
    notify_url: str
    # PROCESSING until it finishes: SUCCESS, REFUNDCLOSE or CHANGE, as WeChat's refund query says.
    status: str = "PROCESSING"


@dataclass
class _State:
    trades: dict[str, Trade] = field(default_factory=dict)
    refunds: dict[str, RefundRecord] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)


class WeChatPayStandIn(ThreadedServer):
    thread_name = "wechat-pay-standin"

    """WeChat Pay for one merchant (`mch_id`, `api_key`) and mini-program (`appid`), served at `base_url`."""

    def __init__(self) -> None:
        self.appid = "wx" + secrets.token_hex(8)
        self.mch_id = str(1_600_000_000 + secrets.randbelow(99_999_999))
        self.api_key = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._state = _State()
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/pay/unifiedorder", self._unifiedorder, methods=["POST"]),
                Route("/secapi/pay/refund", self._refund, methods=["POST"]),
                Route("/pay/orderquery", self._orderquery, methods=["POST"]),
                Route("/pay/closeorder", self._closeorder, methods=["POST"]),
                Route("/pay/refundquery", self._refundquery, methods=["POST"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # --- what tests use ------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [body for name, body in self._state.calls if endpoint is None or name == endpoint]

    def trade(self, out_trade_no: str) -> Trade:
        with self._lock:
            return self._state.trades[out_trade_no]

    def refund(self, out_refund_no: str) -> RefundRecord:
        with self._lock:
            return self._state.refunds[out_refund_no]

    def mark_paid(self, out_trade_no: str) -> Trade:
        """The shopper paid: the trade is SUCCESS at WeChat (whether or not a notification ever arrives)."""
        with self._lock:
            trade = self._state.trades[out_trade_no]
            if trade.state == "NOTPAY":
                trade.state = "SUCCESS"
                trade.time_end = time.strftime("%Y%m%d%H%M%S")
            return trade

    def finish_refund(self, out_refund_no: str, status: str = "SUCCESS") -> RefundRecord:
        """WeChat finished the refund (SUCCESS, REFUNDCLOSE or CHANGE), notification sent or not."""
        with self._lock:
            refund = self._state.refunds[out_refund_no]
            refund.status = status
            return refund

    def fail(self, endpoint: str, err_code: str, err_code_des: str = "", times: int = 1) -> None:
        """The next `times` calls of `endpoint` answer result_code FAIL with `err_code` (e.g. SYSTEMERROR)."""
        with self._lock:
            self._state.failures.setdefault(endpoint, []).extend(
                [(err_code, err_code_des or err_code)] * times
            )

    def slow_down(self, endpoint: str, seconds: float) -> None:
        """Every later call of `endpoint` is recorded at once and answered `seconds` later (a slow WeChat)."""
        with self._lock:
            self._state.delays[endpoint] = seconds

    def payment_notification(
        self,
        out_trade_no: str,
        *,
        total_fee: int | None = None,
        appid: str | None = None,
        mch_id: str | None = None,
        key: str | None = None,
        transaction_id: str | None = None,
        result_code: str = "SUCCESS",
    ) -> bytes:
        """The payment notification WeChat Pay posts for a paid trade, signed with `key` (ours by default).

        A genuine one (nothing overridden, result SUCCESS) marks the trade paid, as the payment behind it did.
        """
        genuine = (total_fee, appid, mch_id, key, transaction_id) == (None,) * 5 and result_code == "SUCCESS"
        trade = self.mark_paid(out_trade_no) if genuine else self.trade(out_trade_no)
        fee = trade.total_fee if total_fee is None else total_fee
        params = {
            "appid": appid or self.appid,
            "bank_type": "CMC",
            "cash_fee": fee,
            "fee_type": "CNY",
            "is_subscribe": "N",
            "mch_id": mch_id or self.mch_id,
            "nonce_str": secrets.token_hex(16),
            "openid": trade.openid,
            "out_trade_no": out_trade_no,
            "result_code": result_code,
            "return_code": "SUCCESS",
            "time_end": time.strftime("%Y%m%d%H%M%S"),
            "total_fee": fee,
            "trade_type": "JSAPI",
            "transaction_id": transaction_id or trade.transaction_id,
        }
        return signed_xml(params, key or self.api_key)

    def refund_notification(
        self,
        out_refund_no: str,
        *,
        refund_status: str = "SUCCESS",
        refund_fee: int | None = None,
        key: str | None = None,
        appid: str | None = None,
        mch_id: str | None = None,
    ) -> bytes:
        """The refund notification WeChat Pay posts, its details in `req_info` encrypted under md5(`key`).

        A genuine one (nothing overridden) finishes the refund with `refund_status`, as WeChat did.
        """
        genuine = (refund_fee, key, appid, mch_id) == (None,) * 4
        refund = self.finish_refund(out_refund_no, refund_status) if genuine else self.refund(out_refund_no)
        trade = self.trade(refund.out_trade_no)
        fee = refund.refund_fee if refund_fee is None else refund_fee
        info = {
            "transaction_id": trade.transaction_id,
            "out_trade_no": trade.out_trade_no,
            "refund_id": refund.refund_id,
            "out_refund_no": out_refund_no,
            "total_fee": trade.total_fee,
            "refund_fee": fee,
            "settlement_refund_fee": fee,
            "refund_status": refund_status,
            "success_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "refund_recv_accout": "支付用户的零钱",
            "refund_account": "REFUND_SOURCE_RECHARGE_FUNDS",
            "refund_request_source": "API",
        }
        return refund_notification_xml(
            appid or self.appid, mch_id or self.mch_id, key or self.api_key, info, secrets.token_hex(16)
        )

    # --- the API -------------------------------------------------------------------------------------------

    def _answer(self, params: dict[str, Any]) -> Response:
        base = {"return_code": "SUCCESS", "return_msg": "OK", "appid": self.appid, "mch_id": self.mch_id}
        base["nonce_str"] = secrets.token_hex(16)
        return Response(signed_xml({**base, **params}, self.api_key), media_type="text/xml")

    def _refuse(self, return_msg: str) -> Response:
        return Response(to_xml({"return_code": "FAIL", "return_msg": return_msg}), media_type="text/xml")

    def _business_fail(self, err_code: str, des: str) -> Response:
        return self._answer({"result_code": "FAIL", "err_code": err_code, "err_code_des": des})

    async def _begin(self, endpoint: str, request: Request) -> tuple[dict[str, Any], Response | None]:
        try:
            body = xmltodict.parse(await request.body())["xml"] or {}
        except Exception:
            return {}, self._refuse("XML格式错误")
        with self._lock:
            self._state.calls.append((endpoint, dict(body)))
            failures = self._state.failures.get(endpoint)
            failure = failures.pop(0) if failures else None
            delay = self._state.delays.get(endpoint, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if body.get("sign") != sign(body, self.api_key):
            return body, self._refuse("签名错误")
        if body.get("appid") != self.appid:
            return body, self._refuse("appid不存在")
        if body.get("mch_id") != self.mch_id:
            return body, self._refuse("商户号mch_id与appid不匹配")
        if failure is not None:
            return body, self._business_fail(*failure)
        return body, None

    async def _unifiedorder(self, request: Request) -> Response:
        body, refused = await self._begin(UNIFIEDORDER, request)
        if refused:
            return refused
        for name in ("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type"):
            if not body.get(name):
                return self._refuse(f"缺少参数{name}")
        if body["trade_type"] == "JSAPI" and not body.get("openid"):
            return self._business_fail("PARAM_ERROR", "JSAPI支付必须传openid")
        if not body["total_fee"].isdigit() or int(body["total_fee"]) <= 0:
            return self._business_fail("PARAM_ERROR", "total_fee")
        with self._lock:
            trade = self._state.trades.get(body["out_trade_no"])
            if trade is not None and trade.total_fee != int(body["total_fee"]):
                return self._business_fail("INVALID_REQUEST", "201 商户订单号重复")
            if trade is None:
                trade = Trade(
                    out_trade_no=body["out_trade_no"],
                    total_fee=int(body["total_fee"]),
                    openid=body["openid"],
                    notify_url=body["notify_url"],
                    prepay_id="wx" + secrets.token_hex(15),
                )
                self._state.trades[trade.out_trade_no] = trade
        return self._answer({"result_code": "SUCCESS", "trade_type": "JSAPI", "prepay_id": trade.prepay_id})

    async def _refund(self, request: Request) -> Response:
        body, refused = await self._begin(REFUND, request)
        if refused:
            return refused
        for name in ("out_refund_no", "total_fee", "refund_fee"):
            if not body.get(name):
                return self._refuse(f"缺少参数{name}")
        with self._lock:
            trade = self._state.trades.get(body.get("out_trade_no") or "")
            if trade is None:
                return self._business_fail("ORDERNOTEXIST", "订单不存在")
            if int(body["total_fee"]) != trade.total_fee:
                return self._business_fail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致")
            existing = self._state.refunds.get(body["out_refund_no"])
            if existing is None:
                refunded = sum(
                    r.refund_fee for r in self._state.refunds.values() if r.out_trade_no == trade.out_trade_no
                )
                if refunded + int(body["refund_fee"]) > trade.total_fee:
                    return self._business_fail("ERROR", "累计退款金额大于支付金额")
                existing = RefundRecord(
                    out_refund_no=body["out_refund_no"],
                    out_trade_no=trade.out_trade_no,
                    refund_fee=int(body["refund_fee"]),
                    refund_id="50000" + secrets.token_hex(12),
                    notify_url=body.get("notify_url") or "",
                )
                self._state.refunds[existing.out_refund_no] = existing
            elif existing.refund_fee != int(body["refund_fee"]):
                return self._business_fail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致")
        return self._answer(
            {
                "result_code": "SUCCESS",
                "transaction_id": trade.transaction_id,
                "out_trade_no": trade.out_trade_no,
                "out_refund_no": existing.out_refund_no,
                "refund_id": existing.refund_id,
                "refund_fee": existing.refund_fee,
                "total_fee": trade.total_fee,
                "cash_fee": trade.total_fee,
            }
        )

    async def _orderquery(self, request: Request) -> Response:
        body, refused = await self._begin(ORDERQUERY, request)
        if refused:
            return refused
        with self._lock:
            trade = self._state.trades.get(body.get("out_trade_no") or "")
            if trade is None:
                return self._business_fail("ORDERNOTEXIST", "订单不存在")
            answer: dict[str, Any] = {
                "result_code": "SUCCESS",
                "out_trade_no": trade.out_trade_no,
                "trade_state": trade.state,
                "trade_state_desc": _TRADE_STATE_DESC.get(trade.state, trade.state),
            }
            if trade.state == "SUCCESS":
                answer.update(
                    openid=trade.openid,
                    is_subscribe="N",
                    trade_type="JSAPI",
                    bank_type="CMC",
                    total_fee=trade.total_fee,
                    cash_fee=trade.total_fee,
                    fee_type="CNY",
                    transaction_id=trade.transaction_id,
                    time_end=trade.time_end,
                )
        return self._answer(answer)

    async def _closeorder(self, request: Request) -> Response:
        body, refused = await self._begin(CLOSEORDER, request)
        if refused:
            return refused
        with self._lock:
            trade = self._state.trades.get(body.get("out_trade_no") or "")
            if trade is None:
                return self._business_fail("ORDERNOTEXIST", "订单不存在")
            if trade.state == "SUCCESS":
                return self._business_fail("ORDERPAID", "订单已支付，不能发起关单")
            trade.state = "CLOSED"
        return self._answer({"result_code": "SUCCESS", "result_msg": "OK"})

    async def _refundquery(self, request: Request) -> Response:
        body, refused = await self._begin(REFUNDQUERY, request)
        if refused:
            return refused
        with self._lock:
            refund = self._state.refunds.get(body.get("out_refund_no") or "")
            if refund is None:
                return self._business_fail("REFUNDNOTEXIST", "退款订单查询失败")
            trade = self._state.trades[refund.out_trade_no]
            answer: dict[str, Any] = {
                "result_code": "SUCCESS",
                "transaction_id": trade.transaction_id,
                "out_trade_no": trade.out_trade_no,
                "total_fee": trade.total_fee,
                "cash_fee": trade.total_fee,
                "refund_count": 1,
                "out_refund_no_0": refund.out_refund_no,
                "refund_id_0": refund.refund_id,
                "refund_channel_0": "ORIGINAL",
                "refund_fee_0": refund.refund_fee,
                "refund_status_0": refund.status,
                "refund_recv_accout_0": "支付用户的零钱",
            }
            if refund.status == "SUCCESS":
                answer["refund_success_time_0"] = time.strftime("%Y-%m-%d %H:%M:%S")
        return self._answer(answer)


_TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "订单已关闭"}


@pytest.fixture(scope="session")
def wechat_pay_server() -> Iterator[WeChatPayStandIn]:
    standin = WeChatPayStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def wechat_pay(
    wechat_pay_server: WeChatPayStandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WeChatPayStandIn]:
    """The stand-in, reset, with WECHAT_PAY_API_BASE_URL, WECHAT_APPID, WECHAT_MCH_ID and WECHAT_PAY_API_KEY
    of the cached settings pointing at it for this test (restored afterwards)."""
    wechat_pay_server.reset()
    monkeypatch.setattr(settings, "wechat_pay_api_base_url", wechat_pay_server.base_url)
    monkeypatch.setattr(settings, "wechat_appid", wechat_pay_server.appid)
    monkeypatch.setattr(settings, "wechat_mch_id", wechat_pay_server.mch_id)
    monkeypatch.setattr(settings, "wechat_pay_api_key", wechat_pay_server.api_key)
    yield wechat_pay_server
    wechat_pay_server.reset()
