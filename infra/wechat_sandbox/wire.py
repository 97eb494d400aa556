"""WeChat Pay API v2 on the wire: XML bodies, MD5 signatures and the encrypted `req_info` of refund
notifications. Written from WeChat Pay's documentation, independently of wechatpy, so that wechatpy (our
client) and this code check each other. Used by the sandbox and by the tests' WeChat Pay stand-in."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import xmltodict
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def sign(params: dict[str, Any], key: str) -> str:
    """WeChat Pay v2 MD5 signature: non-empty params sorted by name, `k=v&...&key=KEY`, MD5, upper case."""
    pairs = [f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] not in (None, "")]
    pairs.append(f"key={key}")
    return hashlib.md5("&".join(pairs).encode()).hexdigest().upper()


def to_xml(params: dict[str, Any]) -> bytes:
    parts = ["<xml>"]
    for k, v in params.items():
        text = str(v)
        parts.append(f"<{k}>{text}</{k}>" if text.isdigit() else f"<{k}><![CDATA[{text}]]></{k}>")
    parts.append("</xml>")
    return "".join(parts).encode()


def signed_xml(params: dict[str, Any], key: str) -> bytes:
    return to_xml({**params, "sign": sign(params, key)})


def from_xml(body: bytes) -> dict[str, Any] | None:
    """The fields of a WeChat Pay XML body, or None when it is not one."""
    try:
        parsed = xmltodict.parse(body)
    except Exception:
        return None
    fields = parsed.get("xml") if isinstance(parsed, dict) else None
    return dict(fields) if isinstance(fields, dict) else None


def encrypt_req_info(plain: str, api_key: str) -> str:
    """`req_info` of a refund notification: AES-256-ECB, key = md5(API key) as lower-case hex, PKCS#7."""
    key = hashlib.md5(api_key.encode()).hexdigest().encode()
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


def refund_notification_xml(appid: str, mch_id: str, api_key: str, info: dict[str, Any], nonce: str) -> bytes:
    """A refund notification as WeChat Pay posts it: the refund's `info` encrypted in `req_info`."""
    plain = "<root>" + to_xml(info).decode()[len("<xml>") : -len("</xml>")] + "</root>"
    return to_xml(
        {
            "return_code": "SUCCESS",
            "appid": appid,
            "mch_id": mch_id,
            "nonce_str": nonce,
            "req_info": encrypt_req_info(plain, api_key),
        }
    )
