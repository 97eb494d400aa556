"""Runtime settings, read once from the environment (and an optional `.env` file)."""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveInt, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra import wechat_sandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Bounds that keep every money total within a 32-bit Int (see services/orders/pricing.py MAX_ORDER_TOTAL).
MAX_PURCHASE_LIMIT = 100
MAX_SHIPPING_FEE = 10_000_000
ShippingFee = Annotated[int, Field(ge=0, le=MAX_SHIPPING_FEE)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(default=PROJECT_ROOT / "data", alias="DATA_DIR")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    secret_key: str | None = Field(default=None, alias="SECRET_KEY")
    public_base_url: str = Field(default="http://127.0.0.1:8000", alias="PUBLIC_BASE_URL")
    # Unset: on for the embedded default (a developer's machine: GraphiQL with schema docs), off in production.
    debug: bool | None = Field(default=None, alias="DEBUG")
    # Browser origins (other than the server's own) whose pages may call the API: CORS for HTTP and the
    # WebSocket handshake's Origin check. ALLOWED_WS_ORIGINS is the older, WebSocket-only name; both are merged.
    allowed_origins: list[str] = Field(default_factory=list, alias="ALLOWED_ORIGINS")
    allowed_ws_origins: list[str] = Field(default_factory=list, alias="ALLOWED_WS_ORIGINS")
    db_pool_max: int = Field(default=10, alias="DB_POOL_MAX")

    wechat_appid: str = Field(default="", alias="WECHAT_APPID")
    wechat_secret: str = Field(default="", alias="WECHAT_SECRET")
    wechat_api_base_url: str = Field(default="https://api.weixin.qq.com/", alias="WECHAT_API_BASE_URL")
    wechat_mch_id: str = Field(default="", alias="WECHAT_MCH_ID")
    wechat_pay_api_key: str = Field(default="", alias="WECHAT_PAY_API_KEY")
    # The merchant certificate and key (PEM files) WeChat Pay requires for refunds.
    wechat_pay_cert_path: str = Field(default="", alias="WECHAT_PAY_CERT_PATH")
    wechat_pay_key_path: str = Field(default="", alias="WECHAT_PAY_KEY_PATH")
    wechat_pay_api_base_url: str = Field(
        default="https://api.mch.weixin.qq.com/", alias="WECHAT_PAY_API_BASE_URL"
    )
    # Unset: on for the embedded default without WeChat credentials (infra/wechat_sandbox), off otherwise.
    wechat_sandbox: bool | None = Field(default=None, alias="WECHAT_SANDBOX")
    _sandbox_refused: str | None = PrivateAttr(default=None)

    graphiql: bool = Field(default=True, alias="GRAPHIQL")
    # Per-request log lines cost real throughput on the hot path; off unless asked for.
    access_log: bool = Field(default=False, alias="ACCESS_LOG")
    response_cache: bool = Field(default=True, alias="RESPONSE_CACHE")
    max_query_depth: int = Field(default=10, ge=1, alias="MAX_QUERY_DEPTH")
    max_aliases: int = Field(default=15, ge=0, alias="MAX_ALIASES")
    max_page_size: int = Field(default=100, ge=1, alias="MAX_PAGE_SIZE")
    # Checked before graphql-core validates a document: some of its rules are quadratic in the document, so
    # the document itself must be small (schema/query_shape.py has the measurements behind these defaults).
    max_query_tokens: int = Field(default=2000, ge=100, alias="MAX_QUERY_TOKENS")
    max_query_definitions: int = Field(default=50, ge=1, alias="MAX_QUERY_DEFINITIONS")
    max_query_selections: int = Field(default=1000, ge=10, alias="MAX_QUERY_SELECTIONS")
    max_field_overlaps: int = Field(default=500, ge=0, alias="MAX_FIELD_OVERLAPS")
    # Static cost of one operation (schema/query_cost.py), and the leaky buckets it is charged to.
    max_query_cost: int = Field(default=5000, ge=1, alias="MAX_QUERY_COST")
    cost_bucket_size: NonNegativeInt = Field(default=10_000, alias="COST_BUCKET_SIZE")
    cost_restore_rate: float = Field(default=500.0, gt=0, alias="COST_RESTORE_RATE")
    cost_bucket_size_per_ip: NonNegativeInt = Field(default=100_000, alias="COST_BUCKET_SIZE_PER_IP")
    cost_restore_rate_per_ip: float = Field(default=10_000.0, gt=0, alias="COST_RESTORE_RATE_PER_IP")
    # The largest request body (bytes) and the deepest JSON nesting (objects and lists) a request body or a
    # WebSocket message may have. The README's largest requests are a few KB and 6 levels deep.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, alias="MAX_BODY_BYTES")
    max_json_depth: int = Field(default=32, ge=4, le=512, alias="MAX_JSON_DEPTH")
    # Daily sign-in points by streak day (1st, 2nd, ...); days past the end get the last value.
    sign_in_points: list[NonNegativeInt] = Field(
        default_factory=lambda: [5, 5, 10, 10, 15, 15, 30], min_length=1, alias="SIGN_IN_POINTS"
    )

    # Checkout money rules (fen). Region fees match a province by its leading characters (新疆 → 新疆维吾尔自治区).
    # Fees are bounded (¥100,000) so an order's payable, its items total plus shipping, fits a 32-bit Int.
    shipping_free_over: NonNegativeInt = Field(default=9900, alias="SHIPPING_FREE_OVER")
    shipping_base_fee: ShippingFee = Field(default=1000, alias="SHIPPING_BASE_FEE")
    shipping_region_fees: dict[str, ShippingFee] = Field(
        default_factory=lambda: {"新疆": 2500, "西藏": 2500}, alias="SHIPPING_REGION_FEES"
    )
    points_per_yuan: int = Field(default=100, ge=1, alias="POINTS_PER_YUAN")
    points_max_percent: int = Field(default=50, ge=0, le=100, alias="POINTS_MAX_PERCENT")
    order_pay_timeout_minutes: int = Field(default=30, ge=1, alias="ORDER_PAY_TIMEOUT_MINUTES")
    # At most 100: with the catalog's highest unit price a line then stays within one order's total limit.
    purchase_limit_per_sku: int = Field(
        default=99, ge=1, le=MAX_PURCHASE_LIMIT, alias="PURCHASE_LIMIT_PER_SKU"
    )
    order_auto_receive_days: int = Field(default=10, ge=1, alias="ORDER_AUTO_RECEIVE_DAYS")
    bargain_helps_per_day: int = Field(default=5, ge=1, le=1000, alias="BARGAIN_HELPS_PER_DAY")
    sweep_interval_seconds: float = Field(default=15.0, gt=0, alias="SWEEP_INTERVAL_SECONDS")
    # Copy WeChat's own live rooms (小程序直播, getliveinfo) into ours on every sweep.
    live_wechat_sync: bool = Field(default=False, alias="LIVE_WECHAT_SYNC")
    wechat_ship_template_id: str = Field(default="", alias="WECHAT_SHIP_TEMPLATE_ID")
    wechat_presale_balance_template_id: str = Field(default="", alias="WECHAT_PRESALE_BALANCE_TEMPLATE_ID")

    # Content: WeChat's message push (media check verdicts), uploads and their storage, reviews, articles.
    wechat_message_token: str = Field(default="", alias="WECHAT_MESSAGE_TOKEN")
    wechat_message_aes_key: str = Field(default="", alias="WECHAT_MESSAGE_AES_KEY")
    upload_dir: Path | None = Field(default=None, alias="UPLOAD_DIR")
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, alias="UPLOAD_MAX_BYTES")
    upload_max_pixels: int = Field(default=40_000_000, ge=10_000, alias="UPLOAD_MAX_PIXELS")
    upload_thumbnail_size: int = Field(default=360, ge=32, le=2048, alias="UPLOAD_THUMBNAIL_SIZE")
    s3_endpoint_url: str = Field(default="", alias="S3_ENDPOINT_URL")
    s3_bucket: str = Field(default="", alias="S3_BUCKET")
    s3_access_key: str = Field(default="", alias="S3_ACCESS_KEY")
    s3_secret_key: str = Field(default="", alias="S3_SECRET_KEY")
    s3_region: str = Field(default="us-east-1", alias="S3_REGION")
    s3_public_base_url: str = Field(default="", alias="S3_PUBLIC_BASE_URL")
    review_window_days: int = Field(default=15, ge=1, alias="REVIEW_WINDOW_DAYS")
    review_append_days: int = Field(default=90, ge=1, alias="REVIEW_APPEND_DAYS")
    review_points: NonNegativeInt = Field(default=10, alias="REVIEW_POINTS")
    articles_by_members: bool = Field(default=False, alias="ARTICLES_BY_MEMBERS")
    # Faults (README: "When Redis or PostgreSQL is down"). Redis waits are bounded; a member session is
    # re-checked in the database at most this often; WebSocket bounds are per server process; payments and
    # refunds no notification settled are asked about at WeChat Pay after this many seconds.
    redis_timeout_seconds: float = Field(default=1.0, gt=0, le=10, alias="REDIS_TIMEOUT_SECONDS")
    session_check_seconds: int = Field(default=60, ge=1, le=3600, alias="SESSION_CHECK_SECONDS")
    ws_max_connections_per_ip: int = Field(default=200, ge=1, alias="WS_MAX_CONNECTIONS_PER_IP")
    ws_max_connections_per_member: int = Field(default=10, ge=1, alias="WS_MAX_CONNECTIONS_PER_MEMBER")
    ws_max_subscriptions_per_connection: int = Field(
        default=20, ge=1, alias="WS_MAX_SUBSCRIPTIONS_PER_CONNECTION"
    )
    pay_query_after_seconds: int = Field(default=120, ge=1, alias="PAY_QUERY_AFTER_SECONDS")

    # Whose X-Forwarded-For is believed (uvicorn's syntax: addresses, CIDR networks, "*"); anyone else's is
    # ignored, so a client cannot pick the address limits count it by.
    forwarded_allow_ips: str = Field(default="127.0.0.1,::1", alias="FORWARDED_ALLOW_IPS")
    # Rate limits: attempts per window (seconds), counted in Redis across processes. Login counts per WeChat
    # code and per device (X-Device-Id) first; the per-IP limit is generous because carrier NATs put many
    # shoppers behind one address; per openid after WeChat answered.
    login_code_limit: PositiveInt = Field(default=3, alias="LOGIN_CODE_LIMIT")
    login_code_window_seconds: PositiveInt = Field(default=300, alias="LOGIN_CODE_WINDOW_SECONDS")
    login_device_limit: PositiveInt = Field(default=10, alias="LOGIN_DEVICE_LIMIT")
    login_device_window_seconds: PositiveInt = Field(default=60, alias="LOGIN_DEVICE_WINDOW_SECONDS")
    login_ip_limit: PositiveInt = Field(default=300, alias="LOGIN_IP_LIMIT")
    login_ip_window_seconds: PositiveInt = Field(default=60, alias="LOGIN_IP_WINDOW_SECONDS")
    login_openid_limit: PositiveInt = Field(default=30, alias="LOGIN_OPENID_LIMIT")
    login_openid_window_seconds: PositiveInt = Field(default=3600, alias="LOGIN_OPENID_WINDOW_SECONDS")
    phone_bind_limit: PositiveInt = Field(default=5, alias="PHONE_BIND_LIMIT")
    phone_bind_window_seconds: PositiveInt = Field(default=600, alias="PHONE_BIND_WINDOW_SECONDS")
    upload_limit: PositiveInt = Field(default=60, alias="UPLOAD_LIMIT")
    upload_window_seconds: PositiveInt = Field(default=600, alias="UPLOAD_WINDOW_SECONDS")
    # Hot search words: each member (or, anonymous, each IP) counts once per term per day, for at most this
    # many terms a day; a term needs this many distinct searchers to be shown; each day keeps its top terms.
    hot_search_terms_per_searcher: PositiveInt = Field(default=30, alias="HOT_SEARCH_TERMS_PER_SEARCHER")
    hot_search_min_searchers: PositiveInt = Field(default=3, alias="HOT_SEARCH_MIN_SEARCHERS")
    hot_search_day_capacity: PositiveInt = Field(default=1000, alias="HOT_SEARCH_DAY_CAPACITY")

    @model_validator(mode="after")
    def _default_debug(self) -> Settings:
        if self.debug is None:
            self.debug = self.database_url is None
        return self

    @model_validator(mode="after")
    def _wechat_sandbox(self) -> Settings:
        configured = [
            name
            for name, value in (
                ("WECHAT_APPID", self.wechat_appid),
                ("WECHAT_SECRET", self.wechat_secret),
                ("WECHAT_MCH_ID", self.wechat_mch_id),
                ("WECHAT_PAY_API_KEY", self.wechat_pay_api_key),
                ("WECHAT_MESSAGE_TOKEN", self.wechat_message_token),
            )
            if value
        ]
        blockers = (["DATABASE_URL"] if self.database_url else []) + configured
        if self.wechat_sandbox is None:
            self.wechat_sandbox = not blockers
        elif self.wechat_sandbox and blockers:
            self._sandbox_refused = (
                f"WECHAT_SANDBOX=true cannot be used with {', '.join(blockers)} set. The built-in WeChat "
                "sandbox fakes logins and payments, so it runs only on the embedded default (no DATABASE_URL) "
                "without WeChat credentials. Unset WECHAT_SANDBOX to use the configured WeChat."
            )
            self.wechat_sandbox = False
        if self.wechat_sandbox:
            # Its secrets live as long as this process, like the sandbox's memory of tokens and trades.
            base = self.public_base_url.rstrip("/")
            self.wechat_appid = wechat_sandbox.APPID
            self.wechat_secret = secrets.token_hex(16)
            self.wechat_mch_id = wechat_sandbox.MCH_ID
            self.wechat_pay_api_key = secrets.token_hex(16)
            self.wechat_api_base_url = f"{base}{wechat_sandbox.API_PATH}/"
            self.wechat_pay_api_base_url = f"{base}{wechat_sandbox.PAY_PATH}/"
            self.wechat_message_token = secrets.token_urlsafe(16)
            self.wechat_message_aes_key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        return self

    @property
    def wechat_sandbox_refusal(self) -> str | None:
        """Why WECHAT_SANDBOX=true was refused (the server must not start), or None."""
        return self._sandbox_refused

    @model_validator(mode="after")
    def _buckets_hold_a_whole_query(self) -> Settings:
        # A query the cost cap allows but no bucket can ever hold would be refused forever as RATE_LIMITED.
        for name, size in (
            ("COST_BUCKET_SIZE", self.cost_bucket_size),
            ("COST_BUCKET_SIZE_PER_IP", self.cost_bucket_size_per_ip),
        ):
            if 0 < size < self.max_query_cost:
                raise ValueError(
                    f"{name} ({size}) must be 0 (off) or at least MAX_QUERY_COST ({self.max_query_cost})"
                )
        return self

    @property
    def browser_origins(self) -> list[str]:
        """ALLOWED_ORIGINS and the older ALLOWED_WS_ORIGINS together, in order, without repeats."""
        return list(dict.fromkeys([*self.allowed_origins, *self.allowed_ws_origins]))

    @property
    def embedded_database(self) -> bool:
        return not self.database_url

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite://{(self.data_dir / 'lianmall.sqlite3').resolve()}"

    @property
    def resolved_upload_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "uploads"

    @property
    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data folder.

        Keeping it on disk lets every process of the embedded default (and the CLI) agree on it.
        """
        if self.secret_key:
            return self.secret_key
        # Asked on every member request: building and resolving the path each time cost ~50 µs of CPU.
        return _key_in_folder(self.data_dir)


@lru_cache(maxsize=8)
def _key_in_folder(folder: Path) -> str:
    return _key_kept_in(folder.resolve() / "secret_key")


@lru_cache(maxsize=8)
def _key_kept_in(path: Path) -> str:
    """Read once per process (every token check needs it). The first process to need it writes it: the whole
    key appears at once (a hard link of a finished file, which fails if another process won), owner-only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
