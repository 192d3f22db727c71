"""Every workflow verb over Socket.IO: same outcome, same error codes as over HTTP."""

from collections.abc import Callable
from typing import Any

from tests.conftest import CitizenSession, Client, Staff, StaffLogin
from tests.dispatch.calls import act, report
from tests.signaling.feeds import FeedClient

# (who: "d" dispatcher / "c" commander, incident letter, HTTP verb, body).
STEPS: list[tuple[str, str, str, Any]] = [
    ("d", "a", "claim", None), ("d", "a", "notes", {"text": "calling back"}),
    ("d", "a", "assign", {"officer_ids": ["OFFICER"]}), ("d", "a", "resolve", {"disposition": "advised"}),
    ("d", "a", "close", None), ("d", "b", "claim", None), ("d", "b", "release", None),
    ("d", "b", "escalate", {"note": "needs a decision"}), ("c", "b", "claim", None),
    ("c", "b", "invalid", {"reason": "hoax"}), ("d", "e", "claim", None), ("d", "e", "merge", {"into": "f"}),
    ("d", "e", "unmerge", None), ("d", "f", "claim", None),
    ("d", "f", "transfer", {"to": "precinct", "name": "320106"}), ("c", "f", "claim", None),
    ("c", "f", "transfer", {"to": "department", "name": "Fire brigade", "note": "smoke"}),
    ("d", "g", "claim", None), ("d", "g", "messages", {"body": "Are you\x00 safe?"}),
    ("d", "g", "messages", {"body": "Are you safe?"}),
]  # fmt: skip
SOCKET_VERB = {"notes": "note", "messages": "message"}
LETTERS = "abefg"


def _resolve(body: Any, ids: dict[str, str], officer_id: int) -> Any:
    if not isinstance(body, dict):
        return body
    out = dict(body)
    if "into" in out:
        out["into"] = ids[out["into"]]
    if "officer_ids" in out:
        out["officer_ids"] = [officer_id]
    return out


def _outcome(answer: dict[str, Any]) -> Any:
    """What must agree between the two paths: the state reached, or the error code."""
    if "error" in answer:
        return ("error", answer["error"]["code"], answer["error"].get("field"))
    if "incident" in answer:  # Socket.IO acks wrap the incident
        return ("state", answer["incident"]["state"])
    if "state" in answer:  # HTTP answers with the incident itself
        return ("state", answer["state"])
    return ("ok",)


async def test_every_verb_over_socketio_matches_http(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    await app_client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=staff.officer.headers
    )
    by_http = {x: (await report(app_client, citizen))["incident_id"] for x in LETTERS}
    by_socket = {x: (await report(app_client, citizen))["incident_id"] for x in LETTERS}
    consoles = {"d": feed("/console", staff.dispatcher.token),
                "c": feed("/console", staff.commander.token)}  # fmt: skip
    logins: dict[str, StaffLogin] = {"d": staff.dispatcher, "c": staff.commander}
    for console in consoles.values():
        await console.connect()
    try:
        for who, letter, verb, body in STEPS:
            # Each step twice: the second time is often illegal, and must fail alike.
            for attempt in (1, 2):
                status, over_http = await act(
                    app_client, logins[who], by_http[letter], verb,
                    _resolve(body, by_http, staff.officer.id),
                )  # fmt: skip
                over_socket = await consoles[who].call(
                    SOCKET_VERB.get(verb, verb),
                    {"incident_id": by_socket[letter],
                     **(_resolve(body, by_socket, staff.officer.id) or {})},
                )  # fmt: skip
                assert (status < 300) == over_socket["ok"], (verb, attempt, over_http, over_socket)
                if verb in SOCKET_VERB:  # note / message answer with what they created
                    assert over_socket["ok"] or _outcome(over_http) == _outcome(over_socket)
                    continue
                assert _outcome(over_http) == _outcome(over_socket), (verb, attempt)
        # A verb out of scope or role fails with the same code both ways.
        status, over_http = await act(app_client, staff.other_dispatcher, by_http["g"], "release")
        stranger = feed("/console", staff.other_dispatcher.token)
        await stranger.connect()
        over_socket = await stranger.call("release", {"incident_id": by_socket["g"]})
        await stranger.close()
        assert status >= 400 and _outcome(over_http) == _outcome(over_socket)
        # And the histories agree step for step.
        for letter in LETTERS:
            kinds = []
            for ids in (by_http, by_socket):
                response = await app_client.get(
                    f"/api/incidents/{ids[letter]}/history", headers=staff.commander.headers
                )
                kinds.append([e["type"] for e in (await response.json())["events"]])
            assert kinds[0] == kinds[1], letter
    finally:
        for console in consoles.values():
            await console.close()
