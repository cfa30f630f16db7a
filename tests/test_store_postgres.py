"""PostgreSQL with several processes on one database: each store here has its own pool, as each
bot process does. What one writes, the others see at once; claims and leases never overlap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from bot.store import MAX_PATHS, SQLStore, open_store

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PROCESSES = 3


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[list[SQLStore]]:
    # Opened at once: the migration runs once, the others wait for its advisory lock.
    opened = await asyncio.gather(*(open_store(postgres_url) for _ in range(PROCESSES)))
    yield list(opened)
    await asyncio.gather(*(s.close() for s in opened))


async def _heard(read: Callable[[], Awaitable[object]], expected: object) -> float:
    """Seconds until `read` gives `expected` (another process's change was heard)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(2):
        while (await read()) != expected:  # noqa: ASYNC110 (the announcement is a socket read)
            await asyncio.sleep(0)  # let the announcement in
    return loop.time() - start


async def test_what_one_process_writes_the_others_read_next(stores: list[SQLStore]) -> None:
    """Each process keeps recent users in memory and forgets one as soon as another process
    announces a change to them: a tap that comes after a round trip through Telegram sees it."""
    a, b, _ = stores
    await a.touch_user(7, now=NOW)
    assert await a.list_paths(7) == []  # now remembered by a
    await b.add_path(7, "youtube", now=NOW)

    async def paths() -> list[str]:
        return [p.method_id for p in await a.list_paths(7)]

    assert await _heard(paths, ["youtube"]) < 0.5
    await b.set_language(7, "en", now=NOW)

    async def language() -> str | None:
        user = await a.get_user(7)
        return user.language if user else None

    assert await _heard(language, "en") < 0.5
    await a.forget_user(7)

    async def gone() -> bool:
        return await b.get_user(7) is None and await b.list_paths(7) == []

    assert await _heard(gone, True) < 0.5


async def test_a_process_that_cannot_hear_others_keeps_no_one(postgres_url: str) -> None:
    a, b = await asyncio.gather(open_store(postgres_url), open_store(postgres_url))
    try:
        await a.touch_user(7, now=NOW)
        assert await a.list_paths(7) == []
        listener = a.database._listener  # type: ignore[attr-defined]
        listener.terminate()  # the LISTEN connection is gone: nothing can be heard any more
        await b.add_path(7, "youtube", now=NOW)
        assert [p.method_id for p in await a.list_paths(7)] == ["youtube"]  # asked, not kept
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_claims_at_once_from_several_processes_never_overlap(stores: list[SQLStore]) -> None:
    writer = stores[0]
    for user in range(1, 301):
        await writer.touch_user(user, now=NOW)
        await writer.subscribe(user, "stock", now=NOW, weekday=0, hour=9, minute=0, first_due=NOW)
    batches = await asyncio.gather(
        *(
            s.claim_due_tips(now=NOW, limit=40, lease_seconds=60, owner=f"w{i}")
            for _ in range(4)
            for i, s in enumerate(stores)
        )
    )
    claimed = [c.user_id for batch in batches for c in batch]
    assert len(claimed) == len(set(claimed)) == 300  # every tip once, none twice


async def test_adding_paths_at_once_stops_at_the_limit(stores: list[SQLStore]) -> None:
    await stores[0].touch_user(7, now=NOW)
    methods = ["youtube", "stock", "writing", "social", "courses", "affiliate"]
    await asyncio.gather(
        *(stores[i % PROCESSES].add_path(7, m, now=NOW) for i, m in enumerate(methods))
    )
    assert len(await stores[0].list_paths(7)) == MAX_PATHS


async def test_one_leader_among_processes_asking_at_once(stores: list[SQLStore]) -> None:
    results = await asyncio.gather(
        *(
            s.acquire_lease("dispatcher", f"w{i}", now=NOW, ttl_seconds=5)
            for i, s in enumerate(stores)
        )
    )
    assert sum(r.held for r in results) == 1
    assert len({r.holder for r in results}) == 1


async def test_the_send_budget_holds_for_all_processes_together(stores: list[SQLStore]) -> None:
    grants = await asyncio.gather(
        *(s.take_send_tokens(5, 1, limit=6) for _ in range(10) for s in stores)
    )
    assert sum(grants) == 6
