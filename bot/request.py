"""A `telegram.request.BaseRequest` on aiohttp: PTB's default httpx backend costs several times more
CPU per request and its cost grows with concurrency (see docs/performance.md).

What PTB expects of a backend, and how each part is met here:

* bodies: plain calls go as one JSON document (smaller and cheaper than httpx's form encoding);
  calls that upload files go as multipart/form-data, each parameter a form field.
* timeouts (defaults from the constructor, per-call overrides from PTB, incl. getUpdates' long-poll
  read timeout): ``pool`` bounds the wait for a free connection (our own semaphore, so it can be
  told apart), ``connect`` the TCP connect, ``read`` every wait for response bytes, and ``write``
  the whole exchange together with connect and read (aiohttp exposes no separate write phase;
  uploads get ``media_write_timeout`` instead).
* errors: any timeout raises `telegram.error.TimedOut`, any other transport failure
  `telegram.error.NetworkError`, as with httpx; HTTP status handling stays in PTB.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bot.workarounds import DefaultValue, ODVInput

__all__ = ["AiohttpRequest", "build_requests"]

POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent "
    "to Telegram. Consider adjusting the connection pool size or the pool timeout."
)


class AiohttpRequest(BaseRequest):
    """PTB's HTTP backend on one aiohttp session; create one for the bot and one for getUpdates.

    The arguments and their defaults are those of `telegram.request.HTTPXRequest`, so switching
    backends changes nothing else.
    """

    __slots__ = (
        "_connect_timeout",
        "_default_timeout",
        "_headers",
        "_json_headers",
        "_media_write_timeout",
        "_pool",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._default_timeout = _client_timeout(connect_timeout, write_timeout, read_timeout)
        self._headers = {"User-Agent": self.USER_AGENT}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None
        # Created in initialize(): an asyncio primitive belongs to the loop that uses it.
        self._pool: asyncio.Semaphore | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (again, after a shutdown) in the running event loop."""
        if self._session is not None and not self._session.closed:
            return
        # The semaphore is the pool limit; the connector's own limit only backs it up.
        connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._default_timeout, auto_decompress=True
        )
        self._pool = asyncio.Semaphore(self._pool_size)

    async def shutdown(self) -> None:
        """Close every connection; safe to call twice."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session, pool = self._session, self._pool
        if session is None or pool is None:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        timeout = self._timeout(files, read_timeout, write_timeout, connect_timeout)
        body: Any = None
        headers = self._headers
        if files:
            assert request_data is not None
            body = _multipart(request_data)
        elif request_data is not None and (parameters := request_data.parameters):
            body = json.dumps(parameters, ensure_ascii=False, separators=(",", ":")).encode()
            headers = self._json_headers

        await self._acquire(pool, pool_timeout)
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # The class name says what failed even when the message is empty.
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
        finally:
            pool.release()

    async def _acquire(self, pool: asyncio.Semaphore, pool_timeout: ODVInput[float]) -> None:
        if not pool.locked():  # the common case: no timer to arm
            await pool.acquire()
            return
        limit = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        try:
            async with asyncio.timeout(limit):
                await pool.acquire()
        except TimeoutError:
            raise TimedOut(POOL_TIMEOUT_MESSAGE) from None

    def _timeout(
        self,
        files: bool,
        read: ODVInput[float],
        write: ODVInput[float],
        connect: ODVInput[float],
    ) -> aiohttp.ClientTimeout:
        """The default timeout object unless the call overrides something (most calls do not)."""
        if (
            not files
            and isinstance(read, DefaultValue)
            and isinstance(write, DefaultValue)
            and isinstance(connect, DefaultValue)
        ):
            return self._default_timeout
        if isinstance(write, DefaultValue):
            write = self._media_write_timeout if files else self._write_timeout
        return _client_timeout(
            self._connect_timeout if isinstance(connect, DefaultValue) else connect,
            write,
            self._read_timeout if isinstance(read, DefaultValue) else read,
        )


def _client_timeout(
    connect: float | None, write: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    """PTB's connect/write/read in aiohttp's terms; the pool wait is handled separately."""
    total = None if None in (connect, write, read) else (connect or 0) + (write or 0) + (read or 0)
    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    """Parameters as form fields (JSON-encoded where not plain strings) plus the file parts."""
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form


def build_requests(backend: str) -> tuple[BaseRequest, BaseRequest]:
    """The backends for the bot's calls and for getUpdates (HTTP_BACKEND), sized as PTB sizes them:
    many connections for calls, one for the long poll.
    """
    if backend == "httpx":
        return HTTPXRequest(connection_pool_size=256), HTTPXRequest(connection_pool_size=1)
    return AiohttpRequest(connection_pool_size=256), AiohttpRequest(connection_pool_size=1)
