"""One module per user-facing flow; `bot.app` registers their handlers in order."""
