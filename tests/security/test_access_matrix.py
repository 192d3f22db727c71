"""The access matrix: every HTTP route and every Socket.IO event, against every kind of
caller, with what each must get.  A route or event without a row fails the test, with
the row to add; docs/security.md says who may do what and why.

Outcomes: ALLOW (anything but 401/403/404: the call got past every access check; it may
still be refused as bad input or in the wrong state), or the refusal itself: 401 (no or
the wrong kind of credentials), 403 (the role may not), 404 (not yours, or out of scope:
looks the same as missing).  A 404 naming a made-up sub-resource (a recording, an
attachment, a call session or viewer: `SUB_RESOURCES`) after the incident itself was
found is ALLOW too: the caller got past the access checks to look it up.  For Socket.IO, "connect" is the connection itself and each
event's ack is read the same way (error codes unauthorized / forbidden / not_found).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import pytest
import socketio

from dispatch.http.keys import INFRA
from dispatch.http.pages import BUNDLE
from tests.conftest import (
    CitizenSession,
    Client,
    Staff,
    StaffLogin,
    app_of,
    make_staff,
    register_citizen,
)
from tests.dispatch.calls import alarm
from tests.dispatch.services.test_intake_reports import fields, form
from tests.media.calls import call_body
from tests.signaling.feeds import FeedClient

ALLOW = "allow"


class Who(StrEnum):
    ANONYMOUS = "anonymous"
    CITIZEN = "citizen"  # the reporter of the incident
    OTHER_CITIZEN = "other_citizen"
    TRACKING = "tracking"  # the incident's tracking token
    DISPATCHER = "dispatcher"  # of the incident's precinct
    DISPATCHER_OUT = "dispatcher_out"  # of another precinct
    COMMANDER = "commander"
    OFFICER_ASSIGNED = "officer_assigned"
    OFFICER_OTHER = "officer_other"  # of the precinct, not assigned
    ADMIN = "admin"


Row = Mapping[Who, str | int]


def _policy(default: str | int, **outcomes: str | int) -> Row:
    return MappingProxyType({who: outcomes.get(who.value, default) for who in Who})


_CITIZEN_TOKENS = {"citizen": ALLOW, "other_citizen": ALLOW}
_STAFF_401 = {
    w.value: 401
    for w in Who
    if w.value not in ("citizen", "other_citizen", "anonymous", "tracking")
}
PUBLIC = _policy(ALLOW)
# The citizen's own account: any citizen token; nobody else.
CITIZEN_SELF = _policy(401, **_CITIZEN_TOKENS)
# One incident of a citizen: its reporter; another citizen gets 404 (looks missing).
CITIZEN_CASE = _policy(401, citizen=ALLOW, other_citizen=404)
# A case by number: its reporter or its tracking token; anyone else 404.
CASE = _policy(404, citizen=ALLOW, tracking=ALLOW)
RATE = _policy(404, tracking=ALLOW, citizen=ALLOW)
# Any staff member (their own session).
STAFF_SELF = _policy(ALLOW, anonymous=401, citizen=401, other_citizen=401, tracking=401)
# The console: dispatchers and commanders, whatever the incident.
CONSOLE = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
                  dispatcher=ALLOW, dispatcher_out=ALLOW, commander=ALLOW)  # fmt: skip
# Working one incident: dispatchers of its precinct and commanders.
WORK = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
               dispatcher=ALLOW, dispatcher_out=404, commander=ALLOW)  # fmt: skip
# Ending one incident's video call: only its dispatcher (the one who claimed it).
END_CALL = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
                   dispatcher=ALLOW, dispatcher_out=404)  # fmt: skip
# Reading one incident: as WORK, plus the officer sent to it (in an officer's view).
READ = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
               dispatcher=ALLOW, dispatcher_out=404, commander=ALLOW,
               officer_assigned=ALLOW, officer_other=404)  # fmt: skip
# The EIDO export to other agencies: as WORK; an officer sent to it is refused (403),
# one not sent to it does not learn it exists (404).
EXPORT = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
                 dispatcher=ALLOW, dispatcher_out=404, commander=ALLOW, officer_other=404)  # fmt: skip
# The officer's own duty and position.
OFFICER_SELF = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
                       officer_assigned=ALLOW, officer_other=ALLOW)  # fmt: skip
# Only the scraper on this host (the test client is on this host).
METRICS = PUBLIC
# One of the reporter's video calls: its reporter; another citizen gets 404.
CITIZEN_CALL = CITIZEN_CASE
# Evidence photos: as READ, but an officer only once working the incident (the one
# sent here has been offered it, not accepted it yet: 403).
EVIDENCE = _policy(403, anonymous=401, citizen=401, other_citizen=401, tracking=401,
                   dispatcher=ALLOW, dispatcher_out=404, commander=ALLOW,
                   officer_other=404)  # fmt: skip
# ICE servers for a phone or a console: any citizen or staff token.
ANY_TOKEN = _policy(ALLOW, anonymous=401, tracking=401)

# Path parameters that name something inside an incident: looked up only after access to
# the incident was granted, so their 404 means the caller got that far.
SUB_RESOURCES = frozenset({"recording_id", "attachment_id", "session_id", "viewer_id"})

I = "{incident_id}"  # noqa: E741 - placeholder in paths
MERGE_TARGET = "{merge_target}"

# (method, path) -> (outcome per caller, JSON body or "report-form").  A new route needs
# a row here: say who may call it (a policy above, or a new one), and a body valid
# enough that only access decides.
ROUTES: Mapping[tuple[str, str], tuple[Row, Any]] = MappingProxyType({
    ("GET", "/"): (PUBLIC, None),
    ("GET", "/healthz"): (PUBLIC, None),
    ("GET", "/readyz"): (PUBLIC, None),
    ("GET", "/metrics"): (METRICS, None),
    ("GET", "/api/status"): (PUBLIC, None),
    ("GET", "/api/openapi.json"): (PUBLIC, None),
    ("POST", "/api/citizens"): (PUBLIC, {"device_id": "matrix-device-0001"}),
    # Open to all, but only a valid refresh token gets through (test_citizen_sign_in).
    ("POST", "/api/citizens/refresh"): (_policy(401), {"refresh_token": "not-a-token"}),
    ("POST", "/api/citizens/me/sign-out-everywhere"): (CITIZEN_SELF, None),
    ("POST", "/api/citizens/me/phone"): (CITIZEN_SELF, {"phone": "13800138000"}),
    ("POST", "/api/citizens/me/phone/verify"): (
        _policy(401, citizen=404, other_citizen=404),  # no such challenge of theirs
        {"challenge_id": str(uuid.uuid4()), "code": "123456"},
    ),
    ("POST", "/api/citizens/me/real-name"): (CITIZEN_SELF, {"name": "王小明", "national_id": "11010519491231002Y"}),
    ("POST", "/api/citizens/me/attestation"): (CITIZEN_SELF, {"token": "x.y.z"}),
    ("POST", "/api/alarms"): (CITIZEN_SELF, "alarm"),
    ("POST", "/api/reports"): (CITIZEN_SELF, "report-form"),
    ("POST", f"/api/alarms/{I}/trail"): (
        CITIZEN_CASE,
        {"points": [{"lon": 118.79, "lat": 32.07, "accuracy_m": 10, "datum": "wgs84",
                     "time": datetime.now(UTC).isoformat()}]},
    ),
    ("POST", f"/api/alarms/{I}/cancel"): (CITIZEN_CASE, {"reason": "sorry"}),
    ("GET", "/api/cases/{case_no}"): (CASE, None),
    ("POST", "/api/cases/{case_no}/rating"): (RATE, {"rating": 5}),
    # Open to all, but only the right password gets through (test_login_lockout).
    ("POST", "/api/auth/login"): (_policy(401), {"username": "nobody-{who}", "password": "wrong"}),
    ("POST", "/api/auth/logout"): (STAFF_SELF, None),
    ("GET", "/api/auth/me"): (STAFF_SELF, None),
    ("GET", "/api/incidents"): (CONSOLE, None),
    ("GET", "/api/console/snapshot"): (CONSOLE, None),
    ("POST", "/api/incidents/next"): (CONSOLE, None),
    ("GET", f"/api/incidents/{I}"): (READ, None),
    ("GET", f"/api/incidents/{I}/history"): (READ, None),
    ("GET", f"/api/incidents/{I}/eido"): (EXPORT, None),
    ("GET", f"/api/incidents/{I}/reporter"): (WORK, None),
    ("GET", f"/api/incidents/{I}/recommendations"): (WORK, None),
    ("POST", f"/api/incidents/{I}/messages"): (WORK, {"body": "are you safe?"}),
    ("POST", f"/api/incidents/{I}/claim"): (WORK, None),
    ("POST", f"/api/incidents/{I}/release"): (WORK, None),
    ("POST", f"/api/incidents/{I}/assign"): (WORK, {"officer_ids": ["{spare_officer_id}"]}),
    ("POST", f"/api/incidents/{I}/merge"): (WORK, {"into": MERGE_TARGET}),
    ("POST", f"/api/incidents/{I}/unmerge"): (WORK, None),
    ("POST", f"/api/incidents/{I}/invalid"): (WORK, {"reason": "prank"}),
    ("POST", f"/api/incidents/{I}/transfer"): (WORK, {"to": "agency", "name": "Shanghai PSB"}),
    ("POST", f"/api/incidents/{I}/escalate"): (WORK, {"note": "armed"}),
    ("POST", f"/api/incidents/{I}/resolve"): (WORK, {"disposition": "other"}),
    ("POST", f"/api/incidents/{I}/close"): (WORK, None),
    ("POST", f"/api/incidents/{I}/notes"): (WORK, {"text": "callback", "kind": "note"}),
    ("GET", f"/api/incidents/{I}/evidence"): (EVIDENCE, None),
    ("GET", f"/api/incidents/{I}/evidence/{{attachment_id}}"): (EVIDENCE, None),
    ("GET", f"/api/incidents/{I}/recordings/{{recording_id}}"): (WORK, None),
    ("GET", "/api/console/roster"): (CONSOLE, None),
    ("GET", "/api/console/annotations"): (CONSOLE, None),
    # Video calls: the reporter's phone starts, offers and hangs up; staff in scope pick up.
    ("POST", "/api/calls"): (CITIZEN_SELF, "call"),
    ("POST", "/api/calls/{incident_id}/sessions"): (CITIZEN_CALL, "sdp"),
    ("POST", "/api/calls/{incident_id}/trail"): (
        CITIZEN_CALL,
        {"points": [{"lon": 118.79, "lat": 32.07, "accuracy_m": 10, "datum": "wgs84",
                     "time": datetime.now(UTC).isoformat()}]},
    ),
    ("DELETE", "/api/calls/{incident_id}/sessions/{session_id}"): (CITIZEN_CALL, None),
    ("POST", f"/api/incidents/{I}/call/viewers"): (WORK, "sdp"),
    ("DELETE", f"/api/incidents/{I}/call/viewers/{{viewer_id}}"): (WORK, None),
    # Ending a call for everyone: the dispatcher who claimed it (a commander listens only).
    ("DELETE", f"/api/incidents/{I}/call"): (END_CALL, None),
    ("GET", "/api/rtc/config"): (ANY_TOKEN, None),
    # What every client page loads before anyone signs in.
    ("GET", "/api/client/config"): (PUBLIC, None),
    ("GET", "/api/precincts.geojson"): (PUBLIC, None),
    ("GET", "/console"): (PUBLIC, None),
    ("GET", "/officer"): (PUBLIC, None),
    ("GET", "/report"): (PUBLIC, None),
    ("GET", "/report.webmanifest"): (PUBLIC, None),
    ("GET", "/report/icon.svg"): (PUBLIC, None),
    ("GET", "/report/sw.js"): (PUBLIC, None),
    ("GET", "/assets/{name}"): (PUBLIC, None),
    ("GET", "/favicon.ico"): (PUBLIC, None),
    ("GET", "/api/officers/me/snapshot"): (OFFICER_SELF, None),
    ("POST", "/api/officers/me/duty"): (OFFICER_SELF, {"on_duty": True}),
    ("POST", "/api/officers/me/position"): (
        OFFICER_SELF, {"lon": 118.79, "lat": 32.07, "accuracy_m": 5, "datum": "wgs84"}
    ),
})  # fmt: skip

# Socket.IO: (namespace, event) -> outcome per caller ("connect" is the connection).
_CONSOLE_CONNECT = _policy(401, dispatcher=ALLOW, dispatcher_out=ALLOW, commander=ALLOW,
                           officer_assigned=403, officer_other=403, admin=403)  # fmt: skip
_OFFICER_CONNECT = _policy(401, officer_assigned=ALLOW, officer_other=ALLOW,
                           dispatcher=403, dispatcher_out=403, commander=403, admin=403)  # fmt: skip
_CITIZEN_CONNECT = _policy(401, citizen=ALLOW, other_citizen=ALLOW)


def _connected(connect: Row, **outcomes: str | int) -> Row:
    """An event: refused at connect for whoever may not connect, else `outcomes`."""
    return MappingProxyType({
        who: connect[who] if connect[who] != ALLOW else outcomes.get(who.value, ALLOW)
        for who in Who
    })  # fmt: skip


_CONSOLE_WORK = _connected(_CONSOLE_CONNECT, dispatcher_out=404)
_OFFICER_OWN = _connected(_OFFICER_CONNECT, officer_other=404)  # not their assignment
_CITIZEN_OWN = _connected(_CITIZEN_CONNECT, other_citizen=404)

EVENTS: Mapping[tuple[str, str], tuple[Row, Any]] = MappingProxyType({
    ("/console", "connect"): (_CONSOLE_CONNECT, None),
    ("/console", "resume"): (_connected(_CONSOLE_CONNECT), {"last_seq": None}),
    ("/console", "next"): (_connected(_CONSOLE_CONNECT), None),
    ("/console", "claim"): (_CONSOLE_WORK, {"incident_id": I}),
    ("/console", "release"): (_CONSOLE_WORK, {"incident_id": I}),
    ("/console", "unmerge"): (_CONSOLE_WORK, {"incident_id": I}),
    ("/console", "close"): (_CONSOLE_WORK, {"incident_id": I}),
    ("/console", "assign"): (_CONSOLE_WORK, {"incident_id": I, "officer_ids": ["{spare_officer_id}"]}),
    ("/console", "merge"): (_CONSOLE_WORK, {"incident_id": I, "into": MERGE_TARGET}),
    ("/console", "invalid"): (_CONSOLE_WORK, {"incident_id": I, "reason": "prank"}),
    ("/console", "escalate"): (_CONSOLE_WORK, {"incident_id": I, "note": "armed"}),
    ("/console", "resolve"): (_CONSOLE_WORK, {"incident_id": I, "disposition": "other"}),
    ("/console", "transfer"): (_CONSOLE_WORK, {"incident_id": I, "to": "agency", "name": "X"}),
    ("/console", "note"): (_CONSOLE_WORK, {"incident_id": I, "text": "x", "kind": "note"}),
    ("/console", "message"): (_CONSOLE_WORK, {"incident_id": I, "body": "are you safe?"}),
    ("/officer", "connect"): (_OFFICER_CONNECT, None),
    ("/officer", "resume"): (_connected(_OFFICER_CONNECT), {"last_seq": None}),
    ("/officer", "ack"): (_OFFICER_OWN, {"assignment_id": "{assignment_id}", "accept": True}),
    ("/officer", "status"): (_OFFICER_OWN, {"assignment_id": "{assignment_id}", "status": "en_route"}),
    ("/officer", "message"): (_OFFICER_OWN, {"incident_id": I, "body": "on scene, all calm"}),
    ("/officer", "position"): (_connected(_OFFICER_CONNECT), {"lon": 118.79, "lat": 32.07, "accuracy_m": 5, "datum": "wgs84"}),
    ("/officer", "duty"): (_connected(_OFFICER_CONNECT), {"on_duty": True}),
    ("/citizen", "connect"): (_CITIZEN_CONNECT, None),
    ("/citizen", "resume"): (_connected(_CITIZEN_CONNECT), {"last_seq": None}),
    ("/citizen", "message"): (_CITIZEN_OWN, {"incident_id": I, "body": "help"}),
})  # fmt: skip

_HOW_TO_ADD = (
    "add a row for each to {table} in tests/security/test_access_matrix.py: the key "
    "{example}, the value (policy, body): a policy row saying what each caller gets "
    "(reuse PUBLIC, CITIZEN_SELF, CITIZEN_CASE, CASE, STAFF_SELF, CONSOLE, WORK, READ, "
    "OFFICER_SELF, or build one with _policy / _connected), and a body valid enough that "
    "only access decides; then say who may call it in docs/security.md"
)


def test_every_http_route_has_a_row(app_client: Client) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in app_of(app_client).router.routes()
        if route.method != "HEAD" and route.resource is not None
        and not route.resource.canonical.startswith(("/static", "/socket.io"))
    }  # fmt: skip
    missing = sorted(served - set(ROUTES))
    assert not missing, f"routes without an access row: {missing}; " + _HOW_TO_ADD.format(
        table="ROUTES", example="('POST', '/api/calls/{incident_id}')"
    )
    assert not sorted(set(ROUTES) - served), "rows for routes that no longer exist: remove them"


def test_every_socketio_event_has_a_row() -> None:
    from signaling.namespaces import CitizenNamespace, ConsoleNamespace, OfficerNamespace

    handled = {
        (namespace, name.removeprefix("on_"))
        for namespace, cls in (("/console", ConsoleNamespace), ("/officer", OfficerNamespace),
                               ("/citizen", CitizenNamespace))
        for name in dir(cls) if name.startswith("on_") and name != "on_disconnect"
    }  # fmt: skip
    missing = sorted(handled - set(EVENTS))
    assert not missing, f"Socket.IO events without an access row: {missing}; " + _HOW_TO_ADD.format(
        table="EVENTS", example="('/console', 'call.answer')"
    )
    assert not sorted(set(EVENTS) - handled), "rows for events that no longer exist: remove them"


@dataclass
class World:
    """One incident in Xuanwu (320102) and every kind of caller."""

    incident: str
    case_no: str
    call: str  # the reporter's video call
    asset: str  # a file of the clients' bundle
    merge_target: str
    assignment_id: str
    ids: dict[str, str]
    headers: dict[Who, dict[str, str]]
    tokens: dict[Who, str | None]


async def _world(client: Client, staff: Staff, citizen: CitizenSession, officer: StaffLogin,
                 admin: StaffLogin) -> World:  # fmt: skip
    # Whom the assign rows send: neither officer whose reach the rows check.
    spare = await make_staff(client, "off-xw-3", "officer", ("320102",), "XW-09")
    other = await register_citizen(client, "matrix-other-0001")
    posted = await client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    created = await posted.json()
    target = await (await client.post("/api/alarms", json=alarm(), headers=citizen.headers)).json()
    call = await client.post("/api/calls", json=call_body(), headers=citizen.headers)
    assert call.status == 201, await call.text()
    call_id = (await call.json())["incident_id"]
    # Picking up a call is for the dispatcher who claimed it (or a commander).
    claimed = await client.post(f"/api/incidents/{call_id}/claim", headers=staff.dispatcher.headers)
    assert claimed.status == 200, await claimed.text()
    manifest = app_of(client)[BUNDLE].manifest()
    assert manifest is not None, "console_web is not built (./dev check builds it)"
    asset = sorted(manifest.files)[0].removeprefix("assets/")
    incident = created["incident_id"]
    await client.post(f"/api/incidents/{incident}/claim", headers=staff.dispatcher.headers)
    for who in (staff.officer, officer, spare):
        await client.post("/api/officers/me/duty", json={"on_duty": True}, headers=who.headers)
    assigned = await client.post(f"/api/incidents/{incident}/assign", headers=staff.dispatcher.headers,
                                 json={"officer_ids": [staff.officer.id]})  # fmt: skip
    assert assigned.status == 200, await assigned.text()
    async with app_of(client)[INFRA].pool.acquire() as conn:
        assignment = await conn.fetchval("SELECT id::text FROM assignments WHERE incident_id = $1",
                                         uuid.UUID(incident))  # fmt: skip
    tokens: dict[Who, str | None] = {
        Who.ANONYMOUS: None, Who.CITIZEN: citizen.token, Who.OTHER_CITIZEN: other.token,
        Who.TRACKING: created["tracking_token"], Who.DISPATCHER: staff.dispatcher.token,
        Who.DISPATCHER_OUT: staff.other_dispatcher.token, Who.COMMANDER: staff.commander.token,
        Who.OFFICER_ASSIGNED: staff.officer.token, Who.OFFICER_OTHER: officer.token,
        Who.ADMIN: admin.token,
    }  # fmt: skip
    headers = {w: ({"Authorization": f"Bearer {t}"} if t else {}) for w, t in tokens.items()}
    return World(incident, created["case_no"], call_id, asset,
                 target["incident_id"], assignment,
                 {"spare_officer_id": str(spare.id)}, headers, tokens)  # fmt: skip


def _fill(value: Any, world: World, who: Who = Who.ANONYMOUS) -> Any:
    if isinstance(value, str):
        text = value.replace(I, world.incident).replace(MERGE_TARGET, world.merge_target)
        text = text.replace("{who}", who.value)
        text = text.replace("{assignment_id}", world.assignment_id)
        for name, filled in world.ids.items():
            if text == "{" + name + "}":
                return int(filled)
        return text
    if isinstance(value, dict):
        return {k: _fill(v, world, who) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world, who) for v in value]
    return value


async def _outcome(response: Any) -> str | int:
    if response.status == 404 and response.content_type == "application/json":
        error = (await response.json()).get("error", {})
        if error.get("field") in SUB_RESOURCES:
            return ALLOW
    return response.status if response.status in (401, 403, 404) else ALLOW


def _url(path: str, world: World) -> str:
    if path.startswith("/api/calls/") or "/call/" in path or path.endswith("/call"):
        path = path.replace("{incident_id}", world.call)
    made_up = {name: str(uuid.uuid4()) for name in SUB_RESOURCES}
    return (
        path.replace("{case_no}", world.case_no)
        .replace(I, world.incident)
        .replace("{name}", world.asset)
        .format(**made_up)
    )


@pytest.mark.timeout(900)
async def test_every_route_answers_every_caller_as_its_row_says(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    officer = await make_staff(app_client, "off-xw-2", "officer", ("320102",), "XW-08")
    admin = await make_staff(app_client, "admin-matrix", "admin")
    world = await _world(app_client, staff, citizen, officer, admin)
    wrong: list[str] = []
    # Refusals first, then the callers who get through (their calls change the incident).
    order = sorted(Who, key=lambda w: w in (Who.DISPATCHER, Who.COMMANDER, Who.CITIZEN))
    # Ending a session or a sign-in goes last: every other call needs them.
    last = ("/api/auth/logout", "/api/citizens/me/sign-out-everywhere")
    for (method, path), (row, body) in sorted(ROUTES.items(), key=lambda r: r[0][1] in last):
        url = _url(path, world)
        for who in order:
            kwargs: dict[str, Any] = {"headers": world.headers[who]}
            if body == "alarm":
                kwargs["json"] = alarm()
            elif body == "call":
                kwargs["json"] = call_body()
            elif body == "sdp":  # not an offer a peer could answer: access decides first
                kwargs["data"] = "v=0\r\n"
                kwargs["headers"] = kwargs["headers"] | {"Content-Type": "application/sdp"}
            elif body == "report-form":
                kwargs["data"] = form(fields())
            elif body is not None:
                kwargs["json"] = _fill(body, world, who)
            response = await app_client.request(method, url, **kwargs)
            got = await _outcome(response)
            if got != row[who]:
                wrong.append(f"{method} {path} as {who}: {response.status}, row says {row[who]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.timeout(900)
async def test_every_socketio_event_answers_every_caller_as_its_row_says(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    officer = await make_staff(app_client, "off-xw-2", "officer", ("320102",), "XW-08")
    admin = await make_staff(app_client, "admin-matrix", "admin")
    world = await _world(app_client, staff, citizen, officer, admin)
    base = str(app_client.make_url("/")).rstrip("/")
    wrong: list[str] = []
    codes = {"unauthorized": 401, "forbidden": 403, "not_found": 404}
    order = sorted(Who, key=lambda w: w in (Who.DISPATCHER, Who.COMMANDER, Who.CITIZEN))
    # The officer's first: the consoles' rows go on to close the incident, after which
    # nobody is working it (an officer's message is then refused as not theirs).
    for namespace in ("/officer", "/console", "/citizen"):
        for who in order:
            client = FeedClient(base, namespace, world.tokens[who] or "")
            try:
                await client.connect()
                connected: str | int = ALLOW
            except socketio.exceptions.ConnectionError:
                connected = codes.get((client.refusal or {}).get("data", {}).get("code"), 0)
            for (space, event), (row, data) in EVENTS.items():
                if space != namespace:
                    continue
                if event == "connect" or connected != ALLOW:
                    got = connected
                else:
                    answer = await client.call(event, _fill(data, world))
                    error = answer.get("error") if isinstance(answer, dict) else None
                    got = codes.get(error["code"], ALLOW) if error else ALLOW
                if got != row[who]:
                    wrong.append(f"{namespace} {event} as {who}: {got}, row says {row[who]}")
            if client.sio.connected:
                await client.close()
    assert not wrong, "\n".join(wrong)
