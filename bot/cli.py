"""The `ayerpoth` command: run the bot, chat with it offline, or check the content."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dotenv import load_dotenv

from bot import __version__
from bot.cards.text import ShapingUnavailable, require_shaping
from bot.config import ConfigError, Settings
from bot.content import ContentError, load_library
from bot.logs import setup_logging

NO_TOKEN = (
    "ayerpoth: BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (/newbot), put its "
    "token in BOT_TOKEN (environment or .env), and run again. To try the bot without a token: "
    "ayerpoth playground"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ayerpoth", description="Ayer Poth (আয়ের পথ) Telegram bot"
    )
    parser.add_argument("--version", action="version", version=f"ayerpoth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="run the bot (long polling, or a webhook when WEBHOOK_URL is set)"
    )
    play = commands.add_parser(
        "playground", help="chat with the bot in this terminal: no token, no network"
    )
    play.add_argument(
        "--database", help="keep the chat's data in this SQLite file (default: a throw-away one)"
    )
    play.add_argument("--no-color", action="store_true", help="plain text, no terminal colours")
    database = commands.add_parser("db", help="work with the database")
    database_commands = database.add_subparsers(dest="action", required=True)
    copy = database_commands.add_parser(
        "copy",
        help="copy every table from one database to another (e.g. SQLite to PostgreSQL), "
        "then check the row counts; stop the bot first",
    )
    copy.add_argument("source", help="e.g. sqlite:///data/ayerpoth.sqlite3")
    copy.add_argument("target", help="e.g. postgresql://ayerpoth@localhost/ayerpoth")
    copy.add_argument(
        "--replace", action="store_true", help="empty a target that already holds data first"
    )
    content = commands.add_parser("content", help="work with the content files")
    content.add_argument(
        "action", choices=["check"], help="check: report every problem as file:line: message"
    )
    args = parser.parse_args(argv)

    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"ayerpoth: configuration error: {exc}", file=sys.stderr)
        return 2

    if args.command == "content":
        return content_check(settings.content_dir)
    if args.command == "db":
        return copy_database(args.source, args.target, replace=args.replace)
    try:
        require_shaping()  # the bot draws Bangla on picture cards: never broken, so not at all
    except ShapingUnavailable as exc:
        print(f"ayerpoth: {exc}", file=sys.stderr)
        return 1
    if args.command == "playground":
        from bot.playground import run_playground

        return run_playground(
            settings, database=args.database, color=not args.no_color and sys.stdout.isatty()
        )
    return run_bot(settings)


def content_check(root: Path) -> int:
    """Every problem and warning as `file:line: message`; non-zero only for problems.

    Content that loads is then drawn as picture cards (bot.cards.check): a text too long for
    its box, or a character the fonts lack, is a problem too."""
    from bot.cards.check import check_cards

    try:
        library = load_library(root)
    except ContentError as exc:
        warnings, problems = exc.warnings, exc.lines
    else:
        warnings = library.warnings
        try:
            problems = [p.render(root) for p in check_cards(library)]
        except ShapingUnavailable as exc:
            problems = [f"picture cards: {exc}"]
    for line in (*problems, *warnings):
        print(line)
    summary = f"{len(problems)} problem(s)" if problems else "content OK"
    print(
        f"{summary}, {len(warnings)} warning(s) in {root}" if warnings else f"{summary} in {root}"
    )
    return 1 if problems else 0


def copy_database(source_url: str, target_url: str, *, replace: bool) -> int:
    """`ayerpoth db copy`: one line per table, then the total; non-zero when anything failed.
    A SQLite source must exist (opening a mistyped path would make an empty one)."""
    source_file = source_url.removeprefix("sqlite:///")
    if source_file != source_url and not Path(source_file).is_file():
        print(f"ayerpoth: db copy: no database at {source_file}", file=sys.stderr)
        return 1
    return asyncio.run(_copy_database(source_url, target_url, replace=replace))


async def _copy_database(source_url: str, target_url: str, *, replace: bool) -> int:
    from bot.store import StoreError, open_store
    from bot.store.copy import Copied, copy_database

    def report(done: Copied) -> None:
        print(f"{done.table}: {done.rows} row(s)")

    try:
        source = await open_store(source_url)
        try:
            target = await open_store(target_url)
            try:
                copied = await copy_database(source, target, replace=replace, progress=report)
            finally:
                await target.close()
        finally:
            await source.close()
    except (StoreError, ValueError) as exc:
        print(f"ayerpoth: db copy: {exc}", file=sys.stderr)
        return 1
    print(f"copied {sum(c.rows for c in copied)} row(s); every table's count checked")
    return 0


def run_bot(settings: Settings) -> int:
    if settings.bot_token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.secrets())
    from bot.app import build_application, run_event_loop, serve
    from bot.store import open_store
    from bot.workarounds import shorten_gil_switch_interval

    try:
        library = load_library(settings.content_dir)
    except ContentError as exc:
        print("ayerpoth: the content has problems, not starting:", file=sys.stderr)
        print(exc, file=sys.stderr)
        return 1
    shorten_gil_switch_interval()

    async def run() -> None:
        # The store is opened in the loop the bot runs in; closing it is the bot's last step.
        store = await open_store(settings.database_url)
        try:
            application = build_application(settings, store, library=library)
        except BaseException:
            await store.close()
            raise
        await serve(application)

    run_event_loop(run())
    return 0
