"""The outbox: a handler's sends run on their own, so the handler never waits for flood control.

`bot.ui.show` / `bot.ui.answer` and the error handler's apology post their requests here and
return; each request runs in its own task through the rate limiter (`bot.ratelimit`), which queues
it behind that chat's earlier messages. Nothing is forgotten: every task belongs to the update it
answers (so a test, or a graceful stop, can wait until an update's replies are out) and its
outcome is counted. An update is in hand (`bot.intake.Inbox`) until its sends have ended, so a
stop hands back an update whose reply still waits here (`hand_back`) and the next start answers
it. A failure other than flood control is handed to `on_failure` (the error
handler's apology, `bot.errors.send_failed`); a reply the limiter gave up on (`Undeliverable`) was
already logged and counted there and gets no apology, which would be one more send into the same
flood.

Why here and not in the update processor: see `bot.ratelimit`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from telegram.error import BadRequest

from bot.ratelimit import Undeliverable

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

# How long a stopping bot waits for replies still queued before giving them up (and saying so).
GRACE_SECONDS = 5.0

OnFailure = Callable[[object, Any, Exception], Awaitable[None]]


class Outbox:
    """Runs posted sends in tasks, grouped by update; counts what was sent, dropped or failed."""

    def __init__(self, on_failure: OnFailure | None = None, *, grace: float = GRACE_SECONDS):
        self.on_failure = on_failure
        self.grace = grace
        self._by_update: dict[int, set[asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Called with an update's id when the last of its sends has ended (bot.intake.Inbox).
        self.on_settled: Callable[[int], None] | None = None
        self._handed_back: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.dropped = 0  # given up by the rate limiter (logged there), or at shutdown
        self.failed = 0
        self.handed_back = 0  # cancelled at a stop with their update, which the next start answers

    def post(
        self,
        update: object,
        ctx: Any,
        send: Coroutine[Any, Any, object],
        *,
        apology: bool = False,
    ) -> None:
        """Send in the background; a failure goes to `on_failure` (unless this is the apology)."""
        update_id = getattr(update, "update_id", None)
        task = asyncio.create_task(self._run(update, ctx, send, apology))
        self._tasks.add(task)
        if isinstance(update_id, int):
            self._by_update.setdefault(update_id, set()).add(task)
        task.add_done_callback(lambda done: self._forget(done, update_id))

    def _forget(self, task: asyncio.Task[None], update_id: int | None) -> None:
        self._tasks.discard(task)
        if update_id is None:
            return
        tasks = self._by_update.get(update_id)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._by_update[update_id]
                if self.on_settled is not None:
                    self.on_settled(update_id)

    async def _run(
        self, update: object, ctx: Any, send: Coroutine[Any, Any, object], apology: bool
    ) -> None:
        try:
            await send
        except Undeliverable:
            self.dropped += 1
            return
        except BadRequest as exc:
            if "not modified" in exc.message:  # the screen already shows this; nothing to do
                self.sent += 1
                return
            await self._failed(update, ctx, exc, apology)
            return
        except asyncio.CancelledError:
            if asyncio.current_task() in self._handed_back:
                self.handed_back += 1
            else:
                self.dropped += 1
            raise
        except Exception as exc:  # handed on, as PTB hands a handler's error on
            await self._failed(update, ctx, exc, apology)
            return
        self.sent += 1

    async def _failed(self, update: object, ctx: Any, exc: Exception, apology: bool) -> None:
        self.failed += 1
        update_id = getattr(update, "update_id", None)
        if apology or self.on_failure is None:
            log.warning("could not apologise for update %s: %s", update_id, exc)
            return
        try:
            await self.on_failure(update, ctx, exc)
        except Exception:
            log.exception("the failure handler failed for update %s", update_id)

    async def settled(self, update: object) -> None:
        """Wait until every send posted for this update (and any apology for them) has ended."""
        update_id = getattr(update, "update_id", None)
        while tasks := self._by_update.get(update_id) if isinstance(update_id, int) else None:
            await asyncio.wait(set(tasks))

    def sending(self, update_id: int) -> bool:
        """Whether sends posted for this update have not all ended yet."""
        return update_id in self._by_update

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def hand_back(self, update_ids: Iterable[int]) -> None:
        """A stop hands these updates back (the next start handles them again): cancel their sends
        still queued, so nothing goes out twice, and wait until they have ended."""
        tasks = {task for update_id in update_ids for task in self._by_update.get(update_id, ())}
        self._handed_back.update(tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._handed_back.difference_update(tasks)

    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (a stop's bound)
        """Wait up to `grace` (or `timeout`, if shorter) for what is still queued, then give the
        rest up, counted and logged."""
        if self._tasks:
            wait = self.grace if timeout is None else max(0.0, min(self.grace, timeout))
            await asyncio.wait(set(self._tasks), timeout=wait)
        if left := set(self._tasks):
            log.warning("stopping: %d queued repl(ies) not sent", len(left))
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
