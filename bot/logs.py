"""Logging: one readable line per event, no secret (the bot token) in any line at any level, and
no user's text either: PTB logs whole updates and API parameters at DEBUG, and those lines show
ids and kinds instead."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from typing import Any

from telegram import TelegramObject, Update

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Any token-shaped string, even one we were not told about (e.g. inside a URL in a traceback).
# Loggers whose DEBUG lines carry updates, API parameters or SQL parameters: their arguments are
# summarised (see `summary`).
_SCRUBBED = ("telegram", "aiosqlite")
_TOKEN_SHAPE = re.compile(r"\d{5,16}:[A-Za-z0-9_-]{30,64}")


class RedactingFormatter(logging.Formatter):
    """Formats the record, traceback included, then blanks out secrets.

    Redacting the final text (not the message template) also covers arguments, exception texts
    and tracebacks, which is where a URL with the token in it usually hides.
    """

    def __init__(self, secrets: Iterable[str], fmt: str = _FORMAT) -> None:
        super().__init__(fmt)
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if record.name.startswith(_SCRUBBED) and isinstance(args, tuple) and args:
            record = copy.copy(record)  # other handlers see the record as it was
            record.args = tuple(summary(arg) for arg in args)
        return redact(super().format(record), self._secrets)


# Values shown as they are when PTB logs API parameters or results: ids, never text.
_ID_KEYS = ("update_id", "chat_id", "message_id", "callback_query_id", "inline_query_id")


def summary(value: Any) -> Any:
    """A log argument from PTB without what people wrote: an update as its id and kind, a
    Telegram object as its type, API parameters as their names plus ids."""
    if isinstance(value, Update):
        kinds = [k for k in value.to_dict(recursive=False) if k != "update_id"]
        return f"update {value.update_id} ({', '.join(kinds) or 'empty'})"
    if isinstance(value, TelegramObject):
        return type(value).__name__
    if isinstance(value, dict):
        ids = [f"{k}={value[k]}" for k in _ID_KEYS if isinstance(value.get(k), int | str)]
        return (
            "{" + ", ".join(sorted(map(str, value))) + "}" + (f" ({', '.join(ids)})" if ids else "")
        )
    if isinstance(value, list | tuple):
        if all(isinstance(v, int) for v in value):
            return value
        return f"[{len(value)} item(s): {', '.join(str(summary(v)) for v in value[:5])}]"
    if isinstance(value, str | int | float | bool | type) or value is None:
        return value
    return type(value).__name__


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret, and anything shaped like a bot token, with a placeholder."""
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    return _TOKEN_SHAPE.sub("[REDACTED-TOKEN]", text)


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """Configure the root logger once; quiet the chatty HTTP client loggers."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL (which contains the token) at INFO; APScheduler logs each job run.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
