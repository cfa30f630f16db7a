"""PostgreSQL with several processes on one database: each store here has its own pool, as each
bot process does. What one writes, the others see at once; claims and leases never overlap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


async def test_what_one_process_writes_the_others_read_at_once(stores: list[SQLStore]) -> None:
    a, b, _ = stores
    await a.touch_user(7, now=NOW)
    assert await a.list_paths(7) == []
    await b.add_path(7, "youtube", now=NOW)
    assert [p.method_id for p in await a.list_paths(7)] == ["youtube"]
    await b.set_language(7, "en", now=NOW)
    assert (await a.get_user(7)).language == "en"  # type: ignore[union-attr]
    await a.forget_user(7)
    assert await b.get_user(7) is None and await b.list_paths(7) == []


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
