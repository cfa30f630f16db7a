"""bot.httpclient against a real TCP server on 127.0.0.1 that answers exactly the bytes a test
scripts: the response framings a Bot API server (or a proxy in front of it) may use, kept-alive
connections, and timeouts. The client as the bot uses it is tested in tests/test_request.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import uvloop

from bot.httpclient import HTTPClient, ProtocolError

Reply = Callable[[bytes], list[bytes] | None]  # a request's bytes → the chunks to answer with


class ScriptedServer:
    """Answers each request with what `reply` returns (None: say nothing); counts connections."""

    def __init__(self, reply: Reply, *, close_after: bool = False) -> None:
        self.reply = reply
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.received = asyncio.Event()  # a request has arrived
        self.hung_up = asyncio.Event()  # the server has closed a connection
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/bot1:x/getMe"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                self.received.set()
                chunks = self.reply(request)
                if chunks is None:
                    await asyncio.sleep(3600)
                for chunk in chunks or ():
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0.01)  # each chunk its own segment
                if self.close_after:
                    writer.close()
                    await writer.wait_closed()
                    self.hung_up.set()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return


def ok(body: bytes, *extra: bytes) -> list[bytes]:
    return [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), b"".join(extra), body)
    ]


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    http = HTTPClient("test-agent")
    yield http
    http.close()


async def call(
    client: HTTPClient, url: str, body: bytes = b"{}", **timeouts: float | None
) -> tuple[int, bytes]:
    limits: dict[str, float | None] = {"connect": 1.0, "read": 1.0, "total": 3.0, **timeouts}
    return await client.request("POST", url, body, "application/json", **limits)


async def test_a_request_carries_its_body_and_headers_and_the_connection_is_kept(
    client: HTTPClient,
) -> None:
    async with ScriptedServer(lambda request: ok(b'{"ok":true}')) as server:
        body = '{"text":"আয়ের পথ"}'.encode()
        assert await call(client, server.url, body) == (200, b'{"ok":true}')
        assert await call(client, server.url, body) == (200, b'{"ok":true}')
    assert server.connections == 1
    head, _, sent = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /bot1:x/getMe HTTP/1.1\r\n") and sent == body
    assert b"\r\nContent-Type: application/json" in head and b"\r\nUser-Agent: test-agent" in head
    assert f"\r\nContent-Length: {len(body)}".encode() in head


async def test_a_body_split_over_many_segments_and_chunked_bodies_are_read_whole(
    client: HTTPClient,
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
    async with ScriptedServer(lambda r: [head[:7], head[7:], b'{"ok"', b":true}"]) as server:
        assert await call(client, server.url) == (200, b'{"ok":true}')
    chunked = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b'5;ext=1\r\n{"ok"\r\n',
        b"6\r\n:true}\r\n0\r\n",
        b"X-Trailer: 1\r\n\r\n",
    ]
    async with ScriptedServer(lambda r: chunked) as server:
        assert await call(client, server.url) == (200, b'{"ok":true}')
        assert await call(client, server.url) == (200, b'{"ok":true}')
    assert server.connections == 1


async def test_interim_responses_are_skipped_and_errors_keep_their_status(
    client: HTTPClient,
) -> None:
    reply = [b"HTTP/1.1 100 Continue\r\n\r\n", *ok(b'{"ok":false}')]
    reply[1] = reply[1].replace(b"200 OK", b"429 Too Many Requests")
    async with ScriptedServer(lambda r: reply) as server:
        assert await call(client, server.url) == (429, b'{"ok":false}')


async def test_connection_close_and_bodies_ending_with_the_connection(client: HTTPClient) -> None:
    async with ScriptedServer(
        lambda r: ok(b"1", b"Connection: close\r\n"), close_after=True
    ) as server:
        assert await call(client, server.url) == (200, b"1")
        assert await call(client, server.url) == (200, b"1")
    assert server.connections == 2
    old = [b"HTTP/1.0 200 OK\r\n\r\n", b"until ", b"the end"]
    async with ScriptedServer(lambda r: old, close_after=True) as server:
        assert await call(client, server.url) == (200, b"until the end")
        assert await call(client, server.url) == (200, b"until the end")
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(client: HTTPClient) -> None:
    async with ScriptedServer(lambda r: ok(b"1"), close_after=True) as server:
        assert await call(client, server.url) == (200, b"1")  # the server then hangs up
        await server.hung_up.wait()
        for _ in range(3):  # the loop reads the FIN, then calls connection_lost
            await asyncio.sleep(0)
        assert await call(client, server.url) == (200, b"1")
    assert server.connections == 2


async def test_a_connection_idle_too_long_is_not_reused() -> None:
    """Servers close idle connections; one idle past `keep_idle` is closed, not written to."""
    http = HTTPClient("test-agent", keep_idle=0.0)
    try:
        async with ScriptedServer(lambda r: ok(b"1")) as server:
            assert await call(http, server.url) == (200, b"1")
            assert await call(http, server.url) == (200, b"1")
        assert server.connections == 2
    finally:
        http.close()


async def test_silence_past_the_read_timeout_and_the_total_bound(client: HTTPClient) -> None:
    async with ScriptedServer(lambda r: None) as server:
        with pytest.raises(TimeoutError):
            await call(client, server.url, read=0.1)
    trickle = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"] + [b"x"] * 30  # 10 ms apart

    def first_slow(request: bytes) -> list[bytes]:
        return trickle if len(server.requests) == 1 else ok(b"1")

    async with ScriptedServer(first_slow) as server:
        with pytest.raises(TimeoutError):  # never silent for 0.1 s, but not done in 0.2 s
            await call(client, server.url, read=0.1, total=0.2)
        assert await call(client, server.url) == (200, b"1")
    assert server.connections == 2  # a timed-out connection is never reused


async def test_what_is_not_http_and_refused_connections_are_errors(client: HTTPClient) -> None:
    async with ScriptedServer(lambda r: [b"SSH-2.0-OpenSSH\r\n\r\n"]) as server:
        with pytest.raises(ProtocolError, match="not an HTTP"):
            await call(client, server.url)
    cut = [b"HTTP/1.1 200 OK\r\nConnection: close\r\n"]
    async with ScriptedServer(lambda r: cut, close_after=True) as server:
        url = server.url
        with pytest.raises(ConnectionError):  # hung up in the middle of the head
            await call(client, url, read=2)
    with pytest.raises(ConnectionRefusedError):
        await call(client, url)


async def test_close_drops_connections_in_use(client: HTTPClient) -> None:
    async with ScriptedServer(lambda r: None) as server:
        pending = asyncio.create_task(call(client, server.url, read=None, total=None))
        await server.received.wait()
        client.close()
        with pytest.raises(ConnectionError):
            await pending


def test_the_same_on_uvloop_as_ayerpoth_run_uses_it() -> None:
    async def scenarios() -> None:
        http = HTTPClient("test-agent")
        try:
            await test_a_request_carries_its_body_and_headers_and_the_connection_is_kept(http)
            await test_a_body_split_over_many_segments_and_chunked_bodies_are_read_whole(http)
            await test_connection_close_and_bodies_ending_with_the_connection(http)
            await test_silence_past_the_read_timeout_and_the_total_bound(http)
            await test_what_is_not_http_and_refused_connections_are_errors(http)
        finally:
            http.close()

    uvloop.run(scenarios())
