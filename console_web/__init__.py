"""Static pages: the status page, and later the console, report and officer clients."""

from pathlib import Path


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"
