"""Socket.IO namespaces: /console, /officer, /citizen.

Protocol: connect with `auth={"token": ...}`; then emit `resume` with
`{"last_seq": N}` (or null for live only) and get, in order, every event after N you
may see, then live events; the ack says the seq you are now at.  Workflow calls use
acks: `{"ok": true, ...}` or `{"ok": false, "error": {code, message, field}}`, with the
same codes as HTTP.
"""

from signaling.namespaces.base import error_ack, session_room, sign_in_room
from signaling.namespaces.citizen import CitizenNamespace
from signaling.namespaces.console import ConsoleNamespace
from signaling.namespaces.officer import OfficerNamespace

__all__ = [
    "CitizenNamespace",
    "ConsoleNamespace",
    "OfficerNamespace",
    "error_ack",
    "session_room",
    "sign_in_room",
]
