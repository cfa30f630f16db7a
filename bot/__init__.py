"""Ayer Poth (আয়ের পথ): a Bangla-first Telegram bot about ways of earning online."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ayerpoth")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
