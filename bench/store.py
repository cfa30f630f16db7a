"""The store alone, per backend: what one tap's queries cost, and how many a database serves.

    .venv/bin/python -m bench.store                  # SQLite file and a throw-away PostgreSQL
    .venv/bin/python -m bench.store --quick

For each backend, 64 tasks at once (CONCURRENT_UPDATES) run a tap's store work over and over:
touch_user, get_user, list_paths (what identify_user and a card screen ask), and every tenth
time set_step (a write in a transaction). Reported: operations/s, mean and p99 latency of one
operation, and this process's CPU per operation. PostgreSQL runs in a throw-away server started
here from Debian's binaries (bot/fakeapi/postgres.py, as for the tests), on a Unix socket with fsync off, so
the figures are the client's and the server's CPU, not a disk's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime

from bot.fakeapi.postgres import PostgresCluster
from bot.store import SQLStore, open_store
from bot.store.memory import UserMemory

TASKS = 64
NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def _seed(store: SQLStore, users: int) -> None:
    for user in range(1, users + 1):
        await store.touch_user(user, now=NOW)
        await store.add_path(user, "youtube", now=NOW)


async def _tap(store: SQLStore, user: int, i: int) -> None:
    await store.touch_user(user, now=NOW)
    await store.get_user(user)
    await store.list_paths(user)
    if i % 10 == 0:
        await store.set_step(user, "youtube", i % 7, done=bool(i % 2))


async def measure(url: str, *, users: int, taps: int, remember: bool = True) -> dict[str, float]:
    store = await open_store(url)
    if not remember:  # what keeping recent users in memory saves
        store._memory = UserMemory(0)
    try:
        await _seed(store, users)
        latencies: list[float] = []

        async def worker(k: int) -> None:
            for i in range(taps // TASKS):
                start = time.perf_counter()
                await _tap(store, 1 + (k * 7919 + i * 104729) % users, i)
                latencies.append(time.perf_counter() - start)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(TASKS)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await store.close()
    latencies.sort()
    return {
        "taps_per_s": len(latencies) / wall,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "client_cpu_ms_per_tap": cpu / len(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    users, taps = (1_000, 2_000) if args.quick else (20_000, 20_000)
    cluster = PostgresCluster.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            runs = {
                "sqlite": (f"sqlite:///{folder}/bench.sqlite3", True),
                "postgresql (changes announced, recent users kept)": (
                    cluster.create_database(),
                    True,
                ),
                "postgresql, nothing kept in memory": (cluster.create_database(), False),
            }
            print("| backend | taps/s | mean ms | p99 ms | client CPU ms/tap |")
            print("|---|---|---|---|---|")
            for name, (url, remember) in runs.items():
                r = asyncio.run(measure(url, users=users, taps=taps, remember=remember))
                print(
                    f"| {name} | {r['taps_per_s']:.0f} | {r['mean_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {r['client_cpu_ms_per_tap']:.3f} |"
                )
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
