"""`python -m bot` and the `ayerpoth` console script (pyproject.toml).

The command's code is imported only when it runs: the card render process is spawned
(bot.cards.service), and a spawned interpreter imports its parent's entry module again before
it draws anything. With `from bot.cli import main` up here that import cost ~0.5 s of CPU at
every start of the render process, more than drawing a card (docs/performance.md).
"""


def main() -> int:
    from bot.cli import main as run_command

    return run_command()


if __name__ == "__main__":
    raise SystemExit(main())
