"""Logging: one readable line per event, and no secret (the bot token) in any line at any level."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Any token-shaped string, even one we were not told about (e.g. inside a URL in a traceback).
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
        return redact(super().format(record), self._secrets)


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
