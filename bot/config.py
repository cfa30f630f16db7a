"""Settings from the environment (or a `.env` file), checked once at start-up.

Every bad value stops the program with one line that names the variable; secrets are never echoed.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.languages import LANGUAGES

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
HTTP_BACKENDS = ("aiohttp", "httpx")
_TOKEN_RE = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{30,64}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# A chat to upload picture cards to: a numeric id (groups and channels are negative) or @channel.
_CHAT_RE = re.compile(r"^(-?\d{1,16}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
#: Where an installed package keeps its content (package data, see pyproject.toml).
PACKAGED_CONTENT = "_content"
#: The file every content folder has (the menu order); a folder without it is the wrong one.
CONTENT_MARKER = "methods.toml"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and never its secret value."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    """The bot's whole configuration; see `.env.example` for what each setting means."""

    bot_token: str | None = field(default=None, repr=False)
    bot_api_url: str = "https://api.telegram.org"
    database_url: str = "sqlite:///data/ayerpoth.sqlite3"
    default_language: str = "bn"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Dhaka"))
    admin_ids: frozenset[int] = frozenset()
    tip_interval_seconds: float = 604800.0
    tip_check_seconds: float = 60.0
    broadcast_rate: float = 25.0
    http_backend: str = "aiohttp"
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    log_level: str = "INFO"
    content_dir: Path = field(default_factory=lambda: default_content_dir())
    card_cache_dir: Path = Path("data/cards")
    card_upload_chat_id: int | str | None = None
    # Names this process in leases (the tips dispatcher's leadership, claimed messages) and logs;
    # must differ between the processes that share one database.
    worker_id: str = field(default_factory=lambda: default_worker_id())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise ConfigError on the first bad one."""

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        token = get("BOT_TOKEN")
        if token is not None and not _TOKEN_RE.match(token):
            raise ConfigError(
                "BOT_TOKEN", "does not look like a token from @BotFather (digits:letters)"
            )
        webhook_url = get("WEBHOOK_URL")
        webhook_secret = get("WEBHOOK_SECRET")
        if webhook_url is not None:
            _require_url("WEBHOOK_URL", webhook_url, schemes=("https", "http"))
            if webhook_secret is None:
                raise ConfigError("WEBHOOK_SECRET", "is required when WEBHOOK_URL is set")
        if webhook_secret is not None and not _SECRET_RE.match(webhook_secret):
            raise ConfigError(
                "WEBHOOK_SECRET", "may only hold 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        content_dir = _content_dir(get("CONTENT_DIR"))
        return cls(
            bot_token=token,
            bot_api_url=_require_url(
                "BOT_API_URL",
                get("BOT_API_URL") or "https://api.telegram.org",
                schemes=("https", "http"),
            ).rstrip("/"),
            database_url=_database_url(get("DATABASE_URL") or "sqlite:///data/ayerpoth.sqlite3"),
            default_language=_choice(
                "DEFAULT_LANGUAGE", get("DEFAULT_LANGUAGE") or "bn", LANGUAGES
            ),
            timezone=_timezone(get("TIMEZONE") or "Asia/Dhaka"),
            admin_ids=_admin_ids(get("ADMIN_IDS") or ""),
            tip_interval_seconds=_positive(
                "TIP_INTERVAL_SECONDS", get("TIP_INTERVAL_SECONDS"), 604800
            ),
            tip_check_seconds=_positive("TIP_CHECK_SECONDS", get("TIP_CHECK_SECONDS"), 60),
            broadcast_rate=_positive("BROADCAST_RATE", get("BROADCAST_RATE"), 25),
            http_backend=_choice(
                "HTTP_BACKEND", (get("HTTP_BACKEND") or "aiohttp").lower(), HTTP_BACKENDS
            ),
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            webhook_listen=get("WEBHOOK_LISTEN") or "127.0.0.1",
            webhook_port=_port("WEBHOOK_PORT", get("WEBHOOK_PORT") or "8443"),
            log_level=_choice("LOG_LEVEL", (get("LOG_LEVEL") or "INFO").upper(), LOG_LEVELS),
            content_dir=content_dir,
            card_cache_dir=Path(get("CARD_CACHE_DIR") or "data/cards").expanduser(),
            card_upload_chat_id=_chat("CARD_UPLOAD_CHAT_ID", get("CARD_UPLOAD_CHAT_ID")),
            worker_id=_worker_id(get("WORKER_ID") or default_worker_id()),
        )

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        password = urlsplit(self.database_url).password
        return tuple(s for s in (self.bot_token, self.webhook_secret, password) if s)


def default_worker_id() -> str:
    """host:pid, unique among the processes of a cluster (and new at every start)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def default_content_dir() -> Path:
    """The content that comes with the code.

    An installed package carries it as package data, `bot/_content/` (pyproject.toml maps the
    project's `content/` folder there when building). A checkout, and an editable install of
    one, has no such folder and reads `content/` at the project root, where editors change it.
    """
    installed = Path(str(resources.files("bot"))) / PACKAGED_CONTENT
    checkout = Path(__file__).resolve().parent.parent / "content"
    return checkout if not installed.is_dir() and checkout.is_dir() else installed


def _content_dir(value: str | None) -> Path:
    """CONTENT_DIR, or else the content that comes with the code: checked to be a content folder.

    A wrong or missing folder is one clear line here instead of a "file is missing" per file.
    """
    folder = Path(value).expanduser() if value else default_content_dir()
    if (folder / CONTENT_MARKER).is_file():
        return folder
    if not value:
        raise ConfigError(
            "CONTENT_DIR",
            f"not set, and the content that comes with the bot is missing ({folder}): "
            "reinstall ayerpoth, or set CONTENT_DIR to a content folder",
        )
    if not folder.is_dir():
        raise ConfigError("CONTENT_DIR", f"there is no folder {folder}")
    raise ConfigError(
        "CONTENT_DIR", f"{folder} is not a content folder: it has no {CONTENT_MARKER}"
    )


def _require_url(name: str, value: str, *, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(
            name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
        )
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("TIMEZONE", f"unknown time zone {value!r} (e.g. Asia/Dhaka)") from None


def _admin_ids(value: str) -> frozenset[int]:
    ids = set()
    for part in filter(None, (p.strip() for p in value.split(","))):
        if not part.isdigit():
            raise ConfigError(
                "ADMIN_IDS", f"must be comma-separated numeric user ids (got {part!r})"
            )
        ids.add(int(part))
    return frozenset(ids)


def _positive(name: str, value: str | None, default: float) -> float:
    if value is None:
        return float(default)
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number (got {value!r})") from None
    if not number > 0 or number == float("inf"):
        raise ConfigError(name, f"must be a positive number (got {value!r})")
    return number


def _chat(name: str, value: str | None) -> int | str | None:
    if value is None:
        return None
    if not _CHAT_RE.match(value):
        raise ConfigError(
            name, f"must be a chat id like -1001234567890 or @channel (got {value!r})"
        )
    return value if value.startswith("@") else int(value)


def _port(name: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(name, f"must be a port number 1-65535 (got {value!r})")
    return int(value)


def _database_url(value: str) -> str:
    if value.startswith(("postgresql://", "postgres://")):
        if not urlsplit(value).path.strip("/") and "dbname=" not in value:
            raise ConfigError("DATABASE_URL", "names no database (postgresql://host/ayerpoth)")
        return value
    if not value.startswith("sqlite:///"):
        raise ConfigError(
            "DATABASE_URL",
            "must start with sqlite:/// (e.g. sqlite:///data/ayerpoth.sqlite3) "
            "or postgresql:// (e.g. postgresql://ayerpoth@localhost/ayerpoth)",
        )
    if value == "sqlite:///":
        raise ConfigError("DATABASE_URL", "names no file")
    return value


def _worker_id(value: str) -> str:
    if not re.fullmatch(r"[\w.:@-]{1,64}", value):
        raise ConfigError("WORKER_ID", "1-64 letters, digits and . : @ - _ only")
    return value
