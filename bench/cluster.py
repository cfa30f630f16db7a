"""Scale-out (issue 15): taps/s, p50/p99 and CPU per tap with 1, 2 and 3 workers on PostgreSQL
against 1 worker on SQLite, under the same load, in one run (`bench.run --cluster`).

Every row is real `ayerpoth run` processes in webhook mode behind the round-robin balancer
(bot/fakeapi/cluster.py), the single workers too, so rows differ only in backend and number of
workers; the fake Bot API and the simulated people run in this process as for the other
contenders, under the load of the full-bot contender (everyone taps `actions` times), which
runs first as the reference (one process, SQLite, long polling). The store is
seeded once with `store_users` users (bench/seed.py, SQLite) and copied into PostgreSQL with
`ayerpoth db copy`; each PostgreSQL row starts from a fresh copy of that database. PostgreSQL is a
throw-away server started here (bot/fakeapi/postgres.py: Unix socket, fsync off, so the figures
are CPU, not a disk). CPU per tap is the workers' (user + system, all threads) and, for
PostgreSQL, the server's (the postmaster and its backends), over the measured phase.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from bench.loadgen import BenchAPI, run_people
from bench.run import CONTENDERS, measure, people_for, rejection_counts, unchanged, wait_ready
from bench.seed import seed_store
from bot.fakeapi.cluster import Cluster
from bot.fakeapi.postgres import PostgresCluster

#: (backend, workers) per row, in the order they run.
ROWS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 3))
COLUMNS = (
    "name",
    "replies_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "bot_cpu_ms_per_reply",
    "db_cpu_ms_per_reply",
    "cpu_ms_per_reply",
    "driver_cpu_share",
    "lost",
    "rejected_400",
)


class CpuMeter:
    """User + system CPU of some processes and, with `children`, of their children: a
    PostgreSQL server forks a backend per connection."""

    def __init__(self, pids: list[int], *, children: bool = False) -> None:
        self.roots = [psutil.Process(pid) for pid in pids]
        self.children = children
        self._start = self._read()

    def _read(self) -> dict[int, float]:
        processes = list(self.roots)
        if self.children:
            processes += [c for root in self.roots for c in root.children(recursive=True)]
        seconds = {}
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds[process.pid] = times.user + times.system
        return seconds

    def seconds(self) -> float:
        """CPU used since this meter was made (a process started meanwhile counts whole)."""
        now = self._read()
        return sum(used - self._start.get(pid, 0.0) for pid, used in now.items())


async def measure_cluster(
    name: str,
    database_url: str,
    workers: int,
    users: int,
    actions: int,
    database_pid: int | None,
) -> dict[str, Any]:
    """One row: `workers` workers on `database_url`, everyone warmed up, then tapping."""
    api = BenchAPI()
    async with api:
        with tempfile.TemporaryDirectory() as folder:
            people = people_for(api, users, seed=1)
            env = {"LOG_LEVEL": "WARNING", "HTTP_BACKEND": "aiohttp"}
            async with Cluster(
                api, database_url, Path(folder), workers=workers, env=env
            ) as cluster:
                await wait_ready(people[0])
                await run_people(people, 1, taps=False)  # everyone opens the menu: not measured
                pids = [w.process.pid for w in cluster.workers if w.process is not None]
                bot_cpu = CpuMeter(pids)
                db_cpu = CpuMeter([database_pid], children=True) if database_pid else None
                driver_before = time.process_time()
                results, seconds = await run_people(people, actions, taps=True)
                bot_seconds = bot_cpu.seconds()
                db_seconds = db_cpu.seconds() if db_cpu else 0.0
                driver_cpu = time.process_time() - driver_before
    row = results.summary(seconds)
    replies = max(row["replies"], 1)
    return {
        "name": name,
        "workers": workers,
        **row,
        "bot_cpu_ms_per_reply": bot_seconds / replies * 1000,
        "db_cpu_ms_per_reply": db_seconds / replies * 1000,
        "cpu_ms_per_reply": (bot_seconds + db_seconds) / replies * 1000,
        "driver_cpu_share": driver_cpu / seconds,
        "rejected_400": sum(1 for c in api.rejections if not unchanged(c)),
        "unchanged": sum(1 for c in api.rejections if unchanged(c)),
        "floods": api.flood_rejections,
        "errors_detail": results.errors,
        "rejections_detail": rejection_counts(api),
    }


def copy_into(source_url: str, target_url: str) -> None:
    """`ayerpoth db copy`, as an operator moving up runs it."""
    command = [sys.executable, "-m", "bot", "db", "copy", source_url, target_url]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"db copy failed:\n{result.stdout}\n{result.stderr}")


async def cluster_rows(
    users: int, actions: int, store_users: int, cache: Path, report: Any
) -> list[dict[str, Any]]:
    """The full-bot contender (one process, SQLite, long polling: the reference), then every
    row of ROWS; `report(row)` after each."""
    reference = next(c for c in CONTENDERS if c.name == "full-bot")
    polling = await measure(reference, users, actions, store_users)
    rows = [{**polling, "name": "full-bot-polling", "workers": 1, "db_cpu_ms_per_reply": 0.0,
             "bot_cpu_ms_per_reply": polling["cpu_ms_per_reply"]}]  # fmt: skip
    report(rows[0])
    with tempfile.TemporaryDirectory() as folder, PostgresCluster.start() as postgres:
        seeded = await seed_store(Path(folder) / "seed.sqlite3", store_users, cache=cache)
        template = postgres.create_database()
        copy_into(f"sqlite:///{seeded}", template)
        template_name = urlsplit(template).path.lstrip("/")
        for backend, workers in ROWS:
            if backend == "sqlite":
                url = f"sqlite:///{await seed_store(Path(folder) / 'bot.sqlite3', store_users, cache=cache)}"
                database_pid = None
            else:
                url = await postgres.create_database_async(template=template_name)
                database_pid = postgres.pid
            name = f"{backend}-{workers}-worker{'s' if workers > 1 else ''}"
            rows.append(await measure_cluster(name, url, workers, users, actions, database_pid))
            report(rows[-1])
    return rows
