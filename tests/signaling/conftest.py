"""Socket.IO clients for the feed tests: real python-socketio AsyncClients."""

from collections.abc import Callable

import pytest

from tests.conftest import Client
from tests.signaling.feeds import FeedClient


@pytest.fixture
def feed(app_client: Client) -> Callable[[str, str], FeedClient]:
    """`feed(namespace, token)`: a client for the app under test (connect it yourself)."""
    base = str(app_client.make_url("/")).rstrip("/")
    return lambda namespace, token: FeedClient(base, namespace, token)
