"""Relay global IDs: "Type:pk" in base64, decoded with the expected type checked."""

from __future__ import annotations

import strawberry
from strawberry.relay.utils import from_base64, to_base64

from services.errors import DomainError, ErrorCode


@strawberry.interface(description="An object with a global ID, fetchable through `node(id:)`.")
class Node:
    id: strawberry.ID


def encode_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(to_base64(type_name, pk))


def decode_any(global_id: str, field: str = "id") -> tuple[str, int]:
    try:
        type_name, raw = from_base64(global_id)
        return type_name, int(raw)
    except Exception:
        raise DomainError(ErrorCode.INVALID_ID, f"'{global_id[:64]}' is not a valid ID", field) from None


def decode_id(global_id: str, expected: str, field: str = "id") -> int:
    type_name, pk = decode_any(global_id, field)
    if type_name != expected:
        raise DomainError(ErrorCode.INVALID_ID, f"Expected a {expected} ID, got a {type_name} ID", field)
    return pk
