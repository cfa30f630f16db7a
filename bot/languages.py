"""The languages the bot speaks, defined once: settings, content, screens and commands use these."""

from __future__ import annotations

# Bangla first: the default, and the reference every other language's content must match.
LANGUAGES = ("bn", "en")
# Each language's name as its own speakers write it (the data screen, /stats).
LANGUAGE_NAMES = {"bn": "বাংলা", "en": "English"}


def other_language(language: str) -> str:
    """The language a switch from `language` goes to (there are two)."""
    return next(code for code in LANGUAGES if code != language)
