"""The bot processes under test: each reads BOT_TOKEN and BOT_API_URL and long-polls the fake."""
