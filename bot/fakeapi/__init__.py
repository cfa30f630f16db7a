"""A fake Telegram Bot API for tests and the playground; see server.py and driver.py."""

from bot.fakeapi.driver import ChannelDriver, GroupDriver, Reply, UserDriver
from bot.fakeapi.models import (
    BotMessage,
    Call,
    CallbackAnswer,
    ChatEvent,
    Faults,
    FloodRules,
    InlineAnswer,
)
from bot.fakeapi.server import FakeBotAPI
from bot.fakeapi.tracking import TrackingUpdateProcessor

__all__ = [
    "BotMessage",
    "Call",
    "CallbackAnswer",
    "ChannelDriver",
    "ChatEvent",
    "FakeBotAPI",
    "Faults",
    "FloodRules",
    "GroupDriver",
    "InlineAnswer",
    "Reply",
    "TrackingUpdateProcessor",
    "UserDriver",
]
