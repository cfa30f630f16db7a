"""Text on cards: the shipped fonts, shaping by Raqm, script runs and line breaking.

Bangla needs a shaping engine: without one, vowel signs land on the wrong side of their
consonant and conjuncts fall apart. Pillow shapes with Raqm (HarfBuzz + FriBiDi) when asked to,
and quietly falls back to its basic layout when Raqm is missing; `require_shaping` turns that
into a clear error, and every font here is opened with Raqm or not at all.

Noto Sans Bengali has Bengali letters and ASCII punctuation but no Latin letters, so a line is
cut into runs: Bengali script in the Bengali font, other letters in Noto Sans, and spaces,
digits and punctuation in the font of the run they stand in, when it has them.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import ImageFont, features

FONTS = Path(str(resources.files("bot.cards"))) / "fonts"
# (script, weight) -> file; a run's script picks the font, the style's weight the file.
FONT_FILES = {
    ("bn", "regular"): "NotoSansBengali-Regular.ttf",
    ("bn", "bold"): "NotoSansBengali-Bold.ttf",
    ("latin", "regular"): "NotoSans-Regular.ttf",
    ("latin", "bold"): "NotoSans-Bold.ttf",
}
SCRIPTS = ("bn", "latin")
# Bengali block, the dandas Bengali shares with Devanagari, and the joiners that steer conjuncts.
_BENGALI = frozenset(range(0x0980, 0x0A00)) | {0x0964, 0x0965, 0x200C, 0x200D}

NO_SHAPING = (
    "Bangla cannot be drawn correctly: Pillow's Raqm layout (HarfBuzz and FriBiDi) is not "
    "available, and without it vowel signs and conjuncts come out wrong. Pillow's wheels include "
    "Raqm but load FriBiDi from the system: install it (Debian: apt-get install libfribidi0), "
    "or a Pillow built with Raqm."
)


class ShapingUnavailable(RuntimeError):
    """Pillow cannot shape complex scripts here; cards would show broken Bangla."""

    def __init__(self) -> None:
        super().__init__(NO_SHAPING)


def require_shaping() -> None:
    """Raise ShapingUnavailable unless Pillow lays text out with Raqm (checked once)."""
    if not _has_raqm():
        raise ShapingUnavailable


@functools.cache
def _has_raqm() -> bool:
    return bool(features.check("raqm"))


@functools.cache
def font(script: str, weight: str, size: int, engine: ImageFont.Layout) -> ImageFont.FreeTypeFont:
    """One of the shipped fonts; with Raqm (`engine` is BASIC only to prove what it breaks)."""
    if engine is ImageFont.Layout.RAQM:
        require_shaping()
    loaded = ImageFont.truetype(str(FONTS / FONT_FILES[script, weight]), size, layout_engine=engine)
    if loaded.layout_engine != engine:  # Pillow fell back on its own: never draw that
        raise ShapingUnavailable
    return loaded


@functools.cache
def coverage(script: str, weight: str) -> frozenset[int]:
    """The code points a font has glyphs for (its cmap)."""
    from fontTools.ttLib import TTFont  # only the check and the first layout need it

    with TTFont(FONTS / FONT_FILES[script, weight], lazy=True) as ttf:
        return frozenset(ttf.getBestCmap())


@functools.cache
def fonts_digest() -> str:
    """A hash of the font files: a changed font draws different pixels, so cards get new hashes."""
    digest = hashlib.sha256()
    for name in sorted(FONT_FILES.values()):
        digest.update((FONTS / name).read_bytes())
    return digest.hexdigest()[:16]


def _script_of(char: str) -> str | None:
    """'bn', 'latin', or None for what any script uses (spaces, digits, punctuation)."""
    if ord(char) in _BENGALI:
        return "bn"
    category = unicodedata.category(char)
    if category[0] in "LM":
        return "latin"
    return None


@dataclass(frozen=True, slots=True)
class Run:
    """A piece of one line drawn in one font."""

    script: str
    text: str


def runs(text: str, weight: str) -> list[Run]:
    """Cut text into runs by script. A neutral character goes with the run it stands in (the
    one before it; at the start, the one after) when that font has it, else with a font that has
    it; a character no font has stays in the Latin run and `missing_glyphs` reports it."""
    scripts = [_script_of(c) for c in text]
    filled: list[str | None] = list(scripts)
    last: str | None = None
    for i, script in enumerate(scripts):  # neutrals take the script before them
        filled[i] = last = script or last
    following: str | None = None
    for i in range(len(scripts) - 1, -1, -1):  # leading neutrals take the one after them
        if scripts[i] is not None:
            following = scripts[i]
        if filled[i] is None:
            filled[i] = following or "latin"
    pieces: list[Run] = []
    for char, script in zip(text, filled, strict=True):
        assert script is not None
        if ord(char) not in coverage(script, weight):
            script = next((s for s in SCRIPTS if ord(char) in coverage(s, weight)), "latin")
        if pieces and pieces[-1].script == script:
            pieces[-1] = Run(script, pieces[-1].text + char)
        else:
            pieces.append(Run(script, char))
    return pieces


def missing_glyphs(text: str, weight: str) -> list[str]:
    """Characters that no shipped font of this weight can draw (they would show as boxes)."""
    have = coverage("bn", weight) | coverage("latin", weight)
    return sorted({c for c in text if ord(c) not in have and not c.isspace()})


@dataclass(frozen=True, slots=True)
class Face:
    """A style's weight and size, and the layout engine to shape it with."""

    weight: str
    size: int
    engine: ImageFont.Layout = ImageFont.Layout.RAQM

    def font(self, script: str) -> ImageFont.FreeTypeFont:
        return font(script, self.weight, self.size, self.engine)

    def width(self, text: str) -> float:
        return _width(self, text)


@functools.lru_cache(maxsize=65536)
def _width(face: Face, text: str) -> float:
    """Shaped width of a word (or line); words recur across cards, so each is shaped once."""
    return sum(face.font(r.script).getlength(r.text) for r in runs(text, face.weight))


def wrap(text: str, face: Face, width: float) -> list[str]:
    """Break text into lines no wider than `width`, at spaces (a line break stays one); a word
    wider than a line gets a line of its own, which `too_wide` reports."""
    space = face.width(" ")
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line: list[str] = []
        used = 0.0
        for word in paragraph.split():
            size = face.width(word)
            if line and used + space + size > width:
                lines.append(" ".join(line))
                line, used = [], 0.0
            used += (space if line else 0.0) + size
            line.append(word)
        lines.append(" ".join(line))
    return lines


def too_wide(lines: Sequence[str], face: Face, width: float) -> Iterator[str]:
    """Lines still wider than `width`: a single word that does not fit."""
    return (line for line in lines if face.width(line) > width + 0.5)
