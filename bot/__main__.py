"""`python -m bot` does the same as the `ayerpoth` console script."""

from bot.cli import main

raise SystemExit(main())
