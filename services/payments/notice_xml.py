"""The shape of a WeChat Pay notification body, checked before wechatpy parses it.

WeChat Pay posts one flat element, `<xml><name>value</name>…</xml>`, without a DTD, attributes or nesting.
wechatpy hands the body to xmltodict and then treats the result as that flat dict: `<xml/>`, `<xml>t</xml>`,
repeated or nested fields crash it in places that raise no exception it documents. So the body is read here
first, with defusedxml (no DTD, no entity declarations, no external references: no billion laughs and no file
or network reads) and streamed so that nesting is refused at the first element too deep, not after a
thousand-level tree was built. Only a body of the right shape reaches wechatpy.
"""

from __future__ import annotations

import io
import re
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

# WeChat's notifications carry about 20 fields (a refund's `req_info` is ~1 KB of base64); room to spare.
MAX_FIELDS = 100
MAX_VALUE_LENGTH = 8192
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class UnreadableNotice(ValueError):
    """The body is not a WeChat Pay notification; the message says why (for the notice's record)."""


def read_notice(body: bytes) -> dict[str, str]:
    """The fields of a WeChat Pay notification body; raises UnreadableNotice for anything of another shape."""
    if not body.strip():
        raise UnreadableNotice("empty body")
    fields: dict[str, str] = {}
    depth = 0
    try:
        for event, element in iterparse(io.BytesIO(body), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                if depth == 1 and element.tag != "xml":
                    raise UnreadableNotice("the root element is not <xml>")
                if depth > 2:
                    raise UnreadableNotice("nested elements")
                if element.attrib:
                    raise UnreadableNotice("attributes")
                continue
            depth -= 1
            if depth == 1:
                _add_field(fields, element.tag, element.text or "")
            elif (element.text or "").strip() or any((child.tail or "").strip() for child in element):
                raise UnreadableNotice("text outside the fields")
    except DefusedXmlException as exc:
        raise UnreadableNotice(f"forbidden XML: {type(exc).__name__}") from None
    except ParseError as exc:
        raise UnreadableNotice(f"not XML: {exc}"[:120]) from None
    except (ValueError, LookupError) as exc:  # expat refuses multi-byte and unknown encodings this way
        if isinstance(exc, UnreadableNotice):
            raise
        raise UnreadableNotice(f"unreadable encoding: {exc}"[:120]) from None
    if not fields:
        raise UnreadableNotice("no fields")
    return fields


def _add_field(fields: dict[str, str], name: str, value: str) -> None:
    if not _FIELD_NAME.fullmatch(name):
        raise UnreadableNotice("a field name that is not WeChat's")
    if name in fields:
        raise UnreadableNotice(f"the field {name} twice")
    if len(fields) >= MAX_FIELDS:
        raise UnreadableNotice("too many fields")
    if len(value) > MAX_VALUE_LENGTH:
        raise UnreadableNotice(f"the field {name} is too long")
    fields[name] = value
