"""WeChat Pay (API v2) through wechatpy, kept off the event loop: unified order and JSAPI parameters.

wechatpy builds, signs and reads every call (XML, MD5 signatures); the client comes from the settings
(WECHAT_APPID, WECHAT_MCH_ID, WECHAT_PAY_API_KEY) with its base URL at WECHAT_PAY_API_BASE_URL, so tests point
it at a local stand-in speaking WeChat Pay's XML and MD5 signatures. wechatpy would send through requests, which
is synchronous and costs ~0.9 ms of CPU per call in a worker thread (prepay is on every placeOrder): the request
wechatpy built is sent on the event loop instead (infra/http_client.py), and its answer goes back through
wechatpy's own reading. Only when the environment names a proxy for WeChat Pay does requests send it (in a
worker thread, with a timeout), as it honours proxies.

WeChat Pay's failures become DomainErrors: a network failure, a timeout, an HTTP error, an answer that is not
XML or whose signature does not verify, and WeChat's own system errors are PAYMENT_UNAVAILABLE.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import requests
import wechatpy.pay.api.order
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.utils import timezone

from infra import raw_sql
from infra.blocking_io import ThreadLane
from infra.http_client import HTTPClient, HTTPClientError, proxied
from infra.settings import Settings, get_settings
from models import Order, OrderLine, OrderStatus, Payment, PaymentStage, PaymentStatus, Shop
from services.errors import DomainError, ErrorCode
from services.payments import plans

log = logging.getLogger("lianmall.wechat_pay")

# Seconds to wait for WeChat Pay (connect and each read); read at call time so tests can shorten it.
TIMEOUT_SECONDS = 10.0
PAY_THREADS = 16
# A prepay_id lives 2 hours at WeChat; one younger than this is handed out again instead of a new one.
PREPAY_REUSE = timedelta(minutes=100)
# WeChat wants time_expire at least a minute after the order is placed at WeChat.
_MIN_EXPIRE = timedelta(minutes=1)
_BODY_MAX = 40  # characters; WeChat's `body` is at most 128 bytes of UTF-8
_SHANGHAI = ZoneInfo("Asia/Shanghai")

NOTIFY_PATH = "/payments/wechat/notify"
REFUND_NOTIFY_PATH = "/payments/wechat/refund-notify"

# WeChat Pay err_code values a caller can act on; the rest are "unavailable".
_ALREADY_PAID = {"ORDERPAID"}
_NOT_PAYABLE = {"ORDERCLOSED", "OUT_TRADE_NO_USED"}
_REFUND_REFUSED = {"NOTENOUGH", "TRADE_OVERDUE", "ERROR", "USER_ACCOUNT_ABNORMAL", "INVALID_REQ_TOO_MUCH"}
_NO_SUCH_TRADE = {"ORDERNOTEXIST", "REFUNDNOTEXIST"}


@dataclass(frozen=True)
class PayParams:
    """What the mini-program passes to `wx.requestPayment`."""

    app_id: str
    time_stamp: str
    nonce_str: str
    package: str
    sign_type: str
    pay_sign: str


@dataclass(frozen=True)
class NewOrder:
    """What checkout knows of an order it has just written, so that its first prepay reads nothing again: the
    member's openid, the body WeChat shows, and the campaign kinds of its lines (which payment plans may apply).
    No payment of such an order exists yet."""

    openid: str
    body: str
    campaign_kinds: frozenset[str] = frozenset()


# --- the client --------------------------------------------------------------------------------------------


PAY_LANE = ThreadLane(threads=PAY_THREADS, timeout=TIMEOUT_SECONDS)


def _configured() -> Settings:
    settings = get_settings()
    if not (settings.wechat_appid and settings.wechat_mch_id and settings.wechat_pay_api_key):
        log.error("WECHAT_APPID, WECHAT_MCH_ID and WECHAT_PAY_API_KEY must be set for WeChat Pay")
        raise DomainError(ErrorCode.PAYMENT_UNAVAILABLE, "WeChat Pay is not configured on this server")
    return settings


def pay_client(settings: Settings | None = None) -> WeChatPay:
    """wechatpy's WeChatPay for our merchant, at WECHAT_PAY_API_BASE_URL, with a timeout.

    The merchant certificate (needed by the refund API) comes from WECHAT_PAY_CERT_PATH and
    WECHAT_PAY_KEY_PATH; wechatpy passes it to requests as `cert`.
    """
    return _client(settings or _configured(), building=False)


def _client(settings: Settings, *, building: bool) -> WeChatPay:
    base = settings.wechat_pay_api_base_url
    key = (
        building,
        settings.wechat_appid,
        settings.wechat_pay_api_key,
        settings.wechat_mch_id,
        settings.wechat_pay_cert_path,
        settings.wechat_pay_key_path,
        base,
        TIMEOUT_SECONDS,
        PAY_LANE.session,
    )
    client = _clients.get(key)
    if client is None:
        client = (_BuildingPay if building else WeChatPay)(
            settings.wechat_appid,
            settings.wechat_pay_api_key,
            settings.wechat_mch_id,
            mch_cert=settings.wechat_pay_cert_path or None,
            mch_key=settings.wechat_pay_key_path or None,
            timeout=TIMEOUT_SECONDS,
        )
        client.API_BASE_URL = base if base.endswith("/") else base + "/"
        client._http = _BUILDER if building else PAY_LANE.session
        if len(_clients) >= 8:
            _clients.clear()
        _clients[key] = client
    return client


# Clients by everything they are built from: building one (wechatpy sets up its API objects) cost more than
# signing a request. A client keeps no state between calls.
_clients: dict[tuple[Any, ...], WeChatPay] = {}


class _Unsent:
    """A call wechatpy built and signed, standing where requests' response would be: what it would send."""

    def __init__(self, url: str, data: bytes, cert: tuple[str, str] | None) -> None:
        self.url = url
        self.data = data
        self.cert = cert

    def raise_for_status(self) -> None:
        return None


class _Builder:
    """Stands in for wechatpy's requests session: keeps the request instead of sending it."""

    def request(self, method: str, url: str, **kwargs: Any) -> _Unsent:
        data = kwargs.get("data") or b""
        return _Unsent(url, data if isinstance(data, bytes) else str(data).encode(), kwargs.get("cert"))


_BUILDER = _Builder()


class _BuildingPay(WeChatPay):  # type: ignore[misc]
    """wechatpy's WeChatPay whose calls answer the request they would send (`_Unsent`)."""

    def _handle_result(self, res: Any) -> Any:
        return res


class _Answered:
    """An HTTP answer as wechatpy's `_handle_result` reads one (requests' response)."""

    def __init__(self, body: bytes) -> None:
        self.encoding = "utf-8"
        self.text = body.decode("utf-8", errors="replace")
        self.request = None


HTTP = HTTPClient()

# wechatpy's unified order looks up its time zone on every call with `import pytz` first, which is not installed:
# the failed import searches sys.path each time (~50 µs per prepay). The zone does not change.
wechatpy.pay.api.order.timezone = lru_cache(maxsize=4)(timezone)


def notify_url(path: str = NOTIFY_PATH) -> str:
    return get_settings().public_base_url.rstrip("/") + path


def unavailable(message: str = "WeChat Pay is not answering right now; try again shortly") -> DomainError:
    return DomainError(ErrorCode.PAYMENT_UNAVAILABLE, message)


def _pay_error(exc: WeChatPayException) -> DomainError:
    code = exc.errcode
    if exc.return_code != "SUCCESS" or code is None:
        # Communication-level failure: signature, parameters, our configuration, or an HTTP error.
        log.error("WeChat Pay refused the call: return_code %s, %s", exc.return_code, exc.return_msg)
        return unavailable()
    if code in _ALREADY_PAID:
        return DomainError(ErrorCode.ORDER_ALREADY_PAID, "This order is already paid")
    if code in _NOT_PAYABLE:
        return DomainError(ErrorCode.ORDER_NOT_PAYABLE, "WeChat Pay no longer accepts payment for this order")
    if code in _NO_SUCH_TRADE:
        return DomainError(ErrorCode.NOT_FOUND, f"WeChat Pay has no such trade or refund ({code})")
    if code in _REFUND_REFUSED:
        log.warning("WeChat Pay refused a refund: %s %s", code, exc.errmsg)
        return DomainError(ErrorCode.REFUND_FAILED, f"WeChat Pay refused the refund ({code})")
    log.warning("WeChat Pay error %s: %s", code, exc.errmsg)
    return unavailable()


async def call_pay(call: Callable[[WeChatPay], Any]) -> dict[str, Any]:
    """Send `call(client)` (a wechatpy call) to WeChat Pay; WeChat Pay's failures become DomainErrors.

    The answer's own signature is verified: a signed answer is WeChat's, anything else is "unavailable".
    """
    settings = _configured()
    client = pay_client(settings)
    try:
        if proxied(client.API_BASE_URL):
            result = await PAY_LANE.run(lambda: call(client))
        else:
            result = await _send(client, call(_client(settings, building=True)))
    except WeChatPayException as exc:
        raise _pay_error(exc) from None
    except (requests.RequestException, HTTPClientError) as exc:
        log.warning("WeChat Pay is unreachable: %s", type(exc).__name__)
        raise unavailable() from None
    except (KeyError, ValueError, TypeError):
        log.exception("WeChat Pay answered in an unexpected shape")
        raise unavailable() from None
    if not isinstance(result, dict):
        log.warning("WeChat Pay answered something that is not XML")
        raise unavailable()
    if not client.check_signature(dict(result)):
        log.error("WeChat Pay's answer has a wrong signature")
        raise unavailable()
    return dict(result)


async def _send(client: WeChatPay, unsent: _Unsent) -> Any:
    """What wechatpy answers for the request it built (`unsent`), sent on the event loop: its data, or the
    text when the answer is not XML. Raises WeChatPayException and HTTPClientError."""
    answer = await HTTP.post(unsent.url, unsent.data, seconds=TIMEOUT_SECONDS, cert=unsent.cert)
    if answer.status >= 400:
        # What wechatpy raises for an HTTP error.
        raise WeChatPayException(return_code=None, return_msg=f"HTTP {answer.status}", client=client)
    return client._handle_result(_Answered(answer.body))


# --- prepay ------------------------------------------------------------------------------------------------


def new_trade_number(prefix: str) -> str:
    """A merchant number for WeChat (at most 32 characters, letters and digits): prefix, time, randomness."""
    return f"{prefix}{datetime.now(_SHANGHAI):%Y%m%d%H%M%S}{secrets.token_hex(6).upper()}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _body(order: Order) -> str:
    shop = await Shop.get_or_none(id=order.shop_id)  # type: ignore[attr-defined]
    line = await OrderLine.filter(order_id=order.id).order_by("id").first()
    title = line.title if line else "订单"
    text = f"{shop.name if shop else ''}-{title}" if shop else title
    return text[:_BODY_MAX]


def _nonce() -> str:
    """A nonce_str for WeChat Pay from the secrets module: wechatpy's own default draws 32 characters with
    `random.sample` (predictable, and ~15 µs)."""
    return secrets.token_hex(16)


def _params(client: WeChatPay, prepay_id: str) -> PayParams:
    params = client.jsapi.get_jsapi_params(prepay_id, nonce_str=_nonce())
    return PayParams(
        app_id=params["appId"],
        time_stamp=params["timeStamp"],
        nonce_str=params["nonceStr"],
        package=params["package"],
        sign_type=params["signType"],
        pay_sign=params["paySign"],
    )


async def prepay(
    order: Order, openid: str, client_ip: str | None = None, *, new_order: NewOrder | None = None
) -> PayParams:
    """WeChat Pay JSAPI parameters for paying `order` (unified order), for the member with `openid`.

    A still-open prepay of the same order and amount is handed out again (a second tap on "pay" makes no
    second WeChat order). `new_order`: the order was just written by checkout, which says what it knows.
    Raises ORDER_ALREADY_PAID, ORDER_NOT_PAYABLE (not pending payment, nothing to pay, past its deadline) or
    PAYMENT_UNAVAILABLE.
    """
    settings = _configured()
    if order.status == OrderStatus.PAID or (
        order.paid_amount and order.status != OrderStatus.PENDING_PAYMENT
    ):
        raise DomainError(ErrorCode.ORDER_ALREADY_PAID, "This order is already paid")
    if order.status != OrderStatus.PENDING_PAYMENT or order.payable <= 0:
        raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, "This order is not waiting for payment")
    # One payment, or a plan's stage (a presale's deposit, then its balance in its window).
    due = await plans.amount_due(order, new_order.campaign_kinds if new_order is not None else None)
    if due.stage == PaymentStage.FULL and order.paid_amount:
        raise DomainError(ErrorCode.ORDER_ALREADY_PAID, "This order is already paid")
    now = datetime.now(UTC)
    deadline = _aware(order.pay_deadline)
    if deadline - now < _MIN_EXPIRE:
        raise DomainError(ErrorCode.ORDER_NOT_PAYABLE, "The time to pay this order is over")

    open_payment = (
        None
        if new_order is not None
        else (
            await Payment.filter(
                order_id=order.id,
                status=PaymentStatus.PENDING,
                amount=due.amount,
                stage=due.stage,
                created_at__gte=now - PREPAY_REUSE,
            )
            .exclude(prepay_id="")
            .order_by("-id")
            .first()
        )
    )
    if open_payment is not None:
        return _params(pay_client(settings), open_payment.prepay_id)

    # The payment row is written once WeChat Pay has answered, with its prepay_id (one statement): nobody can
    # pay a trade before its prepay_id is handed out, which is only after the row exists, so every
    # notification finds its payment. A trade whose answer never came, or whose row could not be written, has
    # a prepay_id nobody holds: it cannot be paid, and expires at WeChat.
    number = new_trade_number("P")
    body = new_order.body[:_BODY_MAX] if new_order is not None else await _body(order)
    start = now.astimezone(_SHANGHAI)
    expire = min(deadline, now + PREPAY_REUSE + timedelta(minutes=15)).astimezone(_SHANGHAI)
    result = await call_pay(
        lambda c: c.order.create(
            trade_type="JSAPI",
            body=body,
            total_fee=due.amount,
            notify_url=notify_url(NOTIFY_PATH),
            client_ip=client_ip or "127.0.0.1",
            user_id=openid,
            out_trade_no=number,
            time_start=start,
            time_expire=expire,
            attach=order.number,
            nonce_str=_nonce(),
        )
    )
    prepay_id = result.get("prepay_id")
    if not isinstance(prepay_id, str) or not prepay_id:
        log.error("unifiedorder answered without prepay_id")
        raise unavailable()
    await _record_payment(order.id, number, due, prepay_id, bool(settings.wechat_sandbox), now)
    return _params(pay_client(settings), prepay_id)


_NEW_PAYMENT_PG = (
    "INSERT INTO payments (order_id, out_trade_no, amount, status, prepay_id, created_at, sandbox, stage)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)


async def _record_payment(
    order_id: int, number: str, due: plans.Due, prepay_id: str, sandbox: bool, at: datetime
) -> None:
    """The PENDING payment of `due` WeChat Pay knows as `number` with `prepay_id` (a fixed statement on
    PostgreSQL: prepay is on every placeOrder's path)."""
    if raw_sql.is_postgres():
        status, stage = PaymentStatus.PENDING.value, due.stage.value
        await raw_sql.execute(
            _NEW_PAYMENT_PG, [order_id, number, due.amount, status, prepay_id, at, sandbox, stage]
        )
        return
    await Payment.create(
        order_id=order_id,
        out_trade_no=number,
        amount=due.amount,
        stage=due.stage,
        sandbox=sandbox,
        prepay_id=prepay_id,
    )
