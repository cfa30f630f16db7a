"""Start-up time and peak memory of the full bot with 100k and 1M users in the store.

    .venv/bin/python -m bench.startup            # 100k and 1M users
    .venv/bin/python -m bench.startup --quick    # 10k users

Start-up is measured twice: loading and checking the content in a fresh interpreter (what every
start pays), and from spawning `bench.bots.full` to its first reply (imports, store, getMe,
commands, first poll). Peak RSS (VmHWM) is read after 200 people tapped 3 times each.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

from bench.run import CONTENDERS, measure

CONTENT_LOAD = (
    "import time; t = time.perf_counter(); from bot.config import Settings; "
    "from bot.content import load_library; load_library(Settings().content_dir); "
    "print(time.perf_counter() - t)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = (10_000,) if args.quick else (100_000, 1_000_000)
    loads = [
        float(
            subprocess.run(
                [sys.executable, "-c", CONTENT_LOAD], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    print(f"content load + check (imports included): best {min(loads):.2f} s of 3")
    full = next(c for c in CONTENDERS if c.name == "full-bot")
    print("| users in store | spawn to first reply (s) | peak RSS (MB) |\n|---|---|---|")
    for size in sizes:
        row = asyncio.run(measure(full, 200, 3, size))
        print(f"| {size:,} | {row['startup_s']:.2f} | {row['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
