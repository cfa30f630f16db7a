"""The store's records: frozen values that cross the `Store` boundary, whatever the backend.

Times are aware UTC datetimes (an injected clock passes them in); backends keep unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum

MAX_PATHS = 3
"""How many earning paths one user may follow at once."""
MAX_STEPS = 63
"""Steps of a path are bits of one signed 64-bit INTEGER: indexes 0..62."""
ACTIVE_DAYS = 7
"""`Stats` counts users seen, and tips sent, in this many recent days."""
UNANSWERED_DAYS = 90  # unanswered questions are kept this long after they were last asked
TOUCH_INTERVAL = timedelta(seconds=60)  # how stale users.last_seen may get, to spare writes
RECENT_USERS = 20_000  # users whose row and paths are kept in memory, a few MB


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """A Telegram user who has written to the bot; `language` is None until they choose one."""

    user_id: int
    language: str | None
    language_hint: str | None  # Telegram's language_code, a default for the language question
    first_seen: datetime
    last_seen: datetime
    blocked: bool  # they blocked the bot: proactive messages are paused
    blocked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Path:
    """An earning method the user chose to follow, with the steps they ticked off."""

    method_id: str
    chosen_at: datetime
    done_steps: frozenset[int]


class AddPathResult(Enum):
    ADDED = "added"
    ALREADY = "already"  # the user already follows this method; nothing changed
    FULL = "full"  # the user already follows MAX_PATHS methods; nothing changed


@dataclass(frozen=True, slots=True)
class QuizResult:
    answers: dict[str, str]
    ranking: tuple[str, ...]  # method ids, best fit first
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    """Weekly tips for one method; `position` is the index of the next tip to send."""

    user_id: int
    method_id: str
    position: int
    next_due: datetime
    weekday: int  # 0 = Monday .. 6 = Sunday, in the user's time zone (the caller's business)
    hour: int
    minute: int
    active: bool  # False after unsubscribe or after the last tip; position is kept
    paused: bool  # True while the user has the bot blocked
    subscribed_at: datetime


class DeliveryStatus(StrEnum):
    """How sending one tip or broadcast message ended."""

    SENT = "sent"
    BLOCKED = "blocked"  # Telegram said the user blocked the bot (or the account is gone)
    FAILED = "failed"  # a permanent error for this message; it will not be retried by itself


@dataclass(frozen=True, slots=True)
class TipClaim:
    """A due tip leased to one sender until `claimed_until`."""

    user_id: int
    method_id: str
    position: int
    language: str | None
    claimed_until: datetime
    due: datetime  # when it was due: the next one is counted from here, not from the send time
    weekday: int
    hour: int
    minute: int
    # The steps ticked on the user's path of this method, None if it is not on their path:
    # the tip's "I did step n" button names the first step not yet done.
    done_steps: frozenset[int] | None = None
    owner: str = ""  # the process that holds the lease (Settings.worker_id)


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    text: str
    language: str | None  # only users with this language, or None for everybody
    created_by: int | None  # None once the admin's data was forgotten
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class BroadcastClaim:
    """One recipient of a broadcast, leased to one sender until `claimed_until`."""

    broadcast_id: int
    user_id: int
    text: str
    language: str | None  # the recipient's language
    claimed_until: datetime
    owner: str = ""  # the process that holds the lease (Settings.worker_id)


@dataclass(frozen=True, slots=True)
class Group:
    chat_id: int
    title: str
    language: str | None
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    active_users: int  # seen in the last ACTIVE_DAYS days
    by_language: dict[str | None, int]  # None = not chosen yet
    paths_by_method: dict[str, int]
    active_subscriptions: int  # active and not paused
    paused_subscriptions: int  # active but the user blocked the bot
    blocked_users: int
    tips_sent: int  # in the last ACTIVE_DAYS days
    groups: int


@dataclass(frozen=True, slots=True)
class AdminDraft:
    """An admin's broadcast in the making: `writing` until they send the text, then the draft
    number (their message's id) and its HTML, waiting for a confirm button."""

    writing: bool
    draft: int | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseResult:
    """What asking for a named lease (e.g. the dispatcher's leadership) gave."""

    held: bool  # the asker holds it now, until `expires_at`
    holder: str | None  # who holds it now (the asker or another process)
    taken_over_from: str | None = None  # a previous holder whose lease had run out


@dataclass(frozen=True, slots=True)
class CardFileKey:
    """A picture card as Telegram has it: which card, in which language, drawn from which
    content (its hash). A content change gives a new digest, so an old upload is never reused."""

    card: str
    language: str
    digest: str
