"""The video-call benchmark under the name the issue gives it: runs bench/media_calls.py.

    .venv/bin/python bench/media.py [--calls 50] [--seconds 20] [--procs 2]

A script here runs with bench/ first on sys.path, where this file would stand in for
the project's `media` package.  So it moves bench/ to the end of the path before
importing anything and runs the real benchmark.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != _HERE] + [str(_HERE)]
    import runpy

    runpy.run_path(str(_HERE / "media_calls.py"), run_name="__main__")
