"""The content library: methods, pages, short answers, the quiz and UI strings per language.

Editors change files under `content/` (see content/README.md); the bot reads and checks them once,
at start-up. One module per job:

- model: what the content is made of, each field declaring how it is checked;
- fields, problems: the one reader that applies those declarations, and `file:line: message`;
- loading, quiz, checks: reading every file, then checking the whole library;
- library, render: read-only access for handlers, and rendering in each language;
- index: what free-text search (bot/search.py) is built from.

What the rest of the bot uses is importable from here.
"""

from bot.content.library import LanguagePack, Library
from bot.content.loading import check_content, load_library
from bot.content.model import (
    COLLECTIONS,
    PAGE_IDS,
    QUIZ_FITS,
    QUIZ_TOP,
    SECTIONS,
    Entry,
    Method,
    Page,
    QuizAnswer,
    QuizQuestion,
    QuizText,
)
from bot.content.problems import ContentError, Problem, source_line
from bot.content.render import PAGE_LIMIT, SCREEN_WORDS, paginate, screen_words, to_bangla_digits

__all__ = [
    "COLLECTIONS",
    "PAGE_IDS",
    "PAGE_LIMIT",
    "QUIZ_FITS",
    "QUIZ_TOP",
    "SCREEN_WORDS",
    "SECTIONS",
    "ContentError",
    "Entry",
    "LanguagePack",
    "Library",
    "Method",
    "Page",
    "Problem",
    "QuizAnswer",
    "QuizQuestion",
    "QuizText",
    "check_content",
    "load_library",
    "paginate",
    "screen_words",
    "source_line",
    "to_bangla_digits",
]
