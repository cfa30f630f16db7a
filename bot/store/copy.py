"""`ayerpoth db copy`: move a bot's data from one database to another (SQLite → PostgreSQL when
one process is no longer enough), table by table, then check that every row arrived.

The bot must be stopped while it runs (nothing else may write either database). Leases and the
send budget are not copied: they describe processes of the old database, not data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.store.errors import StoreError
from bot.store.sql import SQLStore

# In foreign-key order: a row's parent is copied before it.
TABLES = (
    "users",
    "paths",
    "quiz_results",
    "subscriptions",
    "deliveries",
    "broadcasts",
    "broadcast_targets",
    "groups",
    "unanswered",
    "admin_drafts",
    "held_updates",
    "card_files",  # file_ids are the bot's (its token's), whatever the database
)
# Tables whose id PostgreSQL makes (an identity column): copied ids must move its counter on.
_GENERATED_IDS = frozenset({"deliveries", "broadcasts", "held_updates"})
_BATCH = 1000


class TargetNotEmpty(StoreError):
    """The target already holds data; copying into it would mix two bots' users."""


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


async def copy_database(
    source: SQLStore,
    target: SQLStore,
    *,
    replace: bool = False,
    progress: Callable[[Copied], None] | None = None,
) -> list[Copied]:
    """Copy every table; refuse a target with data unless `replace` (which empties it first).
    Raises StoreError when a table's row count differs afterwards."""
    counts = {t: await _count(target, t) for t in TABLES}
    if any(counts.values()) and not replace:
        filled = ", ".join(f"{t} ({n})" for t, n in counts.items() if n)
        raise TargetNotEmpty(f"the target database is not empty: {filled}; --replace empties it")
    booleans = await _boolean_columns(target)
    copied = []
    async with target.database.transaction() as tx:
        for table in reversed(TABLES):
            await tx.execute(f"DELETE FROM {table}")
        for table in TABLES:
            rows = await source.database.fetch(f"SELECT * FROM {table}")
            if rows:
                columns = list(rows[0].keys())
                names = ", ".join(columns)
                values = ", ".join(f":{c}" for c in columns)
                overriding = (
                    " OVERRIDING SYSTEM VALUE"
                    if table in _GENERATED_IDS and target.backend == "postgresql"
                    else ""
                )
                sql = f"INSERT INTO {table} ({names}){overriding} VALUES ({values})"
                convert = booleans.get(table, frozenset())
                for start in range(0, len(rows), _BATCH):
                    await tx.executemany(
                        sql,
                        [
                            {
                                c: bool(r[c]) if c in convert and r[c] is not None else r[c]
                                for c in columns
                            }
                            for r in rows[start : start + _BATCH]
                        ],
                    )
                if overriding:
                    await tx.execute(
                        f"""SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                            (SELECT max(id) FROM {table}))"""
                    )
            copied.append(Copied(table, len(rows)))
            if progress is not None:
                progress(copied[-1])
    for done in copied:
        arrived = await _count(target, done.table)
        if arrived != done.rows:
            raise StoreError(f"{done.table}: {done.rows} row(s) read but {arrived} in the target")
    return copied


async def _count(store: SQLStore, table: str) -> int:
    return int((await store.database.fetch(f"SELECT count(*) FROM {table}"))[0][0])


async def _boolean_columns(store: SQLStore) -> dict[str, frozenset[str]]:
    """PostgreSQL's boolean columns (SQLite keeps 0/1 in INTEGER columns)."""
    if store.backend != "postgresql":
        return {}
    rows = await store.database.fetch(
        """SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'boolean'"""
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row[0], set()).add(row[1])
    return {t: frozenset(c) for t, c in found.items()}
