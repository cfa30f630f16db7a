"""What a card says: its blocks of text, each from one place in the content, and its link.

A card is plain data (it crosses into the render process and is hashed): the text comes from the
content library as it is (titles, costs, steps, tips, UI strings), never written twice. Its
`digest` covers everything that changes its pixels, so a content change gives a new image, a new
cache file and a new upload, never a stale one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from bot.cards.text import fonts_digest

# Bump when the drawing code changes what a card looks like: every card gets a new hash.
LAYOUT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Source:
    """Where a block's text is written: a content file (relative to the content folder) and
    its key, inside the nth `[[table]]` when given; the check names it in its messages."""

    file: str
    key: str
    table: str | None = None
    nth: int = 0


@dataclass(frozen=True, slots=True)
class Block:
    """A piece of text in a style (see bot.cards.draw.STYLES); `prefix` hangs in the margin."""

    style: str
    text: str
    source: Source = field(compare=False)
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class Footer:
    """The bottom of every card: the bot's name, what the QR code does, the link (which has
    the bot's @username in it)."""

    brand: str
    call: str
    link: str  # https://t.me/<bot>?start=<payload>
    sources: tuple[Source, ...] = field(compare=False)  # of brand, call, link


@dataclass(frozen=True, slots=True)
class Card:
    """One picture: `name` says which (method:<id>, tip:<id>:<n>, quiz:<a>+<b>+<c>)."""

    name: str
    language: str
    blocks: tuple[Block, ...]
    footer: Footer
    caption: str  # HTML, sent with the photo

    @property
    def digest(self) -> str:
        """A hash of everything drawn, the layout version and the fonts."""
        drawn = {
            "layout": LAYOUT_VERSION,
            "fonts": fonts_digest(),
            "language": self.language,
            "blocks": [(b.style, b.text, b.prefix) for b in self.blocks],
            "footer": {k: v for k, v in asdict(self.footer).items() if k != "sources"},
        }
        encoded = json.dumps(drawn, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()[:32]
