"""No secret reaches the logs: not in a logged query, not in an error's message, not in a traceback."""

from __future__ import annotations

import logging
import secrets

import httpx
import pytest

from infra.log_redaction import REDACTED, TOKEN_PREFIXES, install_log_redaction, redact
from services.access.api_keys import KEY_PREFIX
from services.access.staff import TOKEN_PREFIX as STAFF_PREFIX
from services.members import login
from services.members.tokens import REFRESH_PREFIX


def test_token_shapes_are_the_ones_we_issue() -> None:
    assert set(TOKEN_PREFIXES) == {REFRESH_PREFIX, STAFF_PREFIX, KEY_PREFIX}


@pytest.mark.parametrize(
    ("line", "secret", "kept"),
    [
        (
            'mutation { refreshToken(token: "rt_Zm9vYmFyYmF6cXV4") { accessToken } }',
            "Zm9vYmFyYmF6cXV4",
            "refreshToken(",
        ),
        (
            'mutation { loginWithWechat(code: "0c3Xq1Ga1kT0aH0Qv5Ia1") { accessToken } }',
            "0c3Xq1Ga1kT0aH0Qv5Ia1",
            "loginWithWechat(",
        ),
        ('{"refreshToken": "rt_abcdefghijkl", "expiresIn": 7200}', "abcdefghijkl", '"expiresIn": 7200'),
        ("{'password': 'hunter2', 'name': 'ops'}", "hunter2", "'name': 'ops'"),
        (
            "GET https://api.weixin.qq.com/sns/jscode2session?appid=wx123&secret=s3cr3tv4lue&js_code=0c3Xq1Ga&grant_type=x",
            "s3cr3tv4lue",
            "appid=wx123",
        ),
        (
            "url .../jscode2session?appid=wx1&secret=a&js_code=0c3Xq1GaCODE&grant_type=x",
            "0c3Xq1GaCODE",
            "grant_type=x",
        ),
        (
            "<xml><appid>wx1</appid><sign><![CDATA[9A0A8659F005D6984697E2CA0A9CF3B7]]></sign></xml>",
            "9A0A8659F005",
            "<appid>wx1</appid>",
        ),
        ("Authorization: Bearer stf_Q2hhbmdlTWU", "Q2hhbmdlTWU", "Authorization"),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWhlcmU expired",
            "c2lnbmF0dXJlLWhlcmU",
            "expired",
        ),
        ("partner pk_live_4eC39HqLyjWDarjtT1 synced", "4eC39HqLyjWDarjtT1", "synced"),
        ("could not connect to postgres://shop:hunter2@db:5432/shop", "hunter2", "postgres://shop:"),
        (
            '{"session_key": "tiihtNczf5v6AKRyjwEUhQ==", "openid": "o_1"}',
            "tiihtNczf5v6AKRyjwEUhQ",
            '"openid": "o_1"',
        ),
    ],
)
def test_secrets_are_redacted_and_the_rest_stays(line: str, secret: str, kept: str) -> None:
    redacted = redact(line)
    assert secret not in redacted and REDACTED in redacted, redacted
    assert kept in redacted, redacted


@pytest.mark.parametrize(
    "line",
    [
        'error {"code": "BAD_USER_INPUT", "field": "quantity"}',
        "uvicorn answered status code=503",
        "refreshToken(token: $token) { accessToken }",  # a variable reference carries no value
        "cache key p:42 dropped",
    ],
)
def test_what_is_not_secret_is_left_alone(line: str) -> None:
    assert redact(line) == line


async def test_a_failing_operation_is_logged_without_the_secrets_it_carried(
    client: httpx.AsyncClient,
    database: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()  # the app does it in create_app(); idempotent
    refresh = f"{REFRESH_PREFIX}{secrets.token_urlsafe(24)}"
    code = secrets.token_hex(16)

    async def driver_failure(*_args: object, **_kwargs: object) -> object:
        # An unexpected failure whose message carries a DSN, as some drivers' do.
        raise RuntimeError("Connect call failed: postgres://lianmall:pg-hunter2@db:5432/shop")

    monkeypatch.setattr(login, "refresh_session", driver_failure)
    monkeypatch.setattr(login, "login_with_wechat", driver_failure)
    with caplog.at_level(logging.INFO):
        for query in (
            f'mutation {{ refreshToken(token: "{refresh}") {{ accessToken errors {{ code }} }} }}',
            f'mutation {{\n  loginWithWechat(code: "{code}") {{ accessToken errors {{ code }} }}\n}}',
        ):
            response = await client.post("/graphql", json={"query": query})
            assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"

    logged = "\n".join(
        f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records if r.name.startswith("strawberry")
    )
    # strawberry did log both failures, with the query lines around them and the traceback...
    assert "refreshToken" in logged and "loginWithWechat" in logged and "RuntimeError" in logged
    # ...and none of the secrets they carried.
    for secret in (refresh, refresh.removeprefix(REFRESH_PREFIX), code, "pg-hunter2"):
        assert secret not in caplog.text and secret not in logged
    assert REDACTED in logged

    # An unreachable database is no bug: SERVICE_UNAVAILABLE, one warning line, no secrets either.
    async def database_down(*_args: object, **_kwargs: object) -> object:
        raise ConnectionRefusedError(111, "Connect call failed: postgres://lianmall:pg-hunter2@db:5432/shop")

    monkeypatch.setattr(login, "refresh_session", database_down)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        query = f'mutation {{ refreshToken(token: "{refresh}") {{ accessToken errors {{ code }} }} }}'
        response = await client.post("/graphql", json={"query": query})
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "ConnectionRefusedError" in caplog.text and "pg-hunter2" not in caplog.text
    assert refresh not in caplog.text


def test_records_keep_the_arguments_formatters_read(caplog: pytest.LogCaptureFixture) -> None:
    from uvicorn.logging import AccessFormatter

    install_log_redaction()
    token = f"{REFRESH_PREFIX}{secrets.token_urlsafe(16)}"
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", f"/graphql?refresh={token}", "1.1", 200
        )
    record = caplog.records[-1]
    # uvicorn's access formatter unpacks the five arguments: they must still be there, without the token.
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    line = formatter.format(record)
    assert "10.0.0.1:5000" in line and "GET /graphql?refresh=" in line and "200" in line
    assert token not in line and REDACTED in line

    # A secret that only the format string and an argument make together is caught too.
    logging.getLogger("lianmall.test").warning("retrying with password=%s", "hunter2-x")
    assert "hunter2-x" not in caplog.records[-1].getMessage()
