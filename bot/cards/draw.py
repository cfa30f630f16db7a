"""Drawing a card: lay its blocks out in fixed boxes, then paint them and the QR code as a PNG.

`layout` does all the shaping and line breaking and reports every block that does not fit its
box (more lines than its style allows, a word wider than the card, a character no font has):
the content check runs it for every card. `render_png` paints a layout; it is what the render
process runs, so it imports nothing of the bot but this package.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from PIL import Image, ImageDraw, ImageFont

from bot.cards.model import Block, Card, Source
from bot.cards.text import Face, missing_glyphs, require_shaping, runs, too_wide, wrap

WIDTH = 1080
# As tall as the text needs, from square to 9:16 (a phone screen); every box full still fits.
MIN_HEIGHT = 1080
MAX_HEIGHT = 1920
MARGIN = 80
TOP = 96
TEXT_WIDTH = WIDTH - 2 * MARGIN
QR_SIZE = 216
GAP = 56  # between the last block and the footer's rule, and the rule and the footer
BOTTOM = 56

BACKGROUND = (255, 253, 247)
ACCENT = (15, 118, 110)
INK = (31, 41, 55)
MUTED = (75, 85, 99)
CHIP = (204, 251, 241)
CHIP_INK = (19, 78, 74)
RULE = (209, 213, 219)
WHITE = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class Style:
    """How a block is set: weight, size (px), colour, how many lines its box holds, the space
    above it, and the indent of its text (a step's number hangs in it)."""

    weight: str
    size: int
    color: tuple[int, int, int]
    max_lines: int
    space_before: int = 0
    indent: int = 0
    leading: float = 1.5

    def face(self, engine: ImageFont.Layout) -> Face:
        return Face(self.weight, self.size, engine)

    @property
    def line_height(self) -> int:
        return round(self.size * self.leading)

    @property
    def ascent(self) -> int:
        """Baseline below the top of a line: room for Latin capitals and Bengali marks above."""
        return round(self.size * (self.leading - 0.42))


STYLES = {
    "title": Style("bold", 58, ACCENT, max_lines=2, space_before=20, leading=1.4),
    "chip": Style("bold", 34, CHIP_INK, max_lines=1, space_before=28, indent=22),
    "label": Style("bold", 36, ACCENT, max_lines=1, space_before=36),
    "body": Style("regular", 36, INK, max_lines=3, space_before=4),
    "step": Style("regular", 36, INK, max_lines=3, space_before=12, indent=58),
    "tip": Style("regular", 38, INK, max_lines=13, space_before=20),
    "pick": Style("bold", 44, INK, max_lines=2, space_before=44, indent=64, leading=1.4),
    "pick_note": Style("regular", 36, MUTED, max_lines=2, space_before=4, indent=64),
}
FOOTER_STYLES = {
    "brand": Style("bold", 40, INK, max_lines=1, leading=1.4),
    "call": Style("regular", 34, INK, max_lines=2, space_before=8),
    "link": Style("regular", 34, ACCENT, max_lines=2, space_before=8),
}
FOOTER_TEXT_WIDTH = WIDTH - 2 * MARGIN - QR_SIZE - 32
CHIP_PAD = 10  # above and below a chip's text, inside its pill


@dataclass(frozen=True, slots=True)
class Line:
    """One laid-out line: its text at (x, baseline) in a style."""

    x: int
    baseline: int
    text: str
    style: str


@dataclass(frozen=True, slots=True)
class Overflow:
    """A block that does not fit its box, and why (the same for every card it is on)."""

    source: Source
    message: str


@dataclass(frozen=True, slots=True)
class Layout:
    card: Card
    lines: tuple[Line, ...]
    problems: tuple[Overflow, ...]
    height: int
    rule: int  # the line above the footer
    qr_box: tuple[int, int, int, int]  # left, top, right, bottom
    engine: ImageFont.Layout

    def text(self) -> str:
        """What the card shows, line by line as drawn (what a reader, or OCR, should read)."""
        return "\n".join(line.text for line in self.lines)


def _style(name: str) -> Style:
    return STYLES.get(name) or FOOTER_STYLES[name]


def layout(card: Card, *, engine: ImageFont.Layout = ImageFont.Layout.RAQM) -> Layout:
    """Break every block into lines in its box; list what does not fit."""
    if engine is ImageFont.Layout.RAQM:
        require_shaping()  # the fonts are opened once; this is asked every time
    lines: list[Line] = []
    problems: list[Overflow] = []

    def place(block: Block, style_name: str, x: int, width: int, top: int) -> int:
        """Lay one block out from `top`; returns the top of what comes after it."""
        style = _style(style_name)
        face = style.face(engine)
        wrapped = wrap(block.text, face, width - style.indent)
        if len(wrapped) > style.max_lines:
            problems.append(
                Overflow(
                    block.source,
                    f"takes {len(wrapped)} lines on the picture card, its box holds "
                    f"{style.max_lines}; shorten it",
                )
            )
        for word in too_wide(wrapped, face, width - style.indent):
            problems.append(Overflow(block.source, f"{word!r} is wider than the picture card"))
        for text in (block.prefix, block.text):
            if missing := missing_glyphs(text, style.weight):
                problems.append(
                    Overflow(
                        block.source,
                        f"the picture card's fonts (Noto Sans Bengali, Noto Sans) have no "
                        f"{' '.join(missing)!r}; leave it out",
                    )
                )
        for n, text in enumerate(wrapped[: style.max_lines]):
            baseline = top + style.ascent
            if n == 0 and block.prefix:
                lines.append(Line(x, baseline, block.prefix, style_name))
            lines.append(Line(x + style.indent, baseline, text, style_name))
            top += style.line_height
        return top

    top = TOP
    for i, block in enumerate(card.blocks):
        style = STYLES[block.style]
        top = place(block, block.style, MARGIN, TEXT_WIDTH, top + (style.space_before if i else 0))
    rule = top + GAP
    footer = card.footer
    shown = footer.link.removeprefix("https://")  # what people type; the QR code has it whole
    link = _fit_link(shown, FOOTER_STYLES["link"].face(engine), FOOTER_TEXT_WIDTH)
    texts = ("brand", footer.brand), ("call", footer.call), ("link", link)
    top = rule + GAP
    for (name, text), source in zip(texts, footer.sources, strict=True):
        top = place(
            Block(name, text, source),
            name,
            MARGIN,
            FOOTER_TEXT_WIDTH,
            top + _style(name).space_before,
        )
    bottom = max(top, rule + GAP + QR_SIZE) + BOTTOM
    height = max(MIN_HEIGHT, bottom)
    if height > MAX_HEIGHT:
        problems.append(
            Overflow(
                card.blocks[0].source, f"the picture card is {height} px tall, at most {MAX_HEIGHT}"
            )
        )
    shift = height - bottom  # a short card keeps its footer at the bottom
    if shift:
        lines[:] = [
            Line(line.x, line.baseline + shift, line.text, line.style)
            if line.style in FOOTER_STYLES
            else line
            for line in lines
        ]
    qr_top = rule + shift + GAP
    qr_box = (WIDTH - MARGIN - QR_SIZE, qr_top, WIDTH - MARGIN, qr_top + QR_SIZE)
    return Layout(card, tuple(lines), tuple(problems), height, rule + shift, qr_box, engine)


def _fit_link(link: str, face: Face, width: float) -> str:
    """The link on one line if it fits; else broken before its "?start=", or, for a very long
    username, wherever it must (a link is Latin: any character is a safe place to break)."""
    if face.width(link) <= width:
        return link
    head, mark, tail = link.partition("?")
    if mark and face.width(head) <= width and face.width(mark + tail) <= width:
        return f"{head}\n{mark}{tail}"
    lines = [""]
    for char in link:
        if lines[-1] and face.width(lines[-1] + char) > width:
            lines.append("")
        lines[-1] += char
    return "\n".join(lines)


def render_png(card: Card, *, engine: ImageFont.Layout = ImageFont.Layout.RAQM) -> bytes:
    """The card as PNG bytes."""
    return paint_png(layout(card, engine=engine))


def render_checked(card: Card) -> tuple[bytes, tuple[str, ...]]:
    """The card as PNG bytes, and what did not fit (the render process runs this): content the
    check was not run on still gives a picture, with the overflow cut, and the bot says so."""
    laid = layout(card)
    return paint_png(laid), tuple(
        f"{p.source.file} {p.source.key}: {p.message}" for p in laid.problems
    )


def paint_png(laid: Layout) -> bytes:
    image = paint(laid)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def paint(laid: Layout) -> Image.Image:
    image = Image.new("RGB", (WIDTH, laid.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 20), fill=ACCENT)
    draw.line((MARGIN, laid.rule, WIDTH - MARGIN, laid.rule), fill=RULE, width=3)
    for line in laid.lines:
        style = _style(line.style)
        face = style.face(laid.engine)
        if line.style == "chip":
            top = line.baseline - style.ascent - CHIP_PAD
            bottom = line.baseline - style.ascent + style.line_height + CHIP_PAD
            right = line.x + face.width(line.text) + style.indent
            draw.rounded_rectangle(
                (line.x - style.indent, top, right, bottom), radius=(bottom - top) // 2, fill=CHIP
            )
        x = float(line.x)
        for run in runs(line.text, style.weight):
            font = face.font(run.script)
            draw.text(
                (x, line.baseline),
                run.text,
                font=font,
                fill=style.color,
                anchor="ls",
                language="bn"
                if run.script == "bn" and laid.engine is ImageFont.Layout.RAQM
                else None,
            )
            x += font.getlength(run.text)
    _paint_qr(image, laid.card.footer.link, laid.qr_box)
    return image


def _paint_qr(image: Image.Image, link: str, box: tuple[int, int, int, int]) -> None:
    """The link as a QR code on white, with the quiet zone scanners need."""
    qr = segno.make(link, error="m", micro=False)
    rows = [bytes(0 if dark else 255 for dark in row) for row in qr.matrix_iter(scale=1, border=4)]
    modules = Image.frombytes("L", (len(rows[0]), len(rows)), b"".join(rows))
    size = box[2] - box[0]
    scale = max(1, size // modules.width)
    code = modules.resize((modules.width * scale, modules.height * scale), Image.Resampling.NEAREST)
    left = box[0] + (size - code.width) // 2
    top = box[1] + (size - code.height) // 2
    ImageDraw.Draw(image).rectangle(box, fill=WHITE)
    image.paste(code.convert("RGB"), (left, top))
