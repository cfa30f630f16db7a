"""The full bot (store, templates, persistence, job queue) exactly as `ayerpoth run` builds and
runs it (uvloop, the collector settled after start-up).

`--limiter single` swaps in PTB's AIORateLimiter, the bot's limiter before issue 8, to show what
one shared 30/s bucket does to replies while tips go out. HTTP_BACKEND picks the HTTP backend.

The bot is imported inside `main`, as `ayerpoth`'s entry module does it (bot/__main__.py): the
card render process is spawned and imports this module again.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def single_bucket() -> Any:
    """AIORateLimiter(max_retries=3) that ignores the lane (it knows only a retry count)."""
    from telegram.ext import AIORateLimiter

    class SingleBucket(AIORateLimiter):
        async def process_request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["rate_limit_args"] = None
            return await super().process_request(*args, **kwargs)

    return SingleBucket(max_retries=3)


def main() -> None:
    from bot.app import build_application, run_event_loop, serve
    from bot.config import Settings
    from bot.content import load_library
    from bot.logs import setup_logging
    from bot.store import open_store
    from bot.workarounds import shorten_gil_switch_interval

    parser = argparse.ArgumentParser()
    parser.add_argument("--limiter", choices=["lanes", "single"], default="lanes")
    args = parser.parse_args()
    settings = Settings.from_env(os.environ)
    setup_logging(settings.log_level, settings.secrets())
    library = load_library(settings.content_dir)
    shorten_gil_switch_interval()  # as `ayerpoth run` does

    async def run() -> None:
        store = await open_store(settings.database_url)
        application = build_application(settings, store, library=library)
        if args.limiter == "single":
            application.bot._rate_limiter = single_bucket()
        await serve(application)  # as `ayerpoth run`: until SIGTERM

    run_event_loop(run())  # as `ayerpoth run`: uvloop


if __name__ == "__main__":
    main()
