"""The dispatch workflow over HTTP: claims, every verb, scope, roles, history, EIDO."""

import asyncio

import asyncpg
import redis.asyncio as aioredis

from dispatch.http.keys import REDIS_WRITES
from dispatch.infra.queue_index import GLOBAL_KEY
from tests.conftest import CitizenSession, Client, Staff, StaffLogin, app_of
from tests.dispatch.calls import GULOU_DRUM_TOWER, act, report
from tests.fakes import FakeClock


async def test_next_takes_the_most_urgent_and_claims_are_exclusive(
    app_client: Client, citizen: CitizenSession, staff: Staff, redis: aioredis.Redis
) -> None:
    minor = await report(app_client, citizen, tag="other")
    urgent = await report(app_client, citizen, tag="kidnapping")
    response = await app_client.post("/api/incidents/next", headers=staff.dispatcher.headers)
    taken = (await response.json())["incident"]
    assert taken["id"] == urgent["incident_id"] and taken["state"] == "claimed"
    await app_of(app_client)[REDIS_WRITES].drain()  # the index follows the answer
    assert await redis.zscore(GLOBAL_KEY, urgent["incident_id"]) is None
    # Nobody else gets it.
    status, error = await act(app_client, staff.commander, urgent["incident_id"], "claim")
    assert status == 409
    assert "claimed" in error["error"]["message"] and error["error"]["code"] == "invalid_transition"
    second = await (
        await app_client.post("/api/incidents/next", headers=staff.dispatcher.headers)
    ).json()
    assert second["incident"]["id"] == minor["incident_id"]
    empty = await (
        await app_client.post("/api/incidents/next", headers=staff.dispatcher.headers)
    ).json()
    assert empty == {"incident": None}


async def test_concurrent_next_never_hands_out_one_incident_twice(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    created = {(await report(app_client, citizen))["incident_id"] for _ in range(15)}
    responses = await asyncio.gather(
        *(app_client.post("/api/incidents/next", headers=h) for h in [staff.dispatcher.headers, staff.commander.headers] * 10)
    )  # fmt: skip
    taken = [(await r.json())["incident"] for r in responses]
    ids = [t["id"] for t in taken if t]
    assert len(ids) == len(set(ids)) == 15
    assert set(ids) == created


async def test_full_lifecycle_and_history(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    incident = (await report(app_client, citizen))["incident_id"]
    assert (await act(app_client, staff.dispatcher, incident, "claim"))[0] == 200
    await app_client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=staff.officer.headers
    )
    status, assigned = await act(
        app_client, staff.dispatcher, incident, "assign", {"officer_ids": [staff.officer.id]}
    )
    assert status == 200 and assigned["state"] == "assigned"
    assert (
        await act(
            app_client,
            staff.dispatcher,
            incident,
            "notes",
            {"text": "caller hiding upstairs", "kind": "callback"},
        )
    )[0] == 201
    status, resolved = await act(
        app_client, staff.dispatcher, incident, "resolve", {"disposition": "arrested"}
    )
    assert resolved["state"] == "resolved" and resolved["disposition"] == "arrested"
    status, closed = await act(app_client, staff.dispatcher, incident, "close")
    assert closed["state"] == "closed"
    status, again = await act(
        app_client, staff.dispatcher, incident, "resolve", {"disposition": "other"}
    )
    assert (
        status == 409
        and "closed" in again["error"]["message"]
        and "resolved" in again["error"]["message"]
    )

    history = await (
        await app_client.get(f"/api/incidents/{incident}/history", headers=staff.dispatcher.headers)
    ).json()
    types = [e["type"] for e in history["events"]]
    assert types == ["incident.created", "incident.claimed", "incident.assigned", "assignment.offered",
                     "incident.note", "incident.resolved", "assignment.cleared", "incident.closed"]  # fmt: skip
    assert history["events"][1]["actor"] == {"kind": "staff", "id": str(staff.dispatcher.id)}
    seqs = [e["seq"] for e in history["events"]]
    assert seqs == sorted(seqs)
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT valid_reports FROM citizens") == 1

    case = await (
        await app_client.get(f"/api/cases/{closed['case_no']}", headers=citizen.headers)
    ).json()
    texts = [entry["text"] for entry in case["timeline"]]
    assert "Officers have been sent." in texts and "Your case is closed." in texts
    assert not any("upstairs" in t for t in texts)  # internal notes stay internal

    eido = await (
        await app_client.get(f"/api/incidents/{incident}/eido", headers=staff.dispatcher.headers)
    ).json()
    component = eido["incidentComponent"]
    assert component["localIncidentIdentifier"] == closed["case_no"]
    assert component["incidentStatusCommonRegistryText"] == "Closed"
    assert eido["unitComponent"][0]["unitIdentifier"] == "XW-07"
    assert eido["notesComponent"][0]["noteText"] == "caller hiding upstairs"
    assert eido["locationComponent"][0]["geometry"]["type"] == "Point"


async def test_release_escalate_invalid_merge_transfer(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    a, b, c, d = [(await report(app_client, citizen))["incident_id"] for _ in range(4)]
    await act(app_client, staff.dispatcher, a, "claim")
    status, released = await act(app_client, staff.dispatcher, a, "release")
    assert released["state"] == "queued" and released["claimed_by"] is None

    status, escalated = await act(app_client, staff.dispatcher, a, "escalate", {"note": "armed"})
    assert escalated["state"] == "escalated"
    status, _ = await act(app_client, staff.dispatcher, a, "claim")
    assert status == 403  # a commander's to take
    status, taken = await act(app_client, staff.commander, a, "claim")
    assert status == 200 and taken["claimed_by"] == staff.commander.id

    await act(app_client, staff.dispatcher, b, "claim")
    status, invalid = await act(
        app_client, staff.dispatcher, b, "invalid", {"reason": "prank call"}
    )
    assert invalid["state"] == "invalid"
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT false_alarms FROM citizens") == 1

    await act(app_client, staff.dispatcher, c, "claim")
    status, merged = await act(app_client, staff.dispatcher, c, "merge", {"into": d})
    assert merged["state"] == "merged" and merged["merged_into"] == d
    status, unmerged = await act(app_client, staff.dispatcher, c, "unmerge")
    assert unmerged["state"] == "queued" and unmerged["merged_into"] is None

    await act(app_client, staff.dispatcher, d, "claim")
    # No foreign key guards an incident's precinct (migration 0004): the service does.
    status, refused = await act(
        app_client, staff.dispatcher, d, "transfer", {"to": "precinct", "name": "999999"}
    )
    assert status == 400 and refused["error"]["field"] == "precinct_code"
    # By its name as a dispatcher types it (by its code: tests/signaling/test_console_verbs.py).
    status, moved = await act(
        app_client, staff.dispatcher, d, "transfer", {"to": "precinct", "name": "鼓楼区"}
    )
    assert moved["state"] == "queued" and moved["precinct_code"] == "320106"
    # Now it is the Gulou dispatcher's, and the Xuanwu one no longer sees it.
    assert (await act(app_client, staff.other_dispatcher, d, "claim"))[0] == 200
    assert (
        await app_client.get(f"/api/incidents/{d}", headers=staff.dispatcher.headers)
    ).status == 404
    status, out = await act(app_client, staff.other_dispatcher, d, "transfer",
                            {"to": "agency", "name": "Shanghai PSB", "note": "caller is in Shanghai"})  # fmt: skip
    assert out["state"] == "transferred"


async def test_scope_and_roles(app_client: Client, citizen: CitizenSession, staff: Staff) -> None:
    mine = (await report(app_client, citizen))["incident_id"]
    theirs = (await report(app_client, citizen, lon=GULOU_DRUM_TOWER[0], lat=GULOU_DRUM_TOWER[1]))[
        "incident_id"
    ]
    listed = await (await app_client.get("/api/incidents", headers=staff.dispatcher.headers)).json()
    assert [i["id"] for i in listed["incidents"]] == [mine]
    everything = await (
        await app_client.get("/api/incidents", headers=staff.commander.headers)
    ).json()
    assert {i["id"] for i in everything["incidents"]} == {mine, theirs}
    assert (await act(app_client, staff.dispatcher, theirs, "claim"))[0] == 404
    assert (await act(app_client, staff.officer, mine, "claim"))[0] == 403
    # A claimed incident is worked only by its holder (or a commander).
    await act(app_client, staff.other_dispatcher, theirs, "claim")
    other_gulou = staff.other_dispatcher
    assert (await act(app_client, staff.commander, theirs, "release"))[0] == 200
    assert (await act(app_client, other_gulou, theirs, "claim"))[0] == 200
    citizen_token = {"Authorization": f"Bearer {citizen.token}"}
    assert (
        await app_client.post(f"/api/incidents/{mine}/claim", headers=citizen_token)
    ).status == 401


async def test_login_logout_and_bad_credentials(app_client: Client, staff: Staff) -> None:
    me = await app_client.get("/api/auth/me", headers=staff.dispatcher.headers)
    assert (await me.json())["precincts"] == ["320102"]
    assert (
        await app_client.post("/api/auth/logout", headers=staff.dispatcher.headers)
    ).status == 200
    assert (await app_client.get("/api/auth/me", headers=staff.dispatcher.headers)).status == 401
    wrong = await app_client.post(
        "/api/auth/login", json={"username": "disp-gl", "password": "nope"}
    )
    assert wrong.status == 401
    unknown = await app_client.post(
        "/api/auth/login", json={"username": "nobody", "password": "nope"}
    )
    assert unknown.status == 401 and (await unknown.json()) == (await wrong.json())
    for _ in range(10):
        await app_client.post("/api/auth/login", json={"username": "cmdr", "password": "guess"})
    locked = await app_client.post(
        "/api/auth/login", json={"username": "cmdr", "password": "guess"}
    )
    assert locked.status == 429


async def test_recommendations_rank_available_officers_by_distance(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    from tests.conftest import make_staff

    near = staff.officer
    far = await make_staff(app_client, "off-xw2", "officer", ("320102",), "XW-08")
    off = await make_staff(app_client, "off-xw3", "officer", ("320102",), "XW-09")
    for officer, lon in ((near, 118.7930), (far, 118.8300), (off, 118.7927)):
        await app_client.post(
            "/api/officers/me/duty", json={"on_duty": True}, headers=officer.headers
        )
        response = await app_client.post("/api/officers/me/position",
                                         json={"lon": lon, "lat": 32.0732, "accuracy_m": 5}, headers=officer.headers)  # fmt: skip
        assert response.status == 202
    await app_client.post("/api/officers/me/duty", json={"on_duty": False}, headers=off.headers)
    incident = (await report(app_client, citizen))["incident_id"]
    found = await (
        await app_client.get(
            f"/api/incidents/{incident}/recommendations", headers=staff.dispatcher.headers
        )
    ).json()
    assert [o["callsign"] for o in found["officers"]] == ["XW-07", "XW-08"]
    assert 20 < found["officers"][0]["distance_m"] < 50  # 0.0004 degrees of longitude at 32°N
    too_fast = await app_client.post("/api/officers/me/position",
                                     json={"lon": 118.79, "lat": 32.07, "accuracy_m": 5}, headers=near.headers)  # fmt: skip
    assert too_fast.status == 429


async def test_an_officer_whose_position_is_stale_ranks_after_the_fresh_ones(
    app_client: Client, citizen: CitizenSession, staff: Staff, fake_clock: FakeClock
) -> None:
    from tests.conftest import make_staff

    near = staff.officer
    far = await make_staff(app_client, "off-xw2", "officer", ("320102",), "XW-08")
    for officer in (near, far):
        await app_client.post(
            "/api/officers/me/duty", json={"on_duty": True}, headers=officer.headers
        )

    async def report_position(officer: StaffLogin, lon: float) -> None:
        response = await app_client.post("/api/officers/me/position",
                                         json={"lon": lon, "lat": 32.0732, "accuracy_m": 5}, headers=officer.headers)  # fmt: skip
        assert response.status == 202

    await report_position(near, 118.7930)  # beside the incident, then silent
    fake_clock.advance(6 * 60)
    await report_position(far, 118.8300)  # 3.5 km away, just now
    incident = (await report(app_client, citizen))["incident_id"]
    found = await (
        await app_client.get(
            f"/api/incidents/{incident}/recommendations", headers=staff.dispatcher.headers
        )
    ).json()
    assert [(o["callsign"], o["stale"]) for o in found["officers"]] == [
        ("XW-08", False), ("XW-07", True)
    ]  # fmt: skip
    # A fresh report from the near officer puts them first again.
    await report_position(near, 118.7930)
    found = await (
        await app_client.get(
            f"/api/incidents/{incident}/recommendations", headers=staff.dispatcher.headers
        )
    ).json()
    assert [(o["callsign"], o["stale"]) for o in found["officers"]] == [
        ("XW-07", False), ("XW-08", False)
    ]  # fmt: skip


async def test_a_commanders_next_takes_escalated_incidents_first(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    urgent = (await report(app_client, citizen, tag="kidnapping"))["incident_id"]
    minor = (await report(app_client, citizen, tag="other"))["incident_id"]
    d, c = staff.dispatcher, staff.commander
    assert (await act(app_client, d, minor, "claim"))[0] == 200
    assert (await act(app_client, d, minor, "escalate", {"note": "a decision for you"}))[0] == 200
    # A dispatcher's next never hands out what waits for a commander.
    response = await app_client.post("/api/incidents/next", headers=d.headers)
    assert (await response.json())["incident"]["id"] == urgent
    assert (await act(app_client, d, urgent, "release"))[0] == 200
    # The commander gets the escalated one before the (more urgent) queued one.
    taken = []
    for _ in range(3):
        response = await app_client.post("/api/incidents/next", headers=c.headers)
        incident = (await response.json())["incident"]
        taken.append(incident and incident["id"])
    assert taken == [minor, urgent, None]


async def test_recommendations_are_the_five_nearest_in_scope(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    from tests.conftest import make_staff

    incident = (await report(app_client, citizen))["incident_id"]  # at Xuanwu Lake
    lon, lat = 118.7926, 32.0732
    officers = [staff.officer] + [
        await make_staff(app_client, f"off-xw-{n}", "officer", ("320102",), f"XW-{20 + n}")
        for n in range(6)
    ]
    gulou = await make_staff(app_client, "off-gl-1", "officer", ("320106",), "GL-01")
    # Xuanwu's officers 100 m, 200 m, ... away; Gulou's officer the closest of all.
    for n, officer in enumerate([*officers, gulou]):
        await app_client.post(
            "/api/officers/me/duty", json={"on_duty": True}, headers=officer.headers
        )
        offset = 0.0 if officer is gulou else (n + 1) * 0.00106  # ~100 m of longitude
        response = await app_client.post(
            "/api/officers/me/position",
            json={"lon": lon + offset, "lat": lat, "accuracy_m": 5},
            headers=officer.headers,
        )
        assert response.status == 202
    response = await app_client.get(
        f"/api/incidents/{incident}/recommendations", headers=staff.dispatcher.headers
    )
    found = (await response.json())["officers"]
    assert [o["callsign"] for o in found] == ["XW-07", "XW-20", "XW-21", "XW-22", "XW-23"]
    distances = [o["distance_m"] for o in found]
    assert distances == sorted(distances) and 90 < distances[0] < 110
    # Out of the incident's scope, the recommendations are not yours to see.
    response = await app_client.get(
        f"/api/incidents/{incident}/recommendations", headers=staff.other_dispatcher.headers
    )
    assert response.status == 404


async def test_a_claim_is_answered_while_redis_holds_back_writes(
    app_client: Client, citizen: CitizenSession, staff: Staff, redis: aioredis.Redis
) -> None:
    """Redis is an index and a bus: a claim that has committed is answered at once, and
    the index catches up when Redis takes writes again."""
    incident = (await report(app_client, citizen))["incident_id"]
    await app_of(app_client)[REDIS_WRITES].drain()
    await redis.client_pause(30000, all=False)  # writes only
    try:
        response = await asyncio.wait_for(
            app_client.post("/api/incidents/next", headers=staff.dispatcher.headers), 20
        )
        assert (await response.json())["incident"]["id"] == incident
        # Answered while the index could not yet have been told.
        assert await redis.zscore(GLOBAL_KEY, incident) is not None
    finally:
        await redis.client_unpause()
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(GLOBAL_KEY, incident) is None
