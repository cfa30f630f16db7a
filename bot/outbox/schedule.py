"""When a subscription's next tip is due: weekly slots in the user's time zone, no drift, no backlog."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Settings

WEEK = timedelta(days=7)


def next_due(
    due: datetime,
    now: datetime,
    interval: timedelta,
    *,
    weekday: int,
    hour: int,
    minute: int,
    tz: ZoneInfo,
) -> datetime:
    """One interval after the last due time; weekly tips keep the user's weekday and hour.

    Counting from the due time (not the send time) stops a schedule from drifting; skipping
    forward past `now` means a bot that was down for weeks sends one tip, not a backlog.
    """
    following = due + interval
    if interval >= WEEK:  # the slot nearest to a week on, so a late send does not shift the day
        following = next_slot(
            following - WEEK / 2, weekday=weekday, hour=hour, minute=minute, tz=tz
        )
    while following <= now:
        following += WEEK if interval >= WEEK else interval
    return following


def next_tip_due(
    settings: Settings, due: datetime, now: datetime, *, weekday: int, hour: int, minute: int
) -> datetime:
    """`next_due` with the interval and time zone the settings give."""
    return next_due(
        due,
        now,
        timedelta(seconds=settings.tip_interval_seconds),
        weekday=weekday,
        hour=hour,
        minute=minute,
        tz=settings.timezone,
    )


def next_slot(after: datetime, *, weekday: int, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    """The first moment at or after `after` that falls on weekday/hour/minute in time zone `tz`."""
    local = after.astimezone(tz)
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    slot += timedelta(days=(weekday - local.weekday()) % 7)
    if slot < local:
        slot += WEEK
    return slot.astimezone(after.tzinfo)
