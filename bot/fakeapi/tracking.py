"""Tell the fake Bot API when PTB has *finished* handling an update.

Fetching an update (getUpdates) says nothing about when the bot's handlers are done, yet a test
wants to read the bot's whole answer right after it. PTB routes every update through its update
processor, so wrapping that is the one place that sees the end of handling, errors included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import SimpleUpdateProcessor

__all__ = ["TrackingUpdateProcessor"]


class TrackingUpdateProcessor(SimpleUpdateProcessor):
    """A SimpleUpdateProcessor that calls ``on_processed(update_id)`` after each update.

    Pass it as ``ApplicationBuilder().concurrent_updates(TrackingUpdateProcessor(...))``; the
    callback is normally :meth:`FakeBotAPI.notify_processed`. It fires in ``finally`` so a
    handler that raised still counts as finished. Non-Update objects (custom updates put on the
    queue) are processed but not reported.

    A bot whose handlers post their sends and return (bot.outbox) is done with an update only when
    those sends are: set ``settled`` to a coroutine function that waits for them. The update's
    slot is given back first, as in production, and the report follows when they are out.
    """

    __slots__ = ("_on_processed", "_reports", "settled")

    def __init__(
        self,
        max_concurrent_updates: int = 1,
        *,
        on_processed: Callable[[int], None],
        settled: Callable[[Update], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._on_processed = on_processed
        self._reports: set[asyncio.Task[None]] = set()
        self.settled = settled

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            if isinstance(update, Update):
                if self.settled is None:
                    self._on_processed(update.update_id)
                else:
                    report = asyncio.create_task(self._report(update, self.settled))
                    self._reports.add(report)
                    report.add_done_callback(self._reports.discard)

    async def _report(self, update: Update, settled: Callable[[Update], Awaitable[None]]) -> None:
        try:
            await settled(update)
        finally:
            self._on_processed(update.update_id)
