"""What the server logs: JSON lines, and no error for what is only a client's mistake."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from dispatch.infra.logs import MalformedRequests, configure_logging
from tests.conftest import Client


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    """The entry point's logging, into a buffer; the test session's put back after."""
    root, server = logging.getLogger(), logging.getLogger("aiohttp.server")
    saved = (root.handlers[:], root.level, server.filters[:])
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        yield stream
    finally:
        root.handlers[:], level, server.filters[:] = saved
        root.setLevel(level)
        logging.captureWarnings(False)


async def test_a_malformed_request_is_refused_and_logged_as_info_without_a_traceback(
    app_client: Client, server_log: io.StringIO
) -> None:
    assert any(
        isinstance(f, MalformedRequests) for f in logging.getLogger("aiohttp.server").filters
    )
    reader, writer = await asyncio.open_connection(app_client.host, app_client.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
    await writer.drain()
    answer = await reader.read(1000)
    writer.close()
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer
    lines = [json.loads(line) for line in server_log.getvalue().splitlines()]
    refused = [line for line in lines if line["logger"] == "aiohttp.server"]
    assert refused, lines
    assert all(line["level"] == "info" and "exc" not in line for line in refused), refused
    assert "malformed request refused" in refused[0]["msg"]
    # The server is fine.
    assert (await app_client.get("/healthz")).status == 200
