"""Secrets never reach a log line: every record is redacted as it is made, whoever logs it.

What is removed, wherever it appears in the message or the traceback:
- our credentials by their shape: member access tokens (JWTs), refresh tokens (`rt_…`), staff tokens
  (`stf_…`), partner keys (`pk_…`), and `Bearer …`;
- values whose name looks secret, as GraphQL arguments (`refreshToken(token: "…")`), JSON and Python dict
  entries, URL query and form parameters (`…jscode2session?appid=…&secret=…&js_code=…`) and WeChat Pay XML
  elements (`<sign>…</sign>`): tokens, codes, passwords, secrets, keys, signatures, session keys and
  encrypted payloads. A `code` that is an UPPER_CASE error code stays readable;
- the password in a URL's credentials (`postgres://shop:…@db/shop`).

strawberry logs an unexpected error with the lines of the query around it (when PostgreSQL is down, a
`refreshToken(token: "rt_…")` mutation would be logged with its token), and the traceback of a failed WeChat
call shows the URL it requested, secret included; redacting records at creation covers both, and any
logger's handlers (uvicorn's own included) only ever see the redacted text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

REDACTED = "[redacted]"

# Prefixes as issued by services/members/tokens.py, services/access/staff.py and services/access/api_keys.py
# (infra imports no domain; tests/test_log_redaction.py checks they agree).
TOKEN_PREFIXES = ("rt_", "stf_", "pk_")

_SECRET_NAMES = (
    r"(?:access_?token|refresh_?token|token|id_?token|js_?code|code|password|passwd|pwd|secret|app_?secret"
    r"|api_?key|mch_?key|key|sign|pay_?sign|session_?key|encrypted_?data|iv|authorization|cookie|ticket"
    r"|credentials?)"
)
# name, then what joins it to its value (`: `, `=`, `": "`, `': '`), then a quoted or bare value. Variable
# references (`$token`) stay: they carry no value.
_NAMED = re.compile(
    rf"(?P<name>\b{_SECRET_NAMES}\b)(?P<join>[\"']?\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|(?!\$)[^\s&\"',;)}\]<>]+)",
    re.IGNORECASE,
)
_XML = re.compile(rf"<(?P<name>{_SECRET_NAMES})>(?P<value>.*?)</(?P=name)>", re.IGNORECASE | re.DOTALL)
_SHAPES = [
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), f"Bearer {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(rf"\b({'|'.join(TOKEN_PREFIXES)})[A-Za-z0-9_-]{{6,}}"), rf"\1{REDACTED}"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@", re.IGNORECASE), rf"\1{REDACTED}@"),
]
# Error codes (BAD_USER_INPUT) and HTTP statuses are not secrets: a `code` with such a value stays.
_NOT_SECRET_CODE = re.compile(r"[\"']?(?:[A-Z][A-Z0-9_]*|\d{1,6})[\"']?")


def _named(match: re.Match[str]) -> str:
    value = match.group("value")
    if match.group("name").lower() == "code" and _NOT_SECRET_CODE.fullmatch(value):
        return match.group(0)
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{match.group('name')}{match.group('join')}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """`text` with every secret this module knows of replaced by [redacted]."""
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    text = _XML.sub(lambda m: f"<{m.group('name')}>{REDACTED}</{m.group('name')}>", text)
    return _NAMED.sub(_named, text)


def _redact_arg(value: Any) -> Any:
    """A log call's argument, redacted; numbers and objects without secrets stay as they are (`%d`, `%r`)."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def _redact_record(record: logging.LogRecord) -> None:
    if record.args:
        # Arguments are redacted one by one and kept: some formatters read them (uvicorn's access log
        # unpacks client, method, path, version, status).
        if isinstance(record.args, Mapping):
            record.args = {key: _redact_arg(value) for key, value in record.args.items()}
        else:
            record.args = tuple(_redact_arg(value) for value in record.args)
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when it formats, leave it to that
        return
    cleaned = redact(message)
    # No arguments (strawberry logs the error object itself), or a secret only the format string and an
    # argument make together (`"token=%s", value`): keep the redacted text instead.
    if not record.args or cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        # Handlers print exc_text when it is set; without exc_info none can print the raw traceback.
        record.exc_text = redact(_formatter.formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_formatter = logging.Formatter()
_installed: Callable[..., logging.LogRecord] | None = None


def install_log_redaction() -> None:
    """Make every log record of this process redacted at creation (idempotent)."""
    global _installed
    if _installed is not None:
        return
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _redact_record(record)
        return record

    _installed = redacted_record
    logging.setLogRecordFactory(redacted_record)
