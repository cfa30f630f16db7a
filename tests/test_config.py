"""Configuration: good values parse; each bad one is named in one clear line; secrets never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, default_content_dir

TOKEN = "123456789:TEST_fake_token_for_tests_only_000"


def test_defaults_match_the_documented_table() -> None:
    s = Settings.from_env({})
    assert s.bot_token is None
    assert s.bot_api_url == "https://api.telegram.org"
    assert s.database_url == "sqlite:///data/ayerpoth.sqlite3"
    assert s.default_language == "bn"
    assert str(s.timezone) == "Asia/Dhaka"
    assert s.admin_ids == frozenset()
    assert (s.tip_interval_seconds, s.tip_check_seconds, s.broadcast_rate) == (604800, 60, 25)
    assert (s.webhook_url, s.webhook_listen, s.webhook_port) == (None, "127.0.0.1", 8443)
    assert s.log_level == "INFO"
    assert (s.card_cache_dir, s.card_upload_chat_id) == (Path("data/cards"), None)
    host, pid = s.worker_id.rsplit(":", 1)
    assert host and pid == str(os.getpid())


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {
            "BOT_TOKEN": TOKEN,
            "BOT_API_URL": "http://127.0.0.1:8081/",
            "DEFAULT_LANGUAGE": "en",
            "ADMIN_IDS": "12, 34,",
            "TIP_INTERVAL_SECONDS": "1.5",
            "WEBHOOK_URL": "https://bot.example.org/hook",
            "WEBHOOK_SECRET": "s3cret_value",
            "LOG_LEVEL": "debug",
            "CARD_CACHE_DIR": "/var/cache/ayerpoth",
            "CARD_UPLOAD_CHAT_ID": "-1001234567890",
            "WORKER_ID": "web-1:8444",
        }
    )
    assert (s.card_cache_dir, s.card_upload_chat_id) == (
        Path("/var/cache/ayerpoth"),
        -1001234567890,
    )
    assert Settings.from_env({"CARD_UPLOAD_CHAT_ID": "@ayerpoth_cards"}).card_upload_chat_id == (
        "@ayerpoth_cards"
    )
    assert s.bot_api_url == "http://127.0.0.1:8081"
    assert s.admin_ids == {12, 34}
    assert s.tip_interval_seconds == 1.5
    assert s.log_level == "DEBUG"
    assert s.worker_id == "web-1:8444"
    assert TOKEN not in repr(s) and "s3cret_value" not in repr(s)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN"),
        ({"DEFAULT_LANGUAGE": "fr"}, "DEFAULT_LANGUAGE"),
        ({"ADMIN_IDS": "12,abc"}, "ADMIN_IDS"),
        ({"WEBHOOK_URL": "https://bot.example.org/hook"}, "WEBHOOK_SECRET"),
        ({"WEBHOOK_URL": "ftp://x"}, "WEBHOOK_URL"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"TIP_INTERVAL_SECONDS": "-3"}, "TIP_INTERVAL_SECONDS"),
        ({"BROADCAST_RATE": "fast"}, "BROADCAST_RATE"),
        ({"WEBHOOK_PORT": "70000"}, "WEBHOOK_PORT"),
        ({"CARD_UPLOAD_CHAT_ID": "my cards"}, "CARD_UPLOAD_CHAT_ID"),
        ({"DATABASE_URL": "postgres://x"}, "DATABASE_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"WORKER_ID": "two words"}, "WORKER_ID"),
        ({"WORKER_ID": "w" * 65}, "WORKER_ID"),
        ({"BOT_API_URL": "api.telegram.org"}, "BOT_API_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_a_bad_secret_is_not_echoed() -> None:
    secret = "has spaces and !"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"WEBHOOK_URL": "https://x.example/h", "WEBHOOK_SECRET": secret})
    assert secret not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"BOT_TOKEN": "12345:short"})
    assert "short" not in str(caught.value)


def test_content_dir_defaults_to_the_checkout_and_takes_a_copy(tmp_path: Path) -> None:
    assert Settings.from_env({}).content_dir == default_content_dir()
    assert (default_content_dir() / "methods.toml").is_file()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "methods.toml").write_text('order = ["x"]\n')
    assert Settings.from_env({"CONTENT_DIR": str(copy)}).content_dir == copy


def test_a_wrong_content_dir_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CONTENT_DIR": str(tmp_path / "nope")})
    assert str(caught.value) == f"CONTENT_DIR: there is no folder {tmp_path / 'nope'}"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CONTENT_DIR": str(tmp_path)})
    assert str(caught.value) == (
        f"CONTENT_DIR: {tmp_path} is not a content folder: it has no methods.toml"
    )
    # every command says it the same way, once, instead of a line per missing file
    result = _cli("content", "check", env={"CONTENT_DIR": str(tmp_path)})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"ayerpoth: configuration error: CONTENT_DIR: {tmp_path} is not a content folder: "
        "it has no methods.toml"
    ]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # no .env file is picked up
    )


def test_cli_stops_on_a_bad_value_with_one_line() -> None:
    result = _cli("run", env={"DEFAULT_LANGUAGE": "xx", "BOT_TOKEN": TOKEN})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DEFAULT_LANGUAGE" in lines[0]
    assert TOKEN not in result.stderr


def test_cli_run_without_token_explains_botfather() -> None:
    result = _cli("run", env={})
    assert result.returncode == 2
    assert "BOT_TOKEN" in result.stderr and "@BotFather" in result.stderr


def test_cli_version() -> None:
    result = _cli("--version", env={})
    assert result.returncode == 0 and result.stdout.startswith("ayerpoth ")


def test_the_entry_module_loads_nothing_of_the_bot_until_it_runs() -> None:
    """The card render process is spawned, and a spawned interpreter imports its parent's entry
    module again (the `ayerpoth` script imports bot.__main__): that must cost nothing."""
    code = (
        "import sys, bot.__main__; "
        "print(sorted(m for m in sys.modules if m.startswith(('bot', 'telegram', 'PIL'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "['bot', 'bot.__main__']"
