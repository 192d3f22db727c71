"""The console's queue (console_web/src/pages/console/state.js), driven in Node by 3,000
random feed events: kept sorted incrementally, it is after every event exactly the full
sort in the server's order (queued by priority_score then id, then those in hand), with
a search and without, and after a resync; and after a bounded snapshot (`more`), the top
bar's counts are those of every open incident as events bring the rest in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / "console_web" / "src" / "pages" / "console" / "state.js"
CHECK = Path(__file__).resolve().parent / "js" / "queue_order_check.mjs"


def test_the_incremental_queue_is_always_the_servers_order() -> None:
    out = subprocess.run(
        ["node", str(CHECK), STATE.as_uri()],
        capture_output=True, text=True, check=True, timeout=120,
        cwd=ROOT / "console_web",
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    assert result["mismatches"] == []
    assert result["checks"] == 2 * 3001
    assert result["open"] > 20  # the run kept a real queue, not an empty one
    # After a bounded snapshot, the counts are every open incident's, loaded or not.
    assert result["beyondMismatches"] == []
    assert result["beyondAtStart"] > 10 and result["beyondLeft"] < result["beyondAtStart"]
