"""The weekly-tips dispatcher: durable, paced, and safe to kill at any moment.

Due times live in the database. Every TIP_CHECK_SECONDS a job claims due tips in batches (a lease,
so a crashed sender's claims come back), sends them through the rate limiter's broadcast lane
(its own BROADCAST_RATE budget, so people tapping buttons are not queued behind tips), and records
each result in one transaction. A crash between sending and recording repeats at most that one
message. Admin broadcasts go through the same loop. Only the process holding the dispatcher lease
sends (bot.leader); on PostgreSQL the lease is renewed here, every RENEW_SECONDS.

A chat that is flood-limited (a 429, or the limiter says it is paused or busy) is not waited for:
its claim is released with ``retry_at = now + retry_after`` and the others go on. A slow chat
(a send that times out) holds one of SENDERS; the next batch is claimed while it is out.

The dispatcher is built in `bot.app.build_application` and held in `Services.dispatcher`; what a
tip looks like is the handlers' (`render_tip`), what a send error means is `bot.outbox.delivery`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeAlias, TypeVar

from telegram import InlineKeyboardMarkup
from telegram.error import TelegramError
from telegram.ext import ExtBot, JobQueue

from bot.content import Library
from bot.context import AppContext, Services, user_language
from bot.leader import RENEW_SECONDS
from bot.outbox import delivery
from bot.outbox.schedule import next_tip_due
from bot.store import BroadcastClaim, DeliveryStatus, StoreError, TipClaim

log = logging.getLogger(__name__)

BROADCAST_LANE = {"lane": "broadcast"}
BATCH = 200
LEASE_SECONDS = 300
SENDERS = 32  # sends in flight at once; the broadcast lane's limiter does the pacing
JOB_NAME = "dispatch"

Claim = TypeVar("Claim", TipClaim, BroadcastClaim)
AnyBot: TypeAlias = ExtBot[Any]
# A claimed tip as it is sent, in a language: text and buttons (handlers.subscriptions.tip_screen).
RenderTip: TypeAlias = Callable[[Library, str, TipClaim], tuple[str, InlineKeyboardMarkup]]


class Dispatcher:
    """Sends due tips and pending broadcasts; one per application, in `Services.dispatcher`."""

    def __init__(self, services: Services, render_tip: RenderTip) -> None:
        self.services = services
        self.render_tip = render_tip
        self._job_queue: JobQueue[Any] | None = None  # set by `start`
        # Outcomes of sent messages that the database refused to record (disk full, locked too
        # long). They are written before anything new goes out: else each lease expiry would
        # send those messages again for as long as the fault lasts.
        self._unrecorded: list[Callable[[], Awaitable[None]]] = []
        self._again = False
        self._idle: asyncio.Event | None = None  # set when the run in progress ends

    def start(self, job_queue: JobQueue[Any]) -> None:
        """Run every TIP_CHECK_SECONDS, and once now: PTB's first=0 does not run a repeating job
        at start-up (APScheduler skips to the next interval), so tips that fell due while the
        bot was down get their own run."""
        self._job_queue = job_queue
        job_queue.run_repeating(
            self,
            interval=self.services.settings.tip_check_seconds,
            name=JOB_NAME,
            job_kwargs={"max_instances": 2},  # the second only nudges a run in progress
        )
        job_queue.run_once(self, 0, name=f"{JOB_NAME}-now", job_kwargs={"misfire_grace_time": None})

    def soon(self) -> None:
        """Run now (e.g. the first tip right after subscribing), besides the schedule; before
        `start`, nothing (the start-up run sends it)."""
        if self._job_queue is not None:
            self._job_queue.run_once(self, 0, name=f"{JOB_NAME}-now")

    async def keep_leadership(self, bot: AnyBot) -> None:
        """Renew (or take) the dispatcher lease every RENEW_SECONDS, on a task of its own so a
        busy loop delays it rather than skips it. The leader also looks for due messages at every
        renewal (in the background: a long run must not hold renewals up), so a tip or broadcast
        queued through another process goes out within a second or two."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            if await self.services.leadership.renew():
                self.services.in_background(self.tick(bot))

    async def __call__(self, context: AppContext) -> None:
        """The job. During a run it only asks that run to go round again, and returns at once,
        so a long dispatch does not hold a second job instance (APScheduler would warn)."""
        if self._idle is not None:
            self._again = True
            return
        await self.request(context.bot)

    async def tick(self, bot: AnyBot) -> None:
        """A run if none is in progress (the leader's frequent check on PostgreSQL)."""
        if self._idle is None:
            await self.request(bot)

    async def request(self, bot: AnyBot) -> None:
        """Run now; during a run (a new subscriber, the schedule), make it go round once more.

        Either way this returns when a run that began after the call has ended, so everything due
        by then has been sent or given back. Runs never overlap.
        """
        self._again = True
        if self._idle is not None:
            await self._idle.wait()
            return
        idle = self._idle = asyncio.Event()
        try:
            while self._again:
                self._again = False
                await self.run(bot)
        finally:
            self._idle = None
            idle.set()

    async def idle(self) -> None:
        """Wait until no run is in progress."""
        if self._idle is not None:
            await self._idle.wait()

    async def run(self, bot: AnyBot) -> None:
        """Send everything that is due now, batch after batch, then finish broadcasts."""
        if not self.services.leadership.is_leader:
            return  # another process sends them (bot.leader)
        try:
            if not await self._record_unrecorded():
                return
            await self._drain(bot, self._claim_tips, self._deliver_tip)
            await self._drain(bot, self._claim_targets, self._deliver_broadcast)
            await self._report_finished_broadcasts(bot)
        except StoreError as exc:  # claims are leased: whatever was cut short comes back
            log.error("tips dispatch stopped, database error: %s", exc)

    async def _record(self, write: Callable[[], Awaitable[None]]) -> None:
        """Record a sent message's outcome, or keep it to record before sending anything else."""
        try:
            await write()
        except StoreError as exc:
            log.error("a sent message's outcome was not recorded, will retry: %s", exc)
            self._unrecorded.append(write)

    async def _record_unrecorded(self) -> bool:
        while self._unrecorded:
            try:
                await self._unrecorded[0]()
            except StoreError as exc:
                log.error("database still refuses writes, no tips sent this time: %s", exc)
                return False
            self._unrecorded.pop(0)
        return True

    async def _drain(
        self,
        bot: AnyBot,
        claim: Callable[[], Awaitable[Sequence[Claim]]],
        deliver: Callable[[AnyBot, Claim], Coroutine[Any, Any, None]],
    ) -> None:
        """Claim and send until nothing is due: SENDERS at once, the next batch claimed while the
        last ones are still out, so one slow or flood-limited chat holds up only itself."""
        sending: set[asyncio.Task[None]] = set()

        async def wait_for_room(room: int) -> None:
            while len(sending) > room:
                done, _ = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                sending.difference_update(done)
                for task in done:
                    task.result()  # a database error stops the run (the lease brings it back)

        try:
            while not self._unrecorded and (batch := await claim()):
                for item in batch:
                    await wait_for_room(SENDERS - 1)
                    if self._unrecorded:  # stop sending: the lease brings the rest back
                        break
                    sending.add(asyncio.create_task(deliver(bot, item)))
            await wait_for_room(0)
        finally:
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)

    async def _claim_tips(self) -> list[TipClaim]:
        store, now = self.services.store, self.services.clock()
        if not self.services.leadership.is_leader:
            return []
        return await store.claim_due_tips(
            now=now, limit=BATCH, lease_seconds=LEASE_SECONDS, owner=self.services.worker_id
        )

    async def _claim_targets(self) -> list[BroadcastClaim]:
        store, now = self.services.store, self.services.clock()
        if not self.services.leadership.is_leader:
            return []
        return await store.claim_broadcast_targets(
            now=now, limit=BATCH, lease_seconds=LEASE_SECONDS, owner=self.services.worker_id
        )

    async def _send(
        self, bot: AnyBot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> DeliveryStatus | timedelta:
        """Send one message: a final status, or how long to wait before trying again."""
        retry = timedelta(seconds=self.services.settings.tip_check_seconds)
        try:
            await bot.send_message(
                chat_id, text, reply_markup=markup, rate_limit_args=BROADCAST_LANE
            )
        except TelegramError as exc:
            return delivery.outcome(exc, chat_id, retry=retry)
        return DeliveryStatus.SENT

    async def _deliver_tip(self, bot: AnyBot, claim: TipClaim) -> None:
        services = self.services
        store, library, settings = services.store, services.library, services.settings
        if not library.has_method(claim.method_id) or claim.position >= library.tip_count(
            claim.method_id
        ):
            await store.unsubscribe(claim.user_id, claim.method_id)  # removed or shortened content
            return
        language = claim.language or settings.default_language
        text, markup = self.render_tip(library, language, claim)
        outcome = await self._send(bot, claim.user_id, text, markup)
        now = services.clock()
        if isinstance(outcome, timedelta):
            await self._record(lambda: store.release_tip(claim, retry_at=now + outcome))
            return
        due = next_tip_due(
            settings, claim.due, now, weekday=claim.weekday, hour=claim.hour, minute=claim.minute
        )
        tip_count = library.tip_count(claim.method_id)
        await self._record(
            lambda: store.complete_tip(
                claim, now=now, status=outcome, next_due=due, tip_count=tip_count
            )
        )

    async def _deliver_broadcast(self, bot: AnyBot, claim: BroadcastClaim) -> None:
        outcome = await self._send(bot, claim.user_id, claim.text, None)
        now = self.services.clock()
        store = self.services.store
        if isinstance(outcome, timedelta):
            await self._record(
                lambda: store.release_broadcast_target(claim, retry_at=now + outcome)
            )
        else:
            await self._record(lambda: store.complete_broadcast_target(claim, outcome, now=now))

    async def _report_finished_broadcasts(self, bot: AnyBot) -> None:
        store, library = self.services.store, self.services.library
        for broadcast in await store.unfinished_broadcasts():
            report = await store.broadcast_report(broadcast.id)
            if report["pending"]:
                continue
            await store.finish_broadcast(broadcast.id, now=self.services.clock())
            if broadcast.created_by is None:
                continue
            language = await user_language(self.services, broadcast.created_by)
            text = library.t(language, "admin.broadcast_done", **report)
            try:
                await bot.send_message(broadcast.created_by, text)
            except TelegramError as exc:
                log.warning("broadcast %s report not delivered: %s", broadcast.id, exc)
