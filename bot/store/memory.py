"""Recently active users' rows and paths in memory, so a tap needs no query (one process only)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.store.records import RECENT_USERS, Path, User


@dataclass(slots=True)
class Remembered:
    """The last known users row and paths of one user (None where unknown), and a version that
    every change to them moves."""

    version: int
    user: User | None = None
    paths: tuple[Path, ...] | None = None


class UserMemory:
    """Recently active users' rows and paths, so a tap needs no query; least recent dropped first.

    Every store method that changes a user's row or paths does it inside `changing`. Where
    other processes write too (PostgreSQL), they announce each change and `forget` is called for
    it (bot.store.postgres); with `size=0` nothing is kept and every read goes to the database.
    A read keeps what it found only if the user's version did not move while it waited.
    """

    def __init__(self, size: int = RECENT_USERS) -> None:
        self._entries: OrderedDict[int, Remembered] = OrderedDict()
        self._size = size
        self._versions = itertools.count(1)

    def get(self, user_id: int) -> Remembered | None:
        if not self._size:
            return None
        entry = self._entries.get(user_id)
        if entry is not None:
            self._entries.move_to_end(user_id)
        return entry

    def version(self, user_id: int) -> int:
        """Call before a read; pass the result to `remember` after it."""
        if not self._size:
            return 0
        entry = self.get(user_id)
        if entry is None:
            entry = self._entries[user_id] = Remembered(next(self._versions))
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry.version

    def remember(
        self,
        user_id: int,
        version: int,
        *,
        user: User | None = None,
        paths: tuple[Path, ...] | None = None,
    ) -> None:
        """Keep what a read returned, unless the user changed since it began."""
        entry = self._entries.get(user_id)
        if entry is None or entry.version != version:
            return
        if user is not None:
            entry.user = user
        if paths is not None:
            entry.paths = paths

    @contextmanager
    def changing(self, user_id: int, *, paths_only: bool = False) -> Iterator[None]:
        """Around a write: forgotten before (no read answers from the old row meanwhile) and
        after (a read that ran on the reading connection before the commit is not kept)."""
        self._forget(user_id, paths_only)
        try:
            yield
        finally:
            self._forget(user_id, paths_only)

    def forget(self, user_id: int) -> None:
        """Another process changed this user: the next read asks the database."""
        self._forget(user_id, paths_only=False)

    def _forget(self, user_id: int, paths_only: bool) -> None:
        entry = self._entries.get(user_id)
        if entry is not None:
            entry.version = next(self._versions)
            entry.paths = None
            if not paths_only:
                entry.user = None
