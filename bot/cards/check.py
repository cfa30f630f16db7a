"""The content check's part for picture cards: every card laid out as it is drawn.

Run by `ayerpoth content check` (not at start-up: laying out every card takes a second or two).
A text that does not fit its box, a word wider than the card or a character the fonts lack is a
problem at its file and key; so is a caption Telegram would refuse.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.cards.build import method_card, quiz_card, tip_card
from bot.cards.draw import layout
from bot.cards.model import Card, Source
from bot.cards.text import require_shaping
from bot.content import QUIZ_TOP, Library, Problem, source_line
from bot.telegram_html import TelegramHTMLError, parse_html, utf16_len

CAPTION_LIMIT = 1024
# Cards name the bot; a check has no token to ask Telegram, so it lays them out with this name.
CHECK_USERNAME = "AyerPothBot"


def every_card(library: Library, bot_username: str = CHECK_USERNAME) -> Iterator[Card]:
    """Every method and tip card in every language, and quiz results that put every method in
    every place of the three (the places look alike, so each method in each is enough)."""
    ids = library.method_ids
    for language in library.packs:
        for method_id in ids:
            yield method_card(library, language, method_id, bot_username)
            for index in range(library.tip_count(method_id)):
                yield tip_card(library, language, method_id, index, bot_username)
        for start in range(0, len(ids), QUIZ_TOP):
            picks = [ids[(start + n) % len(ids)] for n in range(QUIZ_TOP)]
            yield quiz_card(library, language, picks, bot_username)


def check_cards(library: Library) -> list[Problem]:
    """Problems of the picture cards, each once (a UI string is on many cards); raises
    ShapingUnavailable when Bangla cannot be shaped here."""
    require_shaping()
    found: dict[tuple[Source, str], str] = {}
    for card in every_card(library):
        laid = layout(card)
        for overflow in laid.problems:
            found.setdefault((overflow.source, overflow.message), f"{card.name} ({card.language})")
        try:
            plain = parse_html(card.caption).plain
        except TelegramHTMLError as exc:
            key = "card.caption_quiz" if card.name.startswith("quiz:") else "card.caption"
            found.setdefault(
                (Source(f"{card.language}/ui.toml", key), f"caption: {exc}"), card.name
            )
            continue
        if utf16_len(plain) > CAPTION_LIMIT:
            message = f"caption is {utf16_len(plain)} characters, Telegram allows {CAPTION_LIMIT}"
            found.setdefault((card.blocks[0].source, message), card.name)
    root = library.root
    return [
        Problem(
            root / source.file,
            source_line(root, source.file, source.key, table=source.table, nth=source.nth),
            f"{source.key}: {message} (picture card {where})",
        )
        for (source, message), where in found.items()
    ]
