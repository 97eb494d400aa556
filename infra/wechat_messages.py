"""WeChat's message push (消息推送) to our server: signature checks, the encrypted (safe) mode, both formats.

WeChat signs every push with the token configured for the mini-program (WECHAT_MESSAGE_TOKEN): `signature` is
the SHA1 of the sorted token, timestamp and nonce. In safe mode (an EncodingAESKey is configured,
WECHAT_MESSAGE_AES_KEY) the body carries only `Encrypt`, signed by `msg_signature` (SHA1 of the sorted token,
timestamp, nonce and the ciphertext) and AES-encrypted under that key (wechatpy's PrpCrypto). The data format
is JSON or XML, as configured at WeChat; both are read. Knows no domain: the endpoint hands the event on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import xmltodict
from wechatpy.crypto import PrpCrypto

from infra.settings import Settings

log = logging.getLogger("lianmall.wechat")

# Event messages are small; anything larger is not WeChat.
MAX_BODY = 64 * 1024
# A push older (or further in the future) than this is refused: a captured one cannot be replayed for long.
MAX_AGE_SECONDS = 600


class InvalidMessage(Exception):
    """A push that is not WeChat's: a bad or missing signature, a body that does not decrypt or parse."""


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def verify_signature(settings: Settings, params: dict[str, str]) -> None:
    """Raise InvalidMessage unless `params` carry WeChat's plain signature for our token."""
    token = settings.wechat_message_token
    if not token:
        raise InvalidMessage("WECHAT_MESSAGE_TOKEN is not configured")
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
    if not timestamp or not nonce or not _same(_sha1(token, timestamp, nonce), params.get("signature")):
        raise InvalidMessage("bad signature")


def _parse(text: str | bytes) -> dict[str, Any]:
    try:
        stripped = (text.decode() if isinstance(text, bytes) else text).lstrip()
        if stripped.startswith("{"):
            data = json.loads(stripped)
        else:
            data = xmltodict.parse(stripped, disable_entities=True).get("xml")
    except Exception as exc:  # not UTF-8; xmltodict raises expat errors of several kinds
        raise InvalidMessage(f"unreadable body: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise InvalidMessage("the body holds no message")
    return data


def _decrypt(settings: Settings, params: dict[str, str], envelope: dict[str, Any]) -> dict[str, Any]:
    encrypt = envelope.get("Encrypt")
    if not settings.wechat_message_aes_key:
        raise InvalidMessage("an encrypted message, but WECHAT_MESSAGE_AES_KEY is not configured")
    if not isinstance(encrypt, str) or not encrypt:
        raise InvalidMessage("an encrypted message without Encrypt")
    token, timestamp, nonce = (
        settings.wechat_message_token,
        params.get("timestamp", ""),
        params.get("nonce", ""),
    )
    if not _same(_sha1(token, timestamp, nonce, encrypt), params.get("msg_signature")):
        raise InvalidMessage("bad msg_signature")
    try:
        key = base64.b64decode(settings.wechat_message_aes_key + "=")
        plain = PrpCrypto(key).decrypt(encrypt, settings.wechat_appid)
    except (binascii.Error, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"does not decrypt: {type(exc).__name__}") from None
    except (
        Exception
    ) as exc:  # wechatpy's InvalidAppIdException (another mini-program's message), struct errors
        raise InvalidMessage(f"does not decrypt: {type(exc).__name__}") from None
    return _parse(plain)


def read_message(
    settings: Settings, params: dict[str, str], body: bytes, now: float | None = None
) -> dict[str, Any]:
    """The event WeChat pushed, checked: signed with our token, recent and, in safe mode, decrypted.

    The plain signature does not cover the body (WeChat's design); the endpoint also refuses a repeated
    timestamp and nonce, and safe mode, whose signature covers the ciphertext, is the one to use in
    production. Raises InvalidMessage for anything that is not a genuine push for our mini-program.
    """
    if len(body) > MAX_BODY:
        raise InvalidMessage("too large")
    stamp = params.get("timestamp", "")
    if not stamp.isdigit() or abs((now if now is not None else time.time()) - int(stamp)) > MAX_AGE_SECONDS:
        raise InvalidMessage("stale or missing timestamp")
    if params.get("encrypt_type") == "aes":
        if not settings.wechat_message_token:
            raise InvalidMessage("WECHAT_MESSAGE_TOKEN is not configured")
        return _decrypt(settings, params, _parse(body))
    verify_signature(settings, params)
    return _parse(body)
