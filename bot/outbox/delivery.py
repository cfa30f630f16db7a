"""What a failed tip or broadcast send means: the chat is gone, try later, or the message is bad.

Kept apart from the dispatcher so the reading of Telegram's errors (down to the wording of
"chat not found", which has no error code of its own) is in one place.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.ratelimit import retry_delay
from bot.store import DeliveryStatus

log = logging.getLogger(__name__)


def outcome(exc: TelegramError, chat_id: int, *, retry: timedelta) -> DeliveryStatus | timedelta:
    """A send to `chat_id` failed with `exc`: a final status, or how long to wait before trying
    again (`retry` for trouble that is not this chat's)."""
    if isinstance(exc, Forbidden):
        return DeliveryStatus.BLOCKED
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower():
            return DeliveryStatus.BLOCKED
        log.error("message to %s refused: %s", chat_id, exc.message)
        return DeliveryStatus.FAILED
    if isinstance(
        exc, RetryAfter
    ):  # this chat is flood-limited (or busy): later, nobody else waits
        return retry_delay(exc)
    # network trouble, 5xx, timeouts: try again later
    log.warning("message to %s not sent, will retry: %s", chat_id, exc)
    return retry
