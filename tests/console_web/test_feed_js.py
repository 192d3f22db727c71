"""The shared feed client (console_web/src/shared/feed.js), driven by a scripted socket
in Node: it resumes from the last seq, applies nothing twice, resyncs from a fresh
snapshot when told to, and hands a refused session to the page."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "console_web" / "src" / "shared" / "feed.js"
CHECK = Path(__file__).resolve().parent / "js" / "feed_check.mjs"


def test_feed_resumes_dedupes_resyncs_and_signs_out() -> None:
    out = subprocess.run(
        ["node", str(CHECK), FEED.as_uri()],
        capture_output=True, text=True, check=True, timeout=60,
        cwd=ROOT / "console_web",
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    assert result["first"] == {"state": "live", "applied": [11, 12], "resumedFrom": 10}
    assert result["away"] == "reconnecting"
    assert result["second"] == {
        "state": "live", "resumedFrom": [13, 9000], "snapshots": 2, "lastSeq": 9000,
    }  # fmt: skip
    assert result["applied"] == [11, 12, 13, 9001]
    assert result["ended"] == "session ended"
    assert result["finalState"] == "signed_out"
