"""A small round-robin HTTP balancer in front of several bot workers, for tests and the bench.

It does for the webhook what nginx does in docs/operations.md (`proxy_next_upstream error timeout
http_502 http_503 http_504 non_idempotent`): each POST goes to the next worker in turn; when that
one refuses the connection, drops it, times out or answers 502/503/504, the same request goes to
the next one, so a worker killed mid-request costs its sender nothing but a little time. A worker
that failed is left out for `fail_timeout` seconds, and one whose `GET /healthz` does not answer
200 is left out until it does (a stopping worker says 503 there). Only when every worker failed
does the sender get a 502 (Telegram then sends the update again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

__all__ = ["Balancer", "Upstream"]

#: What nginx's proxy_next_upstream http_502 http_503 http_504 retries.
RETRIED_STATUSES = frozenset({502, 503, 504})
#: Headers passed back to the sender (Retry-After: Telegram honours it on a webhook's answer).
_PASSED_BACK = ("Content-Type", "Retry-After")


@dataclass
class Upstream:
    """One worker: its root URL, whether its health probe passes, and when it may be tried."""

    url: str
    healthy: bool = True
    down_until: float = 0.0
    forwarded: int = 0  # requests it answered

    def up(self, now: float) -> bool:
        return self.healthy and now >= self.down_until


class Balancer:
    """Listens on 127.0.0.1 (a free port unless given) and forwards every request."""

    def __init__(
        self,
        upstreams: Sequence[str],
        *,
        port: int = 0,
        timeout: float = 10.0,
        fail_timeout: float = 2.0,
        health_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstreams = [Upstream(url.rstrip("/")) for url in upstreams]
        self.port = port
        self.timeout = timeout  # more than a worker's WEBHOOK_ANSWER_WITHIN
        self.fail_timeout = fail_timeout
        self.health_interval = health_interval
        self.clock = clock
        self.retried = 0  # requests sent on to another worker after one failed
        self.failed = 0  # requests no worker answered (502 to the sender)
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._probing: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        await self.check_health()
        self._probing = asyncio.create_task(self._probe_forever())

    async def stop(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Balancer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _candidates(self) -> list[Upstream]:
        """Every worker once, starting with the next in turn; those up first."""
        now = self.clock()
        start = next(self._turn) % len(self.upstreams)
        turn = self.upstreams[start:] + self.upstreams[:start]
        return [u for u in turn if u.up(now)] + [u for u in turn if not u.up(now)]

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        for attempt, upstream in enumerate(self._candidates()):
            if attempt:
                self.retried += 1
            try:
                async with self._session.request(
                    request.method,
                    upstream.url + request.path_qs,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as answer:
                    if answer.status in RETRIED_STATUSES:
                        upstream.down_until = self.clock() + self.fail_timeout
                        continue
                    upstream.forwarded += 1
                    passed = {h: answer.headers[h] for h in _PASSED_BACK if h in answer.headers}
                    return web.Response(
                        status=answer.status, body=await answer.read(), headers=passed
                    )
            except (aiohttp.ClientError, TimeoutError):
                upstream.down_until = self.clock() + self.fail_timeout
        self.failed += 1
        return web.Response(status=502, text="no worker answered")

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            await self.check_health()

    async def check_health(self) -> None:
        """Probe every worker's /healthz now (it is also done every health_interval)."""
        await asyncio.gather(*(self._probe(u) for u in self.upstreams))

    async def _probe(self, upstream: Upstream) -> None:
        assert self._session is not None
        try:
            async with self._session.get(
                f"{upstream.url}/healthz", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as answer:
                upstream.healthy = answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            upstream.healthy = False


_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
)
