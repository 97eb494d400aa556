"""Member sessions: access tokens verify without the database, refresh rotates, revocation is immediate."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
import jwt
import pytest

from infra.clock import now, set_clock
from models import Member
from services.errors import DomainError, ErrorCode
from services.members import tokens
from services.members.tokens import ACCESS_TTL, issue_tokens, refresh_tokens, revoke_session
from services.members.viewer import resolve_viewer


async def _member() -> Member:
    return await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(4).upper())


async def test_an_access_token_names_its_member(database: None, redis: object) -> None:
    member = await _member()
    pair = await issue_tokens(member)
    viewer = await resolve_viewer(f"Bearer {pair.access_token}")
    assert viewer.member is not None and viewer.member.id == member.id
    assert viewer.cache_scope in {"member"} or viewer.cache_scope.startswith("level:")  # type: ignore[union-attr]
    assert pair.expires_in == int(ACCESS_TTL.total_seconds())


async def test_forged_and_expired_tokens_are_unauthenticated(database: None, redis: object) -> None:
    member = await _member()
    pair = await issue_tokens(member)
    forged = jwt.encode(
        {"sub": str(member.id), "sid": 1, "aud": "lianmall:member", "exp": 9999999999}, "guess", "HS256"
    )
    for token in (forged, pair.access_token[:-2] + "xx"):
        with pytest.raises(DomainError) as failure:
            await resolve_viewer(f"Bearer {token}")
        assert failure.value.code is ErrorCode.UNAUTHENTICATED
    past = now() - ACCESS_TTL - timedelta(minutes=1)
    set_clock(lambda: past)
    try:
        stale = await issue_tokens(member)
    finally:
        set_clock(None)
    with pytest.raises(DomainError) as failure:
        await resolve_viewer(f"Bearer {stale.access_token}")
    assert "expired" in failure.value.message


async def test_a_remembered_token_still_expires(
    database: None, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = await issue_tokens(await _member())
    viewer = await resolve_viewer(f"Bearer {pair.access_token}")  # verified, and remembered
    assert viewer.member is not None
    claims = tokens.decode_access_token(pair.access_token)
    monkeypatch.setattr(tokens, "_wall_clock", lambda: claims.expires_at)
    with pytest.raises(DomainError) as failure:
        await resolve_viewer(f"Bearer {pair.access_token}")
    assert "expired" in failure.value.message


async def test_refresh_rotates_and_an_old_refresh_token_fails(database: None, redis: object) -> None:
    pair = await issue_tokens(await _member())
    second = await refresh_tokens(pair.refresh_token)
    assert second.refresh_token != pair.refresh_token
    assert (await resolve_viewer(f"Bearer {second.access_token}")).member is not None
    with pytest.raises(DomainError):
        await refresh_tokens(pair.refresh_token)


async def test_revocation_ends_access_and_refresh_at_once(
    database: None, redis: object, client: httpx.AsyncClient
) -> None:
    member = await _member()
    pair = await issue_tokens(member)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    await revoke_session(int(claims["sid"]))
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {pair.access_token}"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    with pytest.raises(DomainError):
        await refresh_tokens(pair.refresh_token)
