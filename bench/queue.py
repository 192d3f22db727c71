"""The claims benchmark under the name the issue gives it: runs bench/queue_claims.py.

    .venv/bin/python bench/queue.py [--incidents 3000] [--dispatchers 20] [--plot out.png]

`python bench/queue.py` puts bench/ first on sys.path, where this very file would stand
in for the standard library's `queue` (which asyncio, redis and aiohttp import).  So
before anything else is imported, bench/ moves to the end of the path; then the real
script runs as __main__.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != _HERE] + [str(_HERE)]

import runpy  # noqa: E402 - only once the path is safe

runpy.run_path(str(_HERE / "queue_claims.py"), run_name="__main__")
