"""Assignment across precincts is explicit: mutual aid, with a reason, on the record and
shown to the officer's home precinct."""

import asyncpg

from tests.conftest import CitizenSession, Client, Staff, make_staff
from tests.dispatch.calls import act, report
from tests.signaling.feeds import FeedClient


async def test_an_officer_of_another_precinct_is_sent_only_as_mutual_aid(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    gulou_officer = await make_staff(app_client, "off-gl", "officer", ("320106",), "GL-01")
    await app_client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=gulou_officer.headers
    )
    incident = (await report(app_client, citizen))["incident_id"]  # in Xuanwu (320102)
    assert (await act(app_client, staff.dispatcher, incident, "claim"))[0] == 200
    gulou_console = FeedClient(
        str(app_client.make_url("/")).rstrip("/"), "/console", staff.other_dispatcher.token
    )
    await gulou_console.go_live()

    status, refused = await act(
        app_client, staff.dispatcher, incident, "assign", {"officer_ids": [gulou_officer.id]}
    )
    assert status == 403 and refused["error"]["field"] == "officer_ids"
    assert (
        "GL-01" in refused["error"]["message"]
        and "mutual_aid_reason" in refused["error"]["message"]
    )
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM assignments") == 0

    status, assigned = await act(
        app_client, staff.dispatcher, incident, "assign",
        {"officer_ids": [gulou_officer.id], "mutual_aid_reason": "all Xuanwu units busy"},
    )  # fmt: skip
    assert status == 200 and assigned["state"] == "assigned"
    history = await (
        await app_client.get(f"/api/incidents/{incident}/history", headers=staff.dispatcher.headers)
    ).json()
    by_type = {e["type"]: e for e in history["events"]}
    assert by_type["incident.assigned"]["payload"]["mutual_aid"] == {
        "officer_ids": [gulou_officer.id], "reason": "all Xuanwu units busy",
    }  # fmt: skip
    assert by_type["officer.mutual_aid"]["payload"]["reason"] == "all Xuanwu units busy"

    # The officer's home precinct is told where its officer went, and why.
    await gulou_console.wait_for(lambda evs: any(n == "officer.mutual_aid" for n, _ in evs))
    told = next(d for n, d in gulou_console.events if n == "officer.mutual_aid")
    assert told["officer_id"] == gulou_officer.id and told["precinct_code"] == "320102"
    assert told["case_no"] == assigned["case_no"] and told["reason"] == "all Xuanwu units busy"
    # ... but not the incident itself.
    assert not any(n.startswith("incident.") for n, _ in gulou_console.events)
    await gulou_console.close()
