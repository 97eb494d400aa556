"""infra/http_client.py, WeChat Pay's transport, against small asyncio servers that answer as told: kept-alive
connections reused, chunked answers, a server closing a kept-alive connection just as the next request goes out
(sent again on a new connection), and failures (refused, silent, not HTTP, closed mid-answer) as HTTPClientError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from infra.http_client import HTTPClient, HTTPClientError, proxied

Answerer = Callable[
    [bytes, int], bytes | None
]  # (request body, request number on this connection) -> raw answer


def _ok(body: bytes, *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n%sContent-Length: %d\r\n\r\n%s" % (
        connection,
        len(body),
        body,
    )


class Server:
    def __init__(self, answer: Answerer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                served += 1
                raw = self.answer(body, served)
                if raw is None:  # close without answering
                    break
                writer.write(raw)
                await writer.drain()
                if b"Connection: close" in raw:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(answer: Answerer) -> AsyncIterator[Server]:
    server = Server(answer)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def test_answers_come_back_over_one_kept_alive_connection() -> None:
    client = HTTPClient()
    async with serving(lambda body, n: _ok(b"<xml>" + body + b"</xml>")) as server:
        url = f"http://127.0.0.1:{server.port}/pay/unifiedorder"
        answers = [await client.post(url, f"n{i}".encode(), seconds=5) for i in range(3)]
        assert [(a.status, a.body) for a in answers] == [(200, f"<xml>n{i}</xml>".encode()) for i in range(3)]
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /pay/unifiedorder HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in first
        assert b"Content-Length: 2\r\n" in first and first.endswith(b"\r\n\r\nn0")
    await client.aclose()


async def test_a_chunked_answer_and_an_error_status_are_read_whole() -> None:
    chunked = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<x>\r\n4\r\n</x>\r\n0\r\n\r\n"
    client = HTTPClient()
    async with serving(lambda body, n: chunked) as server:
        answer = await client.post(f"http://127.0.0.1:{server.port}/x", b"", seconds=5)
    assert (answer.status, answer.body) == (500, b"<x></x>")
    await client.aclose()


async def test_connection_close_is_honoured() -> None:
    client = HTTPClient()
    async with serving(lambda body, n: _ok(b"bye", close=True)) as server:
        url = f"http://127.0.0.1:{server.port}/x"
        assert (await client.post(url, b"a", seconds=5)).body == b"bye"
        assert (await client.post(url, b"b", seconds=5)).body == b"bye"
        assert server.connections == 2
    await client.aclose()


async def test_a_kept_alive_connection_closed_by_the_server_is_sent_again_on_a_new_one() -> None:
    # The server reads the second request on the first connection and closes it without a word, as a server
    # closing an idle connection does when the request crosses its close on the wire.
    client = HTTPClient()
    async with serving(lambda body, n: _ok(body) if n == 1 else None) as server:
        url = f"http://127.0.0.1:{server.port}/x"
        assert (await client.post(url, b"one", seconds=5)).body == b"one"
        assert (await client.post(url, b"two", seconds=5)).body == b"two"
        assert server.connections == 2
        assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in server.requests] == [b"one", b"two", b"two"]
    await client.aclose()


async def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_retry() -> None:
    client = HTTPClient()
    async with serving(lambda body, n: None) as server:
        with pytest.raises(HTTPClientError):
            await client.post(f"http://127.0.0.1:{server.port}/x", b"z", seconds=5)
        assert len(server.requests) == 1
    await client.aclose()


async def test_an_answer_cut_short_is_an_error() -> None:
    client = HTTPClient()
    async with serving(
        lambda body, n: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"
    ) as s:
        with pytest.raises(HTTPClientError):
            await client.post(f"http://127.0.0.1:{s.port}/x", b"z", seconds=5)
    await client.aclose()


async def test_refused_silent_and_not_http_are_errors() -> None:
    client = HTTPClient()
    async with serving(lambda body, n: b"") as silent:
        port = silent.port
        with pytest.raises(HTTPClientError, match="no answer within"):
            await client.post(f"http://127.0.0.1:{port}/x", b"z", seconds=0.3)
    async with serving(lambda body, n: b"SSH-2.0-OpenSSH\r\n\r\n") as garbage:
        with pytest.raises(HTTPClientError):
            await client.post(f"http://127.0.0.1:{garbage.port}/x", b"z", seconds=5)
    with pytest.raises(HTTPClientError, match="could not connect"):
        await client.post(f"http://127.0.0.1:{port}/x", b"z", seconds=5)
    await client.aclose()


def test_a_proxy_in_the_environment_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    proxied.cache_clear()
    assert not proxied("https://api.mch.weixin.qq.com/")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    proxied.cache_clear()
    assert proxied("https://api.mch.weixin.qq.com/")
    assert not proxied("https://127.0.0.1:9000/")
    proxied.cache_clear()
