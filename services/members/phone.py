"""Protecting member secrets at rest: phone numbers and WeChat session keys.

Both are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under keys derived from the server's secret key
with HKDF, one key per purpose, so a key for one purpose can never open the other's data. Phone numbers also
get a masked form for display and a keyed hash (HMAC-SHA256) for exact lookup without decrypting anything.
Changing SECRET_KEY makes stored values unreadable: members then bind their phone again and log in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from infra.settings import get_settings

_PHONE_KEY = b"lianmall:phone:encrypt:v1"
_PHONE_HASH_KEY = b"lianmall:phone:lookup:v1"
_SESSION_KEY = b"lianmall:wechat-session-key:v1"

_PHONE_SHAPE = re.compile(r"^\+?[0-9]{5,20}$")


class UnreadableSecret(Exception):
    """A stored value that does not decrypt under the current secret key."""


@lru_cache(maxsize=16)
def _derive(secret: str, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lianmall", info=purpose)
    return hkdf.derive(secret.encode())


def _fernet(purpose: bytes) -> Fernet:
    # Keyed on the secret itself (not cached once): tests and key rotation change the settings.
    return Fernet(base64.urlsafe_b64encode(_derive(get_settings().resolved_secret_key, purpose)))


def _decrypt(token: str, purpose: bytes) -> str:
    try:
        return _fernet(purpose).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise UnreadableSecret("stored value does not decrypt under the current secret key") from None


def normalize_phone(number: str, country_code: str = "86") -> str:
    """The form a phone number is stored and compared in: mainland numbers bare, others as `+<cc><number>`."""
    digits = re.sub(r"[\s-]", "", number)
    if country_code and country_code != "86" and not digits.startswith("+"):
        digits = f"+{country_code}{digits}"
    if not _PHONE_SHAPE.match(digits):
        raise ValueError("not a phone number")
    return digits


def mask_phone(phone: str) -> str:
    """`13812341234` → `138****1234`: the first three and last four digits, the middle starred.

    Shorter numbers show only their last four (or, below eight, two) characters.
    """
    if len(phone) >= 11:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    if len(phone) >= 8:
        return "*" * (len(phone) - 4) + phone[-4:]
    return "*" * max(len(phone) - 2, 1) + phone[-2:]


def phone_hash(phone: str) -> str:
    """A keyed digest for finding members by phone; without the server secret it reveals nothing."""
    key = _derive(get_settings().resolved_secret_key, _PHONE_HASH_KEY)
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


def encrypt_phone(phone: str) -> str:
    """The phone number encrypted for storage."""
    return _fernet(_PHONE_KEY).encrypt(phone.encode()).decode()


def decrypt_phone(token: str) -> str:
    """The phone number a stored value holds. Raises UnreadableSecret if the secret key changed."""
    return _decrypt(token, _PHONE_KEY)


def encrypt_session_key(session_key: str) -> str:
    """WeChat's session key encrypted for storage."""
    return _fernet(_SESSION_KEY).encrypt(session_key.encode()).decode()


def decrypt_session_key(token: str) -> str:
    """The session key a stored value holds. Raises UnreadableSecret if the secret key changed."""
    return _decrypt(token, _SESSION_KEY)
