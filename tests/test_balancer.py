"""The round-robin balancer the cluster tests and the bench put in front of the workers
(bot/fakeapi/balancer.py): it retries the next worker as nginx's proxy_next_upstream does."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from bot.fakeapi.balancer import Balancer


@asynccontextmanager
async def worker(name: str, status: int = 200, healthy: bool = True) -> AsyncIterator[str]:
    """An upstream that answers every POST with `status` and its name; yields its URL."""

    async def post(request: web.Request) -> web.Response:
        body = await request.text()
        return web.Response(status=status, text=f"{name}:{body}")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"worker": name}, status=200 if healthy else 503)

    app = web.Application()
    app.router.add_post("/telegram", post)
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def dead_url() -> str:
    """Where nobody listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, balancer: Balancer, body: str) -> tuple[int, str]:
    async with http.post(f"{balancer.base_url}/telegram", data=body) as answer:
        return answer.status, await answer.text()


async def test_round_robin_and_the_next_worker_when_one_fails(
    http: aiohttp.ClientSession,
) -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(worker("a"))
        b = await stack.enter_async_context(worker("b"))
        busy = await stack.enter_async_context(worker("busy", status=503))
        balancer = await stack.enter_async_context(Balancer([a, b]))
        answers = [await post(http, balancer, str(i)) for i in range(4)]
        assert answers == [(200, "a:0"), (200, "b:1"), (200, "a:2"), (200, "b:3")]

        # refused (a worker that died after its last probe), 503: the same request goes on to
        # the next worker, and those that failed are left out for a while
        doomed_worker = AsyncExitStack()
        doomed = await doomed_worker.enter_async_context(worker("doomed"))
        balancer = await stack.enter_async_context(
            Balancer([doomed, busy, a], fail_timeout=60, health_interval=60)
        )
        await doomed_worker.aclose()
        assert await post(http, balancer, "x") == (200, "a:x")
        assert balancer.retried == 2
        assert [await post(http, balancer, str(i)) for i in range(2)] == [
            (200, "a:0"),
            (200, "a:1"),
        ]
        assert balancer.retried == 2  # the two down ones were not tried again
        assert [u.forwarded for u in balancer.upstreams] == [0, 0, 3]


async def test_a_worker_failing_its_health_probe_is_left_out_and_all_down_is_a_502(
    http: aiohttp.ClientSession,
) -> None:
    async with AsyncExitStack() as stack:
        stopping = await stack.enter_async_context(worker("stopping", healthy=False))
        a = await stack.enter_async_context(worker("a"))
        balancer = await stack.enter_async_context(Balancer([stopping, a], fail_timeout=60))
        await balancer.check_health()
        assert [u.healthy for u in balancer.upstreams] == [False, True]
        assert [await post(http, balancer, str(i)) for i in range(3)] == [
            (200, "a:0"), (200, "a:1"), (200, "a:2")
        ]  # fmt: skip
        assert balancer.retried == 0  # never even tried

        nobody = await stack.enter_async_context(Balancer([dead_url(), dead_url()]))
        assert (await post(http, nobody, "lost?"))[0] == 502  # the sender tries again later
        assert (nobody.failed, nobody.retried) == (1, 1)
