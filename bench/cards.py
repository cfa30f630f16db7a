"""Render time of picture cards, as the bot gets them: cold (drawn) and cached (read from disk).

    .venv/bin/python -m bench.cards            # every method card, 24 tips, 6 quiz results
    .venv/bin/python -m bench.cards --quick    # a few of each

Through `CardService.png`, as a share does: cold is a card not on disk yet, drawn in the render
process (the process already running; starting it is shown on its own line); cached is the same
card read back from CARD_CACHE_DIR. Also the drawing alone in this process (layout, paint, PNG),
without the hop to the render process. Wall times in ms (the machine is shared: see
docs/performance.md, "Noise").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.cards.build import method_card, quiz_card, tip_card
from bot.cards.check import CHECK_USERNAME
from bot.cards.draw import render_png
from bot.cards.model import Card
from bot.cards.service import CardService
from bot.config import Settings
from bot.content import Library, load_library
from bot.store import open_store


def cards_to_time(library: Library, quick: bool) -> dict[str, list[Card]]:
    ids = library.method_ids[:2] if quick else library.method_ids
    languages = ("bn",) if quick else tuple(library.packs)
    tips = 1 if quick else 3
    return {
        "method": [
            method_card(library, lang, m, CHECK_USERNAME) for lang in languages for m in ids
        ],
        "tip": [
            tip_card(library, lang, m, i, CHECK_USERNAME)
            for lang in languages
            for m in ids
            for i in range(tips)
        ],
        "quiz": [
            quiz_card(library, lang, [ids[(s + n) % len(ids)] for n in range(3)], CHECK_USERNAME)
            for lang in languages
            for s in range(0, len(ids), 3)
        ],
    }


async def timed(work: Awaitable[object]) -> float:
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


async def each(cards: list[Card], work: Callable[[Card], Awaitable[object]]) -> list[float]:
    """Milliseconds per card, one card after another (as shares of different cards come)."""
    return [await timed(work(card)) for card in cards]


def row(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    median = statistics.median(times)
    return f"| {name} | {len(times)} | {median:.1f} | {p95:.1f} | {max(times):.1f} |"


async def measure(quick: bool) -> None:
    library = load_library(Settings().content_dir)
    groups = cards_to_time(library, quick)
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{Path(folder) / 'bot.sqlite3'}")
        cards = CardService(library, store, Path(folder) / "cards", clock=lambda: datetime.now(UTC))
        try:
            warm_up = tip_card(library, "en", library.method_ids[-1], 11, CHECK_USERNAME)
            first = await timed(cards.png(warm_up))
            print(f"first card, starting the render process: {first:.0f} ms\n")
            print("| card | n | median ms | p95 ms | max ms |\n|---|---|---|---|---|")
            for kind, group in groups.items():
                cold = await each(group, cards.png)
                cached = await each(group, cards.png)
                in_process = await each(group, lambda card: asyncio.to_thread(render_png, card))
                print(row(f"{kind}, cold (render process)", cold))
                print(row(f"{kind}, cached (disk)", cached))
                print(row(f"{kind}, drawn in this process", in_process))
        finally:
            await cards.close()
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
