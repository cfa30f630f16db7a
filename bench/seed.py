"""Stores pre-filled with many users (and due tips), written straight into SQLite for speed."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from bot.store import open_store

METHODS = ("freelancing", "writing", "youtube", "affiliate")


async def seed_store(
    path: Path, users: int, *, tip_recipients: Sequence[int] = (), cache: Path | None = None
) -> Path:
    """A migrated store at `path` with `users` users (ids 1.. plus `tip_recipients`), the
    recipients each with one tip due now. Plain user stores are cached and copied.
    """
    template = cache / f"users-{users}.sqlite3" if cache and not tip_recipients else None
    if template is not None and template.exists():
        shutil.copyfile(template, path)
        return path

    store = await open_store(f"sqlite:///{path}")  # the schema, by the bot's own migrations
    await store.close()
    now = int(time.time())
    db = sqlite3.connect(path)
    with db:
        plain = users - len(tip_recipients)
        languages = ("bn", "en", None)
        db.executemany(
            "INSERT INTO users (user_id, language, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            (
                (
                    user_id,
                    languages[user_id % 3],
                    now - 86400 * (user_id % 90),
                    now - user_id % 86400,
                )
                for user_id in [*range(1, plain + 1), *tip_recipients]
            ),
        )
        db.executemany(
            """INSERT INTO subscriptions (user_id, method_id, position, next_due, weekday, hour,
            minute, subscribed_at) VALUES (?, ?, 0, ?, 0, 9, 0, ?)""",
            ((u, METHODS[u % len(METHODS)], now - 60, now - 3600) for u in tip_recipients),
        )
    db.close()
    if template is not None:
        template.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, template)
    return path
