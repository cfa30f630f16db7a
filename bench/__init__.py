"""Benchmarks of the bot against bare-framework floors; see docs/performance.md. Not run by tests."""
