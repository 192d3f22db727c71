"""The console's keyboard, its confirmations, evidence and identity on demand, the map
without a tile server, and the officers' free/busy count, in headless Chromium against
the real app."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from dispatch.domain.events import Actor
from dispatch.http.keys import INFRA
from dispatch.services.citizens import import_registry
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.console_web.pages import open_console, post_alarm, row
from tests.console_web.test_console import api_incident, feed_client, on_duty_nearby
from tests.dispatch.services.test_intake_reports import fields, form, jpeg

pytestmark = pytest.mark.browser

# A valid GB 11643 number and its registry entry (as in the identity tests).
NATIONAL_ID = "11010519491231002X"
NAME = "王小明"

# A key as the page sees it while an input method composes a word (a Chinese IME sends
# keydown for every letter): returns whether the page left the key alone.
COMPOSING_KEY = """([key, keyCode]) => {
  const event = new KeyboardEvent('keydown', {key, keyCode, isComposing: keyCode !== 229,
                                              bubbles: true, cancelable: true});
  return (document.activeElement || document.body).dispatchEvent(event);
}"""


async def cursor(page: Any) -> str | None:
    value: str | None = await page.get_attribute("li.row[aria-selected=true]", "data-id")
    return value


async def test_keyboard_moves_searches_helps_and_assigns_but_not_while_typing(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    await on_duty_nearby(app_client, staff)
    officer = feed_client(app_client, "/officer", staff.officer.token)
    await officer.go_live()
    try:
        async with chromium() as browser:
            page = await open_console(browser, app_client, staff.dispatcher.username, "en")
            first = (await post_alarm(app_client, citizen, tag="kidnapping"))["incident_id"]
            second = (await post_alarm(app_client, citizen, tag="fire"))["incident_id"]
            await page.wait_for_selector(row(first))
            await page.wait_for_selector(row(second))
            order = await page.eval_on_selector_all("li.row", "rows => rows.map(r => r.dataset.id)")

            # ↑/↓ move the selection along the queue, in the server's order.
            await page.keyboard.press("ArrowDown")
            await page.wait_for_selector(f"{row(order[0])}[aria-selected=true]")
            await page.keyboard.press("ArrowDown")
            await page.wait_for_selector(f"{row(order[1])}[aria-selected=true]")
            await page.keyboard.press("ArrowUp")
            await page.wait_for_selector(f"{row(order[0])}[aria-selected=true]")

            # `?` shows the help; Escape closes it.
            await page.keyboard.press("?")
            await page.wait_for_selector("[role=dialog]:has-text('Keyboard shortcuts')")
            await page.keyboard.press("Escape")
            await page.wait_for_selector("[role=dialog]", state="detached")
            # Also when the key comes before the dialog's button has taken the focus (a
            # dispatcher's quick "?" then Esc; CI once pressed it in that moment).
            await page.keyboard.press("?")
            await page.wait_for_selector("[role=dialog]:has-text('Keyboard shortcuts')")
            await page.evaluate("() => document.activeElement.blur()")
            await page.keyboard.press("Escape")
            await page.wait_for_selector("[role=dialog]", state="detached")

            # `/` focuses the search; keys typed there are text, not commands.
            await page.keyboard.press("/")
            assert await page.evaluate("() => document.activeElement.id") == "search"
            await page.keyboard.type("ca")
            assert await page.input_value("#search") == "ca"
            await page.fill("#search", "")
            await page.keyboard.press("Escape")
            assert await page.evaluate("() => document.activeElement.id") != "search"

            # While an input method composes, `c`, `x` and `a` are the IME's letters: the
            # page does not handle them (handled keys are always default-prevented).
            for key, code in (("c", 67), ("x", 88), ("a", 65), ("c", 229), ("x", 229)):
                assert await page.evaluate(COMPOSING_KEY, [key, code]), (key, code)
            # Composing Chinese in the search field: text only, no selection move.
            await page.focus("#search")
            cdp = await page.context.new_cdp_session(page)
            try:
                await cdp.send(
                    "Input.imeSetComposition",
                    {"text": "ci", "selectionStart": 2, "selectionEnd": 2},
                )
                await cdp.send("Input.insertText", {"text": "刺"})
            finally:
                await cdp.detach()
            assert await page.input_value("#search") == "刺"
            await page.fill("#search", "")
            await page.keyboard.press("Escape")
            assert await cursor(page) == order[0]
            for incident_id in (first, second):
                assert (await api_incident(app_client, staff, incident_id))["state"] == "queued"

            # `a` opens the assignment for the selected incident: the recommended officer's
            # button has the focus, and Enter assigns (claiming it on the way).
            await page.keyboard.press("Enter")
            await page.wait_for_selector(f".detail[data-id='{order[0]}']")
            await page.keyboard.press("a")
            focused = (
                f".detail[data-id='{order[0]}'] .recs button[data-officer='{staff.officer.id}']"
            )
            await page.wait_for_selector(f"{focused}:focus")
            await page.keyboard.press("Enter")
            await page.wait_for_selector(
                f"[data-assignment=offered][data-officer='{staff.officer.id}']"
            )
            await officer.wait_for(lambda evs: any(n == "assignment.offered" for n, _ in evs))
            assigned = await api_incident(app_client, staff, order[0])
            assert assigned["state"] == "assigned"
            assert assigned["claimed_by"] == staff.dispatcher.id
            assert (await api_incident(app_client, staff, order[1]))["state"] == "queued"
            assert page.js_errors == []
    finally:
        await officer.close()


async def test_transfer_resolve_and_invalid_ask_first_in_chinese(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    async with chromium() as browser:
        page = await open_console(browser, app_client, staff.dispatcher.username, "zh-CN")
        transfer = (await post_alarm(app_client, citizen, tag="robbery"))["incident_id"]
        resolve = (await post_alarm(app_client, citizen, tag="fire"))["incident_id"]
        invalid = (await post_alarm(app_client, citizen, tag="medical"))["incident_id"]
        for incident_id in (transfer, resolve, invalid):
            await page.wait_for_selector(row(incident_id))

        async def ask(incident_id: str, verb: str) -> None:
            await page.click(row(incident_id))
            await page.wait_for_selector(f".detail[data-id='{incident_id}']")
            await page.click(f"[data-verb={verb}]")
            await page.wait_for_selector("[role=alertdialog]")

        async def cancel() -> None:
            await page.click("[role=alertdialog] button:has-text('取消')")
            await page.wait_for_selector("[role=alertdialog]", state="detached")

        # 移交: 取消则不变, 确认则移交.  The name field offers the precincts (code, name):
        # the server takes either.
        await page.wait_for_function("() => __console.state.precincts.value.length > 0")
        await ask(transfer, "transfer")
        offered = await page.eval_on_selector_all(
            "#transfer-precincts option", "os => os.map(o => [o.value, o.textContent])"
        )
        assert ["320106", "鼓楼区"] in offered, offered
        await page.fill("[role=alertdialog] input[name=name]", "鼓楼分局")
        await cancel()
        assert (await api_incident(app_client, staff, transfer))["state"] == "queued"
        await ask(transfer, "transfer")
        await page.select_option("select[name=to]", "agency")
        await page.fill("[role=alertdialog] input[name=name]", "市消防救援支队")
        await page.click("[data-confirm]")
        await page.wait_for_selector(row(transfer), state="detached")
        moved = await api_incident(app_client, staff, transfer)
        assert moved["state"] == "transferred", moved

        # 办结: 先接警; 取消则不变, 确认则办结.
        await page.click(row(resolve))
        await page.keyboard.press("c")
        await page.wait_for_selector(f"{row(resolve)}[data-state=claimed]")
        await ask(resolve, "resolve")
        await page.keyboard.press("Escape")
        await page.wait_for_selector("[role=alertdialog]", state="detached")
        assert (await api_incident(app_client, staff, resolve))["state"] == "claimed"
        await ask(resolve, "resolve")
        await page.select_option("select[name=disposition]", "advised")
        await page.fill("[role=alertdialog] textarea[name=note]", "已劝离")
        await page.click("[data-confirm]")
        await page.wait_for_selector(row(resolve), state="detached")
        resolved = await api_incident(app_client, staff, resolve)
        assert resolved["state"] == "resolved" and resolved["disposition"] == "advised"

        # 无效警情: 取消则不变, 确认则标记无效.
        await ask(invalid, "invalid")
        await cancel()
        assert (await api_incident(app_client, staff, invalid))["state"] == "queued"
        await ask(invalid, "invalid")
        await page.fill("[role=alertdialog] input[name=reason]", "误触报警")
        await page.click("[data-confirm]")
        await page.wait_for_selector(row(invalid), state="detached")
        assert (await api_incident(app_client, staff, invalid))["state"] == "invalid"
        assert page.js_errors == []


async def test_photos_blurred_until_clicked_and_the_reporter_revealed_on_click_audited(
    app_client: Client, staff: Staff, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    infra = app_of(app_client)[INFRA]
    await import_registry(
        infra.pool, infra.keys, [{"name": NAME, "national_id": NATIONAL_ID}],
        today=datetime.now(UTC).date(), actor=Actor.system("test"),
    )  # fmt: skip
    named = await app_client.post(
        "/api/citizens/me/real-name",
        json={"name": NAME, "national_id": NATIONAL_ID},
        headers=citizen.headers,
    )
    assert named.status == 200, await named.text()
    reported = await app_client.post(
        "/api/reports", data=form(fields(), [jpeg(), jpeg()]), headers=citizen.headers
    )
    assert reported.status == 201, await reported.text()
    incident_id = (await reported.json())["incident_id"]

    async def reads(table: str) -> list[tuple[str, str]]:
        async with pg.acquire() as conn:
            rows = await conn.fetch(f"SELECT actor_kind, actor_id FROM {table}")
        return [(r["actor_kind"], r["actor_id"]) for r in rows]

    async with chromium() as browser:
        page = await open_console(browser, app_client, staff.dispatcher.username, "zh-CN")
        await page.click(row(incident_id))
        await page.wait_for_selector("[data-action=load-photos]")
        assert await reads("evidence_reads") == []  # nothing is fetched until asked

        # Loaded through the staff evidence route (each read audited), shown blurred.
        await page.click("[data-action=load-photos]")
        await page.wait_for_selector(".photos .photo >> nth=1")
        me = ("staff", str(staff.dispatcher.id))
        assert await reads("evidence_reads") == [me, me]
        filters = await page.eval_on_selector_all(
            ".photos .photo img", "imgs => imgs.map(i => getComputedStyle(i).filter)"
        )
        assert all("blur" in f for f in filters), filters
        assert await page.eval_on_selector_all(
            ".photos .photo img",
            "imgs => imgs.every(i => i.complete && i.naturalWidth === 64)",
        )

        # One click shows that photo, and only that one.
        await page.click(".photos .photo >> nth=0")
        await page.wait_for_selector(".photos .photo.revealed[aria-pressed=true]")
        filters = await page.eval_on_selector_all(
            ".photos .photo img", "imgs => imgs.map(i => getComputedStyle(i).filter)"
        )
        assert filters[0] == "none" and "blur" in filters[1], filters

        # The reporter: hidden until clicked; the read is audited; the ID shown masked.
        assert await page.locator("[data-identity]").count() == 0
        assert await reads("identity_reads") == []
        await page.click("[data-action=reveal-reporter]")
        await page.wait_for_selector("[data-identity]")
        shown = await page.text_content("[data-identity]") or ""
        assert NAME in shown and "1101**********002X" in shown
        assert NATIONAL_ID not in shown
        assert await reads("identity_reads") == [me]
        assert page.js_errors == []


async def test_the_map_draws_precincts_with_no_tile_server(
    app_client: Client, staff: Staff
) -> None:
    precincts = await (await app_client.get("/api/precincts.geojson")).json()
    origin = str(app_client.make_url("/")).rstrip("/")
    async with chromium() as browser:
        page = await browser.new_page()
        elsewhere: list[str] = []
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((origin, "data:", "blob:")) else elsewhere.append(r.url)
            ),
        )
        page = await open_console(browser, app_client, staff.dispatcher.username, "en", page=page)
        await page.wait_for_function(
            "n => __console.map && (() => { let k = 0;"
            " __console.map.leaflet.eachLayer(l => { if (l.feature) k++; }); return k === n; })()",
            arg=len(precincts["features"]),
        )
        drawn = await page.evaluate(FIRST_VERTICES)
        ordered = sorted(precincts["features"], key=lambda f: str(f["properties"]["code"]))
        for feature, (lon, lat) in zip(ordered, drawn, strict=True):
            assert (lon, lat) == pytest.approx(first_vertex(feature["geometry"]), abs=1e-9)
        assert await page.locator(".leaflet-tile").count() == 0
        assert elsewhere == []
        assert page.js_errors == []


# The first vertex of each precinct polygon as drawn, [lon, lat], in feature order.
FIRST_VERTICES = """() => { const out = [];
  __console.map.leaflet.eachLayer(l => { if (!l.feature) return;
    let ll = l.getLatLngs(); while (Array.isArray(ll)) ll = ll[0];
    out.push([l.feature.properties.code, ll.lng, ll.lat]); });
  out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return out.map(([, lng, lat]) => [lng, lat]); }"""


def first_vertex(geometry: dict[str, Any]) -> tuple[float, float]:
    coords: Any = geometry["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    return float(coords[0]), float(coords[1])


async def test_officers_free_and_busy_follow_accept_clear_and_cancel(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    await on_duty_nearby(app_client, staff)
    officer = feed_client(app_client, "/officer", staff.officer.token)
    await officer.go_live()
    headers = staff.dispatcher.headers

    async def dispatch_one() -> str:
        incident_id: str = (await post_alarm(app_client, citizen))["incident_id"]
        for verb, body in (("claim", {}), ("assign", {"officer_ids": [staff.officer.id]})):
            done = await app_client.post(
                f"/api/incidents/{incident_id}/{verb}", json=body, headers=headers
            )
            assert done.status == 200, await done.text()
        await officer.wait_for(
            lambda evs: any(
                n == "assignment.offered" and d["incident"]["id"] == incident_id for n, d in evs
            )
        )
        offer = next(
            d for n, d in officer.events
            if n == "assignment.offered" and d["incident"]["id"] == incident_id
        )  # fmt: skip
        answer = await officer.call(
            "ack", {"assignment_id": offer["assignment_id"], "accept": True}
        )
        assert answer["ok"], answer
        return str(offer["assignment_id"])

    try:
        async with chromium() as browser:
            page = await open_console(browser, app_client, staff.dispatcher.username, "en")
            await page.wait_for_selector(".officers[data-free='1'][data-busy='0']")

            # Accepted: busy.  Cleared by the officer: free again.
            assignment = await dispatch_one()
            await page.wait_for_selector(".officers[data-free='0'][data-busy='1']")
            cleared = await officer.call(
                "status",
                {
                    "assignment_id": assignment,
                    "status": "cleared",
                    "client_key": f"s-{uuid.uuid4()}",
                },
            )
            assert cleared["ok"], cleared
            await page.wait_for_selector(".officers[data-free='1'][data-busy='0']")

            # Busy again; the incident transferred away cancels the working assignment.
            second = await dispatch_one()
            await page.wait_for_selector(".officers[data-free='0'][data-busy='1']")
            incident_id = next(
                d["incident"]["id"] for n, d in officer.events
                if n == "assignment.offered" and d["assignment_id"] == second
            )  # fmt: skip
            moved = await app_client.post(
                f"/api/incidents/{incident_id}/transfer",
                json={"to": "agency", "name": "fire brigade"},
                headers=headers,
            )
            assert moved.status == 200, await moved.text()
            await page.wait_for_selector(".officers[data-free='1'][data-busy='0']")

            # A fresh console (from the roster) agrees with the live one.
            fresh = await open_console(browser, app_client, staff.commander.username, "en")
            await fresh.wait_for_selector(".officers[data-free='1'][data-busy='0']")
            assert page.js_errors == []
    finally:
        await officer.close()
