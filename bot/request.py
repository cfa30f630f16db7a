"""A `telegram.request.BaseRequest` of our own: PTB's default httpx backend costs several times more
CPU per request and its cost grows with concurrency (see docs/performance.md).

What PTB expects of a backend, and how each part is met here:

* bodies: plain calls go as one JSON document (smaller and cheaper than httpx's form encoding) on
  `bot.httpclient`, a lean kept-alive HTTP/1.1 client (a quarter of aiohttp's CPU per call);
  calls that upload files go through aiohttp as multipart/form-data, each parameter a form field.
* timeouts (defaults from the constructor, per-call overrides from PTB, incl. getUpdates' long-poll
  read timeout): ``pool`` bounds the wait for a free connection (our own semaphore, so it can be
  told apart), ``connect`` the TCP connect, ``read`` every wait for response bytes, and ``write``
  the whole exchange together with connect and read (neither client has a separate write phase;
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

from bot.httpclient import HTTPClient
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
        "_http",
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
        self._http: HTTPClient | None = None
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
        self._http = HTTPClient(self.USER_AGENT)
        # The semaphore is the pool limit; the connector's own limit only backs it up.
        connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._default_timeout, auto_decompress=True
        )
        self._pool = asyncio.Semaphore(self._pool_size)

    async def shutdown(self) -> None:
        """Close every connection; safe to call twice."""
        session, self._session = self._session, None
        http, self._http = self._http, None
        if http is not None:
            http.close()
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
        if request_data is None or not request_data.contains_files:
            parameters = request_data.parameters if request_data is not None else None
            body = (
                json.dumps(parameters, ensure_ascii=False, separators=(",", ":")).encode()
                if parameters
                else b""
            )
            return await self.send_json(
                url, method, body, read_timeout, write_timeout, connect_timeout, pool_timeout
            )
        session, pool = self._session, self._pool
        if session is None or pool is None:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        timeout = self._timeout(True, read_timeout, write_timeout, connect_timeout)
        await self._acquire(pool, pool_timeout)
        try:
            async with session.request(
                method, url, data=_multipart(request_data), headers=self._headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"{_name(exc)}: {exc}") from exc
        finally:
            pool.release()

    async def post_json(self, url: str, body: bytes) -> Any:
        """`post` for a body the caller encoded itself (`bot.fastcalls`): Telegram's reply and
        errors are handled by PTB's `BaseRequest.post`, as for every other call."""
        return await _PreparedCall(self, body).post(url)

    async def send_json(
        self,
        url: str,
        method: str,
        body: bytes,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One exchange on `bot.httpclient` (an empty body: a call without parameters)."""
        http, pool = self._http, self._pool
        if http is None or pool is None:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        timeout = self._timeout(False, read_timeout, write_timeout, connect_timeout)
        await self._acquire(pool, pool_timeout)
        try:
            return await http.request(
                method,
                url,
                body,
                "application/json" if body else None,
                connect=timeout.sock_connect,
                read=timeout.sock_read,
                total=timeout.total,
            )
        except TimeoutError as exc:
            raise TimedOut from exc
        except OSError as exc:  # refused, reset, not HTTP (bot.httpclient.ProtocolError)…
            # The class name says what failed even when the message is empty.
            raise NetworkError(f"{_name(exc)}: {exc}") from exc
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


class _PreparedCall(BaseRequest):
    """One call with its JSON body already encoded, sent on `via`'s connections (see post_json).

    Its caller does not read Telegram's reply, so a success is not decoded (the reply to an edit
    is the whole edited message); a failure is, as PTB reads every failure.
    """

    __slots__ = ("_body", "_succeeded", "_via")

    def __init__(self, via: AiohttpRequest, body: bytes) -> None:
        self._via = via
        self._body = body
        self._succeeded = False

    @property
    def read_timeout(self) -> float | None:
        return self._via.read_timeout

    async def initialize(self) -> None:
        """`via` is initialized."""

    async def shutdown(self) -> None:
        """`via` is shut down with the bot."""

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
        status, payload = await self._via.send_json(
            url, method, self._body, read_timeout, write_timeout, connect_timeout, pool_timeout
        )
        self._succeeded = 200 <= status <= 299
        return status, payload

    def parse_json_payload(self, payload: bytes) -> dict[str, Any]:  # type: ignore[override]
        """PTB's own parse for a failure (its description, retry_after…); nothing for a success."""
        if self._succeeded:
            return _UNREAD_SUCCESS
        return BaseRequest.parse_json_payload(payload)


# What a success reply to a prepared call reads as: its result is not needed (bot.fastcalls).
_UNREAD_SUCCESS: dict[str, Any] = {"ok": True, "result": True}


def _name(exc: BaseException) -> str:
    """aiohttp.ClientConnectorError, ConnectionRefusedError, bot.httpclient.ProtocolError…"""
    module = type(exc).__module__
    if module.startswith("aiohttp"):
        module = "aiohttp"
    return type(exc).__qualname__ if module == "builtins" else f"{module}.{type(exc).__qualname__}"


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
