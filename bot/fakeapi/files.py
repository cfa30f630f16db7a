"""Files the fake Bot API was sent: uploads get file_ids, and only those ids may be sent again.

Telegram keeps every uploaded file and answers a send by file_id with the same file; an id it
never issued is "wrong file identifier". Photos are checked as Telegram checks them (a PNG or
JPEG, width + height at most 10,000, a side at most 20 times the other) and come back as the
sizes Telegram makes of them. The bytes are kept so a test can look at what a person would see.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import Any

from bot.fakeapi.validation import WRONG_FILE, bad_request

MAX_PHOTO_BYTES = 10 * 1024 * 1024
# Telegram's photo sizes: s, m, x, y, w by their longest side; the largest is the original's.
PHOTO_SIDES = (90, 320, 800, 1280, 2560)


@dataclass(frozen=True)
class StoredFile:
    kind: str  # "photo" or "document"
    data: bytes
    media: dict[str, Any]  # what a message carries: PhotoSizes (photo) or a Document


class FileStore:
    """Every file the fake was sent, by each of its file_ids."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._by_id: dict[str, StoredFile] = {}

    def upload(self, kind: str, upload: dict[str, Any]) -> StoredFile:
        data: bytes = upload["data"]
        if kind == "photo":
            stored = StoredFile(kind, data, {"sizes": self._photo_sizes(data)})
            ids = [size["file_id"] for size in stored.media["sizes"]]
        else:
            number = next(self._numbers)
            media = {
                "file_id": f"fake-{kind}-{number}",
                "file_unique_id": f"u{kind}{number}",
                "file_size": len(data),
                "file_name": upload["filename"],
            }
            stored = StoredFile(kind, data, media)
            ids = [media["file_id"]]
        for file_id in ids:
            self._by_id[file_id] = stored
        return stored

    def get(self, kind: str, file_id: str) -> StoredFile:
        """A file sent again by id; Telegram refuses ids it never issued (or of another kind)."""
        stored = self._by_id.get(file_id)
        if stored is None or stored.kind != kind:
            raise bad_request(WRONG_FILE)
        return stored

    def knows(self, kind: str, file_id: object) -> bool:
        stored = self._by_id.get(str(file_id))
        return stored is not None and stored.kind == kind

    def data(self, file_id: str) -> bytes:
        """The bytes of an uploaded file (tests look at the pictures the bot sent)."""
        return self._by_id[file_id].data

    def _photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        if len(data) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        width, height = image_size(data)
        if width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        longest = max(width, height)
        sides = [side for side in PHOTO_SIDES if side < longest] + [min(longest, PHOTO_SIDES[-1])]
        sizes = []
        for side in sides:
            number = next(self._numbers)
            scale = side / longest
            sizes.append(
                {
                    "file_id": f"fake-photo-{number}",
                    "file_unique_id": f"uphoto{number}",
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                }
            )
        sizes[-1]["file_size"] = len(data)
        return sizes


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG or JPEG header; anything else is not a photo Telegram takes."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        if width and height:
            return width, height
    if data[:2] == b"\xff\xd8":
        found = _jpeg_size(data)
        if found is not None:
            return found
    raise bad_request("IMAGE_PROCESS_FAILED")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame size in a JPEG's start-of-frame segment (SOF0-SOF15 but DHT, JPG, DAC)."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return (width, height) if width and height else None
        at += 2 + length
    return None
