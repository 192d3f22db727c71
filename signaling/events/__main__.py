"""`python -m signaling.events [--check] [--docs DIR]`: write, or check, the event docs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from signaling.events.docs import DOCS_DIR, stale, write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m signaling.events",
        description="Generate docs/events.md and docs/events.schema.json from the catalogue.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only check the files are up to date (exit 1 if not)"
    )
    parser.add_argument("--docs", type=Path, default=DOCS_DIR, help="the docs directory")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.docs)
        for name in outdated:
            print(f"{args.docs / name} is stale: run python -m signaling.events", file=sys.stderr)
        return 1 if outdated else 0
    for name in write(args.docs):
        print(f"wrote {args.docs / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
