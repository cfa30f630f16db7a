"""Picture cards read back by machines: Tesseract's Bengali and English models, and a QR decoder.

Every method card in both languages is drawn as the bot draws it (`render_png`, the render
process's entry point), read by Tesseract, and compared with the text the card was laid out
with: at least 0.9 character similarity (normalised Levenshtein). The Bangla cards drawn with
Pillow's basic layout, which does not shape, must fall below it: this is what the test exists to
catch, and it shows that it can fail. (An English card comes out the same either way: Latin
needs no shaping.)

The QR code of every kind of card is decoded by zbar and must give the card's deep link.

Needs `tesseract` with the `ben` and `eng` models and `zbarimg` (Debian: tesseract-ocr,
tesseract-ocr-ben, zbar-tools; .ci/run installs them when missing).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CONTENT
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from bot.cards.build import method_card, quiz_card, tip_card
from bot.cards.check import CHECK_USERNAME
from bot.cards.draw import BACKGROUND, layout, render_png
from bot.cards.model import Card

THRESHOLD = 0.9
OCR_LANGUAGES = {"bn": "ben+eng", "en": "eng"}  # Bangla cards have Latin brand names too
RAQM, BASIC = ImageFont.Layout.RAQM, ImageFont.Layout.BASIC


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install {package} (.ci/run does)"
    return found


def _tesseract() -> str:
    found = _tool("tesseract", "tesseract-ocr tesseract-ocr-ben")
    models = subprocess.run([found, "--list-langs"], capture_output=True, text=True).stdout
    assert {"ben", "eng"} <= set(models.split()), f"Tesseract models missing: {models}"
    return found


def normalised(text: str) -> str:
    """One form of the text: NFC, single spaces (line breaks differ between layout and OCR)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def read_back(card: Card, engine: ImageFont.Layout = RAQM) -> float:
    """Character similarity of what Tesseract reads on the card to the card's own text."""
    laid = layout(card, engine=engine)
    image = Image.open(io.BytesIO(render_png(card, engine=engine))).convert("RGB")
    ImageDraw.Draw(image).rectangle(laid.qr_box, fill=BACKGROUND)  # a QR code is no text
    with tempfile.NamedTemporaryFile(suffix=".png") as file:
        image.save(file.name)
        read = subprocess.run(
            # psm 4: one column of text of different sizes, which is how a card is set
            [_tesseract(), file.name, "stdout", "-l", OCR_LANGUAGES[card.language], "--psm", "4"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},  # two at once, one core each
        ).stdout
    return float(Levenshtein.normalized_similarity(normalised(laid.text()), normalised(read)))


def read_all(cards: Iterable[Card], engine: ImageFont.Layout = RAQM) -> dict[str, float]:
    cards = list(cards)
    with ThreadPoolExecutor(2) as pool:
        scores = pool.map(lambda card: read_back(card, engine), cards)
        return {f"{c.name} ({c.language})": s for c, s in zip(cards, scores, strict=True)}


def method_cards(language: str) -> list[Card]:
    return [method_card(CONTENT, language, m, CHECK_USERNAME) for m in CONTENT.method_ids]


def summary(scores: dict[str, float]) -> str:
    values = list(scores.values())
    mean = sum(values) / len(values)
    return f"min {min(values):.3f}, mean {mean:.3f}, max {max(values):.3f} over {len(values)}"


@pytest.mark.parametrize("language", ["bn", "en"])
def test_every_method_card_reads_back_as_written(language: str) -> None:
    scores = read_all(method_cards(language))
    print(f"OCR similarity, {language} method cards (Raqm): {summary(scores)}")
    assert min(scores.values()) >= THRESHOLD, scores


def test_bangla_drawn_without_shaping_does_not_read_back() -> None:
    scores = read_all(method_cards("bn"), BASIC)
    print(f"OCR similarity, bn method cards (basic layout): {summary(scores)}")
    assert max(scores.values()) < THRESHOLD, scores


def test_a_tip_and_a_quiz_result_read_back_in_both_languages() -> None:
    picks = CONTENT.method_ids[:3]
    cards = [
        card
        for language in ("bn", "en")
        for card in (
            tip_card(CONTENT, language, "youtube", 0, CHECK_USERNAME),
            quiz_card(CONTENT, language, picks, CHECK_USERNAME),
        )
    ]
    scores = read_all(cards)
    print(f"OCR similarity, tip and quiz cards: {summary(scores)}")
    assert min(scores.values()) >= THRESHOLD, scores


def test_the_qr_code_of_every_kind_of_card_opens_its_deep_link(tmp_path: Path) -> None:
    cards = {
        f"https://t.me/{CHECK_USERNAME}?start=dropshipping": method_card(
            CONTENT, "bn", "dropshipping", CHECK_USERNAME
        ),
        f"https://t.me/{CHECK_USERNAME}?start=courses": tip_card(
            CONTENT, "en", "courses", 11, CHECK_USERNAME
        ),
        f"https://t.me/{CHECK_USERNAME}?start=quiz": quiz_card(
            CONTENT, "bn", CONTENT.method_ids[-3:], CHECK_USERNAME
        ),
    }
    for link, card in cards.items():
        path = tmp_path / f"{card.digest}.png"
        path.write_bytes(render_png(card))
        decoded = subprocess.run(
            [_tool("zbarimg", "zbar-tools"), "--quiet", "--raw", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert decoded.strip() == link
