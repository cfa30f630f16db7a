"""A lean HTTP/1.1 client for the Bot API's JSON calls: kept-alive connections on asyncio
protocols, one timer per request, nothing parsed that the caller does not read.

Why not aiohttp's client for these: per request it builds a ClientRequest and ClientResponse, a
URL, header multidicts, a task to write the body and several timers, and that cost ~195 µs of CPU
against ~50 µs here (the same JSON call to a local server, 100 at once, uvloop; aiohttp 3.14 with
its C extensions). A menu tap makes two such calls (docs/performance.md). Uploads (multipart) still
go through aiohttp (`bot.request`): they are rare, and their encoding is aiohttp's strength.

What it does, and all it does: POST/GET with a byte body to http(s)://host[:port]/path; responses
with Content-Length, chunked, or read until the server closes; a connection is reused unless
either side said `Connection: close` or it has been idle for KEEP_IDLE seconds (as aiohttp's
client: a server closes idle connections after a while, and a request written as it does so is
lost with the connection). Timeouts: `connect` for the TCP (and TLS) connect, `read`
for any silence while a response is awaited (as aiohttp's sock_read), `total` for the whole
exchange. A timeout raises `TimeoutError`, a broken or refused connection `ConnectionError` or
another `OSError`, a response that is not HTTP/1.x `ProtocolError`; the caller maps them.
"""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["HTTPClient", "ProtocolError"]

MAX_HEAD = 64 * 1024  # a Bot API response head is a few hundred bytes
KEEP_IDLE = 15.0  # seconds a connection may wait idle for its next request (aiohttp's default)


class ProtocolError(ConnectionError):
    """The server's reply is not a response this client can read."""


class _Target(NamedTuple):
    tls: bool
    host: str
    port: int
    path: bytes  # with the query
    host_header: bytes


@lru_cache(maxsize=256)
def _target(url: str) -> _Target:
    """The parts of a URL a request needs (a bot calls a few dozen different URLs)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if parts.port is None else f"{shown}:{port}"
    return _Target(tls, host, port, path.encode(), host_header.encode("idna"))


class _Connection(asyncio.Protocol):
    """One kept-alive connection; reads one response at a time (no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self._response: asyncio.Future[tuple[int, bytes]] | None = None
        self._buffer = bytearray()
        self._last_data = 0.0
        self._read: float | None = None
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._length = -1  # -1: until the server closes
        self._chunked = False
        self._chunks: list[bytes] = []
        self._in_body = False

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self._response is None:  # nothing asked: a server does not talk first
            self.abort()
            return
        self._last_data = self._loop.time()
        self._buffer += data
        try:
            self._parse()
        except ProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._response is None or self._response.done():
            return
        if self._in_body and self._length == -1 and not self._chunked:
            self._finish(bytes(self._buffer))  # a body that ends when the connection does
            return
        self._fail(ConnectionResetError(f"the server closed the connection: {exc or 'EOF'}"))

    # --- one exchange -----------------------------------------------------------------------

    async def exchange(
        self, request: bytes, read: float | None, total: float | None
    ) -> tuple[int, bytes]:
        """Send `request` and wait for the whole response."""
        assert self.transport is not None
        response = self._response = self._loop.create_future()
        now = self._loop.time()
        self._last_data = now
        self._read = read
        self._deadline = None if total is None else now + total
        self._arm(now)
        self.transport.write(request)
        try:
            return await response
        except BaseException:
            self.abort()  # whatever was under way on it cannot be told apart from the next reply
            raise
        finally:
            self._response = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _arm(self, now: float) -> None:
        at = self._deadline
        if self._read is not None:
            idle_at = self._last_data + self._read
            at = idle_at if at is None else min(at, idle_at)
        if at is not None:
            self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._response is None or self._response.done():
            return
        now = self._loop.time()
        if (self._deadline is not None and now >= self._deadline) or (
            self._read is not None and now >= self._last_data + self._read
        ):
            self._fail(TimeoutError())
            return
        self._arm(now)  # data came meanwhile: wait for the next silence

    def _fail(self, exc: BaseException) -> None:
        if self._response is not None and not self._response.done():
            self._response.set_exception(exc)
        self.abort()

    def _finish(self, body: bytes) -> None:
        status = self._status
        self._reset()
        if self._buffer:  # bytes after the response: nothing asked for them
            self.reusable = False
        if not self.reusable:
            self.abort()
        if self._response is not None and not self._response.done():
            self._response.set_result((status, body))

    def abort(self) -> None:
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- parsing ----------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        while not self._in_body:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise ProtocolError("response head too long")
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            if not self._head(head):  # 1xx: an interim response, the real one follows
                continue
            self._in_body = True
        if self._chunked:
            self._parse_chunks()
        elif self._length >= 0 and len(buffer) >= self._length:
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
            self._finish(body)

    def _head(self, head: str) -> bool:
        """Read the status line and headers; False for an interim (1xx) response."""
        lines = head.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status_text = rest[:3]
        if not version.startswith("HTTP/1.") or not status_text.isdigit():
            raise ProtocolError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        status = int(status_text)
        if 100 <= status < 200:
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        connection = headers.get("connection", "")
        if version == "HTTP/1.0":
            self.reusable = self.reusable and connection == "keep-alive"
        elif connection == "close":
            self.reusable = False
        self._status = status
        if "chunked" in headers.get("transfer-encoding", ""):
            self._chunked = True
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
            if self._length < 0:
                raise ProtocolError("bad Content-Length")
        elif status in (204, 304):
            self._length = 0
        else:
            self.reusable = False  # the body ends with the connection
        return True

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            if self._length == -2:  # after the last chunk: trailer lines up to an empty one
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finish(b"".join(self._chunks))
                    return
                continue
            if self._length < 0:  # a chunk-size line
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise ProtocolError("chunk size line too long")
                    return
                size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
                del buffer[: end + 2]
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise ProtocolError("bad chunk size") from None
                self._length = -2 if size == 0 else size
                continue
            if len(buffer) < self._length + 2:
                return
            self._chunks.append(bytes(buffer[: self._length]))
            del buffer[: self._length + 2]  # the chunk and its CRLF
            self._length = -1


class HTTPClient:
    """Kept-alive connections per host; at most `limit` at once (the caller bounds the calls)."""

    def __init__(self, user_agent: str, *, keep_idle: float = KEEP_IDLE) -> None:
        self._user_agent = user_agent.encode()
        self._keep_idle = keep_idle
        self._idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        content_type: str | None,
        *,
        connect: float | None,
        read: float | None,
        total: float | None,
    ) -> tuple[int, bytes]:
        """One exchange: (status, body). `total` bounds connect and exchange together."""
        target = _target(url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        connection = self._idle_connection(target, loop.time())
        if connection is None:
            limit = connect if total is None else min(connect or total, total)
            async with asyncio.timeout(limit):
                connection = await self._connect(loop, target)
            if total is not None:
                total = max(0.0, total - (loop.time() - started))
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (
            method.encode(), target.path, target.host_header, self._user_agent,
        )  # fmt: skip
        if content_type is not None:
            head += b"Content-Type: %s\r\n" % content_type.encode()
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        try:
            return await connection.exchange(head + body, read, total)
        finally:
            if connection.closed or not connection.reusable:
                self._open.discard(connection)
            else:
                connection.idle_since = loop.time()
                self._idle.setdefault(target[:3], []).append(connection)

    def _idle_connection(self, target: _Target, now: float) -> _Connection | None:
        """The most recently used idle connection; those idle too long are closed on the way."""
        idle = self._idle.get(target[:3])
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.reusable:
                if now - connection.idle_since < self._keep_idle:
                    return connection
                connection.abort()
            self._open.discard(connection)
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: _Target) -> _Connection:
        tls = None
        if target.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        _, connection = await loop.create_connection(
            lambda: _Connection(loop),
            target.host,
            target.port,
            ssl=tls,
            server_hostname=target.host if tls else None,
        )
        self._open.add(connection)
        return connection

    def close(self) -> None:
        """Drop every connection (a request still under way fails with ConnectionError)."""
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        self._idle.clear()
