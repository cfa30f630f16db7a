"""Which process sends the weekly tips and broadcasts: the holder of the "dispatcher" lease.

Every process asks for the lease every RENEW_SECONDS; it lasts TTL_SECONDS, so when the leader
dies (or loses the database) another process holds it within TTL_SECONDS + RENEW_SECONDS. A
process taking the lease over from one whose time ran out frees that process's claimed messages
at once: they go out now, not when their own (longer) leases end. The old leader, if it was only
cut off, stops dispatching as soon as a renewal fails; what it had in flight may go out twice.

On SQLite only one process uses the file (README), so a lease found at start-up is a dead run's
and is taken at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from telegram.error import TelegramError

from bot.store import RuntimeStore, StoreError, TipStore

log = logging.getLogger(__name__)

LEASE = "dispatcher"
TTL_SECONDS = 5.0
RENEW_SECONDS = 1.0


class LeaderStore(RuntimeStore, TipStore, Protocol):
    pass


class Leadership:
    """This process's claim to the dispatcher lease; `renew` is run every RENEW_SECONDS."""

    def __init__(
        self,
        store: LeaderStore,
        owner: str,
        clock: Callable[[], datetime],
        *,
        exclusive: bool,
        on_gained: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self.owner = owner
        self._clock = clock
        self._exclusive = exclusive  # the only process on this database (SQLite)
        self.on_gained = on_gained  # e.g. registering the webhook (bot.app.running)
        self.is_leader = False

    async def start(self) -> None:
        """At start-up, before the first `renew`: free the claims a previous run left under this
        process's name (WORKER_ID may be fixed); on SQLite, every claim (only one process uses
        the file, so any claim found now is a dead run's)."""
        try:
            freed = await self._store.release_claims(None if self._exclusive else self.owner)
        except StoreError as exc:
            log.error("could not free the last run's claims (they will time out): %s", exc)
            return
        if freed:
            log.warning("%d message(s) in flight when the last run stopped will be sent now", freed)
        await self.renew()

    async def renew(self) -> bool:
        """Take or keep the lease; whether this process leads now. A database error means not
        leading (another process may take over meanwhile)."""
        try:
            result = await self._store.acquire_lease(
                LEASE,
                self.owner,
                now=self._clock(),
                ttl_seconds=TTL_SECONDS,
                take_over=self._exclusive,
            )
            if result.held and result.taken_over_from:
                freed = await self._store.release_claims(result.taken_over_from)
                log.log(
                    logging.WARNING if freed else logging.INFO,
                    "took over the tips dispatcher from %s; %d message(s) it had in flight "
                    "will be sent now",
                    result.taken_over_from,
                    freed,
                )
        except StoreError as exc:
            if self.is_leader:
                log.error("lost the tips dispatcher lease (database error): %s", exc)
            self.is_leader = False
            return False
        gained = result.held and not self.is_leader
        if self.is_leader and not result.held:
            log.warning("the tips dispatcher lease went to %s", result.holder)
        self.is_leader = result.held
        if gained:
            log.info("this process (%s) now sends the tips and broadcasts", self.owner)
            if self.on_gained is not None:
                try:
                    await self.on_gained()
                except TelegramError as exc:
                    log.error("could not act on becoming leader: %s", exc)
        return self.is_leader

    async def resign(self) -> None:
        """At a stop: give the lease and this process's claims back, for the next leader."""
        try:
            freed = await self._store.release_claims(self.owner)
            if self.is_leader:
                await self._store.release_lease(LEASE, self.owner)
        except StoreError as exc:
            log.warning("could not hand the tips dispatcher over (it will time out): %s", exc)
            return
        finally:
            self.is_leader = False
        if freed:
            log.info("%d message(s) in flight handed back for the next leader", freed)
