"""Who reads an incident: officers only what they are sent to, administrators nothing."""

from tests.conftest import CitizenSession, Client, Staff, StaffLogin, make_staff
from tests.dispatch.calls import act, report
from tests.fakes import FakeClock

READS = ("", "/history", "/eido")


async def _read(client: Client, who: StaffLogin, incident: str, what: str) -> int:
    response = await client.get(f"/api/incidents/{incident}{what}", headers=who.headers)
    return response.status


async def _assigned(client: Client, staff: Staff, citizen: CitizenSession) -> str:
    incident: str = (await report(client, citizen, note="man with a knife, blue coat"))[
        "incident_id"
    ]
    await client.post(
        f"/api/incidents/{incident}/messages",
        json={"body": "are you safe?"},
        headers=staff.dispatcher.headers,
    )
    assert (await act(client, staff.dispatcher, incident, "claim"))[0] == 200
    await client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=staff.officer.headers
    )
    status, _ = await act(
        client, staff.dispatcher, incident, "assign", {"officer_ids": [staff.officer.id]}
    )
    assert status == 200
    return incident


async def test_an_officer_reads_no_incident_of_their_precinct_they_are_not_sent_to(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    incident = (await report(app_client, citizen, note="reporter's note"))["incident_id"]
    for what in READS:
        assert await _read(app_client, staff.officer, incident, what) == 404, what
    missing = await app_client.get(
        "/api/incidents/00000000-0000-4000-8000-000000000000", headers=staff.officer.headers
    )
    unassigned = await app_client.get(f"/api/incidents/{incident}", headers=staff.officer.headers)
    assert await missing.json() == await unassigned.json()  # looks missing
    # The same incident is the Xuanwu dispatcher's to read.
    assert await _read(app_client, staff.dispatcher, incident, "") == 200


async def test_an_assigned_officer_reads_an_officers_view_for_a_while_after(
    app_client: Client, citizen: CitizenSession, staff: Staff, fake_clock: FakeClock
) -> None:
    incident = await _assigned(app_client, staff, citizen)
    assert await _read(app_client, staff.officer, incident, "") == 200
    history = await (
        await app_client.get(f"/api/incidents/{incident}/history", headers=staff.officer.headers)
    ).json()
    types = [e["type"] for e in history["events"]]
    assert "incident.created" in types and "assignment.offered" in types
    assert "message.created" not in types and "incident.claimed" not in types
    created = history["events"][0]
    assert created["payload"]["text"] == "man with a knife, blue coat"  # needed on scene
    assert created["actor"] == {"kind": "citizen", "id": None}
    assert citizen.id not in str(history)
    # The export to other agencies is a dispatcher's.
    assert await _read(app_client, staff.officer, incident, "/eido") == 403
    assert await _read(app_client, staff.officer, incident, "/reporter") == 403

    # The incident is resolved: the officer may still read it for an hour, then not.
    status, _ = await act(
        app_client, staff.dispatcher, incident, "resolve", {"disposition": "arrested"}
    )
    assert status == 200
    fake_clock.advance(3500)
    assert await _read(app_client, staff.officer, incident, "/history") == 200
    fake_clock.advance(200)
    for what in READS:
        assert await _read(app_client, staff.officer, incident, what) == 404, what


async def test_an_administrator_reads_no_incident(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    admin = await make_staff(app_client, "admin-1", "admin")
    incident = (await report(app_client, citizen))["incident_id"]
    for what in (*READS, "/reporter", "/recommendations"):
        response = await app_client.get(f"/api/incidents/{incident}{what}", headers=admin.headers)
        assert response.status == 403, what
        assert (await response.json())["error"]["code"] == "forbidden"
    for path in ("/api/incidents", "/api/console/snapshot"):
        assert (await app_client.get(path, headers=admin.headers)).status == 403
    # A commander reads every precinct, chat and reporter's id included.
    history = await (
        await app_client.get(f"/api/incidents/{incident}/history", headers=staff.commander.headers)
    ).json()
    assert history["events"][0]["actor"] == {"kind": "citizen", "id": citizen.id}


async def test_an_officers_history_keeps_the_officers_chat_not_the_reporters(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    incident = await _assigned(app_client, staff, citizen)  # "are you safe?" to the reporter
    sent = await app_client.post(
        f"/api/incidents/{incident}/messages",
        json={"body": "suspect went north on Zhongshan Rd", "thread": "officers"},
        headers=staff.dispatcher.headers,
    )
    assert sent.status in (200, 201), await sent.text()
    history = await (
        await app_client.get(f"/api/incidents/{incident}/history", headers=staff.officer.headers)
    ).json()
    chat = [e["payload"]["message"] for e in history["events"] if e["type"] == "message.created"]
    assert [(m["thread"], m["body"]) for m in chat] == [
        ("officers", "suspect went north on Zhongshan Rd")
    ]
    assert "are you safe?" not in str(history)
    # The console still reads both threads.
    full = await (
        await app_client.get(f"/api/incidents/{incident}/history", headers=staff.dispatcher.headers)
    ).json()
    threads = {e["payload"]["message"]["thread"] for e in full["events"]
               if e["type"] == "message.created"}  # fmt: skip
    assert threads == {"reporter", "officers"}
