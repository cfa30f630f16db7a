"""Picture cards for the running bot: drawn in a worker process, kept on disk, uploaded once.

Drawing a card takes a tenth of a second of CPU, mostly with the GIL held (shaping, painting),
so it runs in a separate process and the event loop only waits for the bytes; the process is
started by the first card to draw and ends when there has been nothing to draw for a while. A PNG is kept in
CARD_CACHE_DIR under its content hash; the first send uploads it and Telegram's file_id is kept
in the store by card, language and hash, so every later send is a few bytes. A content change
changes the hash: a new drawing and a new upload, never a stale picture.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bot.cards.build import method_card
from bot.cards.model import Card
from bot.cards.text import require_shaping
from bot.content import Library
from bot.store import CardFileKey, CardStore

log = logging.getLogger(__name__)

KEEP_UNUSED_DAYS = 7  # a cached PNG nobody read for this long is deleted at the next start
RECHECK_SECONDS = 60  # how long "Telegram has no copy of this card" is believed
# One: the bot's own process needs the other core of a small machine, and a card drawn once is
# sent by file_id ever after, so drawing is rare: the process (~70 MB) ends when idle this long.
RENDER_PROCESSES = 1
RENDER_IDLE_SECONDS = 300.0
WRONG_FILE = "wrong file identifier"  # Telegram's 400 for a file_id it does not know


def key_of(card: Card) -> CardFileKey:
    return CardFileKey(card.name, card.language, card.digest)


class CardService:
    """Renders, caches and sends picture cards; one per application (`Services.cards`)."""

    def __init__(
        self,
        library: Library,
        store: CardStore,
        cache_dir: Path,
        *,
        clock: Callable[[], datetime],
        render_idle_seconds: float = RENDER_IDLE_SECONDS,
    ) -> None:
        require_shaping()  # at start-up: broken Bangla is never drawn, not even once
        self.library = library
        self.store = store
        self.cache_dir = cache_dir
        self.clock = clock
        self.renders = 0  # cards drawn (not read from the disk cache)
        self._pool: ProcessPoolExecutor | None = None
        self._render_idle_seconds = render_idle_seconds
        self._retiring: asyncio.TimerHandle | None = None
        self._rendering = 0
        self._file_ids: dict[CardFileKey, str] = {}  # found in the store, or uploaded here
        self._missing: dict[CardFileKey, float] = {}  # when the store last had none
        self._uploading: dict[CardFileKey, asyncio.Lock] = {}
        self.uploading_ahead: asyncio.Task[int] | None = None
        #: (chat, card name, language) of pictures on their way (handlers.cards: a second tap)
        self.sharing: set[tuple[int, str, str]] = set()

    # drawing

    async def png(self, card: Card) -> bytes:
        """The card's PNG: from the disk cache, else drawn in the worker process (and cached)."""
        path = self.cache_dir / f"{card.digest}.png"
        cached = await asyncio.to_thread(_read_and_touch, path)
        if cached is not None:
            return cached
        data = await self._render(card)
        self.renders += 1
        await asyncio.to_thread(_write_atomically, path, data)
        return data

    async def _render(self, card: Card) -> bytes:
        from bot.cards.draw import render_checked  # the render process's; loaded when first used

        loop = asyncio.get_running_loop()
        self._rendering += 1
        try:
            try:
                data, problems = await loop.run_in_executor(self._executor(), render_checked, card)
            except BrokenProcessPool:  # the worker died (killed, out of memory): a new one, once
                log.warning("the card render process died; starting a new one")
                self._pool = None
                data, problems = await loop.run_in_executor(self._executor(), render_checked, card)
        finally:
            self._rendering -= 1
            self._retire_when_idle(loop)
        for problem in problems:
            log.warning(
                "picture card %s (%s): %s (run ayerpoth content check)",
                card.name,
                card.language,
                problem,
            )
        return data

    def _executor(self) -> ProcessPoolExecutor:
        """Started on first use, so start-up does not wait for it. Spawned, not forked: the
        bot's process has threads (SQLite's), which a fork would copy mid-flight."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=RENDER_PROCESSES, mp_context=context)
        return self._pool

    def _retire_when_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._retiring is not None:
            self._retiring.cancel()
        self._retiring = loop.call_later(self._render_idle_seconds, self._retire)

    def _retire(self) -> None:
        """End the render process: nothing was drawn for a while (the next card starts it)."""
        self._retiring = None
        if self._rendering == 0 and self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False)  # idle: it exits at once, nobody waits for it

    # Telegram's copies

    async def file_id(self, card: Card) -> str | None:
        """The file_id of this very drawing, if Telegram has it. Found ones are kept in memory
        (a digest's picture never changes); that there is none is asked again after
        RECHECK_SECONDS, since another process on the same database may have uploaded it."""
        key = key_of(card)
        if (found := self._file_ids.get(key)) is not None:
            return found
        asked = self._missing.get(key)
        if asked is not None and time.monotonic() - asked < RECHECK_SECONDS:
            return None
        found = await self.store.card_file_id(key)
        if found is None:
            self._missing[key] = time.monotonic()
        else:
            self._file_ids[key] = found
            self._missing.pop(key, None)
        return found

    async def _remember(self, card: Card, file_id: str) -> None:
        key = key_of(card)
        self._file_ids[key] = file_id
        self._missing.pop(key, None)
        await self.store.save_card_file_id(key, file_id, now=self.clock())

    async def send(
        self,
        bot: ExtBot[Any],
        chat_id: int | str,
        card: Card,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        rate_limit_args: Mapping[str, Any] | None = None,
    ) -> Message:
        """Send the card as a photo with its caption: by file_id when Telegram has it, else
        uploaded once (who shares it meanwhile waits for that upload and reuses it)."""

        async def send(photo: str | InputFile) -> Message:
            return await bot.send_photo(
                chat_id,
                photo,
                caption=card.caption,
                reply_markup=reply_markup,
                rate_limit_args=rate_limit_args,
            )

        forgotten = None
        if (file_id := await self.file_id(card)) is not None:
            try:
                return await send(file_id)
            except BadRequest as exc:
                if WRONG_FILE not in exc.message.lower():
                    raise
                log.warning("Telegram no longer knows %s's file_id; uploading it again", card.name)
                self._file_ids.pop(key_of(card), None)
                forgotten = file_id
        lock = self._uploading.setdefault(key_of(card), asyncio.Lock())
        async with lock:
            file_id = await self.file_id(card)
            if file_id is not None and file_id != forgotten:  # uploaded while we waited
                return await send(file_id)
            png = await self.png(card)
            filename = f"{card.name.replace(':', '-')}.{card.language}.png"
            message = await send(InputFile(png, filename=filename))
            if message.photo:
                await self._remember(card, message.photo[-1].file_id)
            return message

    # in the background, after start-up

    def upload_ahead(self, bot: ExtBot[Any], chat_id: int | str) -> asyncio.Task[int]:
        """Start uploading, to `chat_id`, the method cards Telegram does not have yet, so
        inline answers have their pictures from the first share on; the task is kept in
        `uploading_ahead` (the tests and the benchmark wait for it)."""
        self.uploading_ahead = asyncio.ensure_future(self._upload_ahead(bot, chat_id))
        return self.uploading_ahead

    async def _upload_ahead(self, bot: ExtBot[Any], chat_id: int | str) -> int:
        """On the broadcast lane, so people tapping buttons are not queued behind the uploads;
        returns how many were uploaded."""
        sent = 0
        for language in self.library.packs:
            for method_id in self.library.method_ids:
                card = method_card(self.library, language, method_id, bot.username)
                if await self.file_id(card) is not None:
                    continue
                try:
                    await self.send(bot, chat_id, card, rate_limit_args={"lane": "broadcast"})
                except TelegramError as exc:
                    log.error("could not upload cards to CARD_UPLOAD_CHAT_ID %s: %s", chat_id, exc)
                    return sent
                sent += 1
        if sent:
            log.info("%d picture card(s) uploaded to %s for inline answers", sent, chat_id)
        return sent

    def prune(self) -> int:
        """Delete cached PNGs nobody used for KEEP_UNUSED_DAYS (the drawings of older content
        among them); blocking, for a thread. Returns how many."""
        if not self.cache_dir.is_dir():
            return 0
        oldest = time.time() - KEEP_UNUSED_DAYS * 86400
        removed = 0
        for path in self.cache_dir.glob("*.png"):
            try:
                if path.stat().st_mtime < oldest:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    async def close(self) -> None:
        """Stop the render process (the app cancels the background work before)."""
        if self._retiring is not None:
            self._retiring.cancel()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def _read_and_touch(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    os.utime(path)  # used now: pruning goes by the last use
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (another share of the card) sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(path)
