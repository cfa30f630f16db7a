"""Picture cards for the running bot: drawn in a worker process, kept on disk, uploaded once.

Drawing a card takes a tenth of a second of CPU, mostly with the GIL held (shaping, painting),
so it runs in a separate process and the event loop only waits for the bytes. A PNG is kept in
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
from bot.cards.draw import render_checked
from bot.cards.model import Card
from bot.cards.text import require_shaping
from bot.content import Library
from bot.store import CardFileKey, Store

log = logging.getLogger(__name__)

KEEP_UNUSED_DAYS = 7  # a cached PNG nobody read for this long is deleted at the next start
WRONG_FILE = "wrong file identifier"  # Telegram's 400 for a file_id it does not know


def key_of(card: Card) -> CardFileKey:
    return CardFileKey(card.name, card.language, card.digest)


class CardService:
    """Renders, caches and sends picture cards; one per application (`Services.cards`)."""

    def __init__(
        self,
        library: Library,
        store: Store,
        cache_dir: Path,
        *,
        clock: Callable[[], datetime],
        workers: int = 1,
    ) -> None:
        require_shaping()  # at start-up: broken Bangla is never drawn, not even once
        self.library = library
        self.store = store
        self.cache_dir = cache_dir
        self.clock = clock
        self.workers = workers
        self.renders = 0  # cards drawn (not read from the disk cache)
        self._pool: ProcessPoolExecutor | None = None
        self._file_ids: dict[CardFileKey, str | None] = {}  # the store's, read once
        self._uploading: dict[CardFileKey, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
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
        loop = asyncio.get_running_loop()
        try:
            data, problems = await loop.run_in_executor(self._executor(), render_checked, card)
        except BrokenProcessPool:  # the worker died (killed, out of memory): a new one, once
            log.warning("the card render process died; starting a new one")
            self._pool = None
            data, problems = await loop.run_in_executor(self._executor(), render_checked, card)
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
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    # Telegram's copies

    async def file_id(self, card: Card) -> str | None:
        """The file_id of this very drawing, if Telegram has it (the store's, kept in memory:
        one process per database, so this process made every change since it read it)."""
        key = key_of(card)
        if key not in self._file_ids:
            self._file_ids[key] = await self.store.card_file_id(key)
        return self._file_ids[key]

    async def _remember(self, card: Card, file_id: str | None) -> None:
        key = key_of(card)
        self._file_ids[key] = file_id
        if file_id is not None:
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

        if (file_id := await self.file_id(card)) is not None:
            try:
                return await send(file_id)
            except BadRequest as exc:
                if WRONG_FILE not in exc.message.lower():
                    raise
                log.warning("Telegram no longer knows %s's file_id; uploading it again", card.name)
                await self._remember(card, None)
        lock = self._uploading.setdefault(key_of(card), asyncio.Lock())
        async with lock:
            if (file_id := await self.file_id(card)) is not None:  # uploaded while we waited
                return await send(file_id)
            png = await self.png(card)
            filename = f"{card.name.replace(':', '-')}.{card.language}.png"
            message = await send(InputFile(png, filename=filename))
            await self._remember(card, message.photo[-1].file_id if message.photo else None)
            return message

    # in the background, after start-up

    def start(self, bot: ExtBot[Any], upload_chat_id: int | str | None) -> None:
        """Delete cached PNGs nobody used for a while; with an upload chat, upload every method
        card there that Telegram does not have yet, so inline answers have pictures at once."""
        self._run_in_background(asyncio.to_thread(_prune, self.cache_dir, KEEP_UNUSED_DAYS))
        if upload_chat_id is not None:
            self._run_in_background(self.upload_ahead(bot, upload_chat_id))

    def _run_in_background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def upload_ahead(self, bot: ExtBot[Any], chat_id: int | str) -> int:
        """Upload the method cards Telegram does not have yet to `chat_id`; how many were sent.

        On the broadcast lane, so people tapping buttons are not queued behind the uploads."""
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

    async def idle(self) -> None:
        """Wait for the background work (tests and the benchmark)."""
        while self._background:
            await asyncio.gather(*set(self._background), return_exceptions=True)

    async def close(self) -> None:
        """Stop the background work and the render process."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
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


def _prune(folder: Path, days: float) -> int:
    """Delete PNGs not used for `days` (the drawings of older content among them)."""
    if not folder.is_dir():
        return 0
    oldest = time.time() - days * 86400
    removed = 0
    for path in folder.glob("*.png"):
        try:
            if path.stat().st_mtime < oldest:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
