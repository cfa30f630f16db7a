"""The little a backend must provide for `bot.store.sql.SQLStore`: run one statement, or several
in one transaction. SQL is written once, with `:name` parameters, in the dialect SQLite and
PostgreSQL share; a backend translates the parameters and its errors (to StoreError)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import Any, Protocol

Params = Mapping[str, Any]
Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name and by position


class Statements(Protocol):
    """Statements on one connection (inside a transaction, or on their own)."""

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]: ...
    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, params: Sequence[Params]) -> None: ...


class Database(Statements, Protocol):
    name: str  # "sqlite" or "postgresql"
    # Appended to a SELECT that claims rows for sending, so that two processes claiming at once
    # get different rows (PostgreSQL) rather than wait; "" where the write lock already does it.
    skip_locked: str  # with {table}: the alias of the table whose rows are claimed
    # Appended to a SELECT in a transaction whose row is then written: another process waits.
    lock_row: str

    async def read(self, sql: str, params: Params | None = None) -> list[Row]:
        """A plain SELECT; may run on a connection of its own that never waits for writes."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Statements]: ...
    async def close(self) -> None: ...

    async def watch(self, changed: Callable[[int | None], None]) -> bool:
        """Call `changed(user_id)` whenever another process announces a change to a user
        (`changed(None)`: announcements may have been missed, forget everyone). Whether the
        store may keep users in memory: True where no other process writes, or while watching.
        """
        ...

    async def announce(self, user_id: int) -> None:
        """Tell the other processes (their `watch`) that this user's row or paths changed."""
        ...


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` parameters to PostgreSQL's `$1, $2 …`, and the names in that order (a name used
    twice is one parameter). `::type` casts are left alone."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAMETER.sub(number, sql), tuple(names)
