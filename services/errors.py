"""The one error type the domain raises; the GraphQL edge maps it to `extensions.code` or payload errors."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    INVALID_ID = "INVALID_ID"
    CONFLICT = "CONFLICT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    WECHAT_CODE_INVALID = "WECHAT_CODE_INVALID"
    WECHAT_RATE_LIMITED = "WECHAT_RATE_LIMITED"
    WECHAT_UNAVAILABLE = "WECHAT_UNAVAILABLE"
    WECHAT_DATA_INVALID = "WECHAT_DATA_INVALID"
    CONTENT_REJECTED = "CONTENT_REJECTED"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    IMAGE_CORRUPT = "IMAGE_CORRUPT"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    REVIEW_NOT_ALLOWED = "REVIEW_NOT_ALLOWED"
    ALREADY_REVIEWED = "ALREADY_REVIEWED"
    PAGE_SIZE_EXCEEDED = "PAGE_SIZE_EXCEEDED"
    PAYMENT_UNAVAILABLE = "PAYMENT_UNAVAILABLE"
    ORDER_NOT_PAYABLE = "ORDER_NOT_PAYABLE"
    ORDER_ALREADY_PAID = "ORDER_ALREADY_PAID"
    REFUND_NOT_ALLOWED = "REFUND_NOT_ALLOWED"
    REFUND_EXCEEDS_PAID = "REFUND_EXCEEDS_PAID"
    REFUND_FAILED = "REFUND_FAILED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    OFF_SHELF = "OFF_SHELF"
    # A coupon, a points-mall item or another allotment has none left.
    SOLD_OUT = "SOLD_OUT"
    # A coupon the shopper chose cannot be used on this order (the message names it and says why).
    COUPON_NOT_APPLICABLE = "COUPON_NOT_APPLICABLE"
    # A campaign (group buy, presale, ...) is not running now: not started, ended or stopped by staff.
    CAMPAIGN_NOT_ACTIVE = "CAMPAIGN_NOT_ACTIVE"
    # Every seat of a group buy is taken (paid, or held by an order within its unpaid timeout).
    GROUP_FULL = "GROUP_FULL"
    ALREADY_SIGNED_IN = "ALREADY_SIGNED_IN"
    ALREADY_BOUND = "ALREADY_BOUND"
    INVALID_CURSOR = "INVALID_CURSOR"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    # Red-packet rain: not falling yet, over (or called off), every packet taken.
    RAIN_NOT_STARTED = "RAIN_NOT_STARTED"
    RAIN_OVER = "RAIN_OVER"
    RAIN_EMPTY = "RAIN_EMPTY"
    # Auctions: a bid below the least next bid, or an auction not taking bids (not started, over, cancelled).
    BID_TOO_LOW = "BID_TOO_LOW"
    AUCTION_CLOSED = "AUCTION_CLOSED"
    # The HTTP request itself is unusable (not JSON, not an object, wrong method for the operation, ...).
    BAD_REQUEST = "BAD_REQUEST"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    # The database cannot be reached right now: nothing was done, try again shortly (HTTP 503 at the edge).
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


class DomainError(Exception):
    """A failure the caller can act on: it carries a code, a message for people and optionally the field."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class ValidationErrors(DomainError):
    """Several input problems found at once, so a form can show them all."""

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__(errors[0].code, errors[0].message, errors[0].field)
        self.errors = errors
