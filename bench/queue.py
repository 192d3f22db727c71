"""The claims benchmark under the name the issue gives it: runs bench/queue_claims.py.

    .venv/bin/python bench/queue.py [queue_claims.py options: --rates, --per-rate, --plot ...]

A script here runs with bench/ first on sys.path, where this file would stand in for
the standard library's `queue` (which asyncio, redis and aiohttp import).  So: run as a
script, it moves bench/ to the end of the path before importing anything and runs the
real benchmark; imported as `queue` (by another benchmark), it becomes the standard
library's module.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != _HERE] + [str(_HERE)]
    import runpy

    runpy.run_path(str(_HERE / "queue_claims.py"), run_name="__main__")
else:
    import importlib.util
    import sysconfig

    _spec = importlib.util.spec_from_file_location(
        "queue", Path(sysconfig.get_path("stdlib")) / "queue.py"
    )
    assert _spec is not None
    assert _spec.loader is not None
    _stdlib = importlib.util.module_from_spec(_spec)
    sys.modules["queue"] = _stdlib  # what `import queue` hands out from here on
    _spec.loader.exec_module(_stdlib)
    globals().update({k: v for k, v in vars(_stdlib).items() if not k.startswith("__")})
