"""The token never appears in a log line, at any level, tracebacks included."""

from __future__ import annotations

import io
import logging

from bot.logs import RedactingFormatter, redact

TOKEN = "123456789:TEST_fake_token_for_tests_only_000"


def test_redact_known_and_token_shaped_secrets() -> None:
    other = "987654321:ANOTHER_token_shape_0123456789abcdef"
    text = redact(f"GET https://api.telegram.org/bot{TOKEN}/getMe and {other}", [TOKEN])
    assert TOKEN not in text and other not in text
    assert "getMe" in text


def test_formatter_redacts_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter([TOKEN]))
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("calling %s", f"/bot{TOKEN}/sendMessage")
        try:
            raise RuntimeError(f"failed at https://x/bot{TOKEN}/getUpdates")
        except RuntimeError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    output = stream.getvalue()
    assert "sendMessage" in output and "Traceback" in output
    assert TOKEN not in output
