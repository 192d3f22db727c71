"""The console's verbs, each declared once: name, body, the service method it calls,
what it answers, summary.

The HTTP routes (`dispatch.http.staff_api`), the `/console` Socket.IO handlers
(`signaling.namespaces.console`) and the OpenAPI operations (`dispatch.http.openapi`)
are generated from `VERBS`.  A verb is reached two ways, with the same outcome and the
same error codes:

* `POST /api/incidents/{incident_id}/<path>` with the staff token and the body as JSON;
  the answer is the result itself or `{<key>: result}` (`Answer.bare`);
* the `/console` event `<name>` with one object, the body's fields and `incident_id`;
  the ack is `{"ok": true, <key>: result}`, or `{"ok": false, "error": ...}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from msgspec import Struct

from dispatch.domain.errors import Conflict, DispatchError, Forbidden, NotFound
from dispatch.domain.events import StoredEvent
from dispatch.domain.field_reports import Thread
from dispatch.domain.incidents import Disposition, Incident, TransferTarget
from dispatch.services.messages import MessageService
from dispatch.services.staff_auth import StaffSession
from dispatch.services.workflow import Workflow
from dispatch.wire import models as m
from dispatch.wire.incident_view import incident_view


@dataclass(frozen=True, slots=True)
class Desk:
    """The services the verbs call."""

    workflow: Workflow
    messages: MessageService


@dataclass(frozen=True, slots=True)
class Answer:
    """How a verb's result goes back: under `key` in the /console ack; over HTTP as the
    body itself (`bare`) or as `{key: ...}`, described in OpenAPI by `model`."""

    key: str
    bare: bool
    render: Callable[[Any], Any]
    model: type[Struct] | None = None


def _taken(incident: Incident | None) -> dict[str, Any] | None:
    return None if incident is None else incident_view(incident)


def _seq(event: StoredEvent) -> int:
    return event.seq


def _as_is(message: dict[str, Any]) -> dict[str, Any]:
    return message


INCIDENT = Answer("incident", bare=True, render=incident_view, model=m.IncidentOut)
TAKEN = Answer("incident", bare=False, render=_taken)  # null when the queue is empty
SEQ = Answer("seq", bare=False, render=_seq)  # of the event it recorded
MESSAGE = Answer("message", bare=True, render=_as_is)  # as it was stored and sent

# (services, who, the incident or None, the decoded body or None) -> what `Answer` renders
Call = Callable[[Desk, StaffSession, Any, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Verb:
    name: str  # the /console event; the HTTP path's last segment unless `path` says
    summary: str
    call: Call
    body: type[Struct] | None = None
    answer: Answer = INCIDENT
    # What it refuses besides a bad request and a bad token (OpenAPI's error statuses).
    refusals: tuple[type[DispatchError], ...] = (Forbidden, NotFound, Conflict)
    path: str | None = None
    targeted: bool = True  # acts on the incident `incident_id`
    creates: bool = False  # records something new: HTTP 201

    @property
    def http_path(self) -> str:
        segment = self.path or self.name
        if self.targeted:
            return f"/api/incidents/{{incident_id}}/{segment}"
        return f"/api/incidents/{segment}"


def _on_incident(
    method: Callable[[Workflow, StaffSession, uuid.UUID], Awaitable[Incident]],
) -> Call:
    """A `Workflow` method that takes nothing but the incident."""

    async def call(desk: Desk, session: StaffSession, incident_id: uuid.UUID, _: None) -> Incident:
        return await method(desk.workflow, session, incident_id)

    return call


async def _next(desk: Desk, session: StaffSession, _: None, __: None) -> Incident | None:
    return await desk.workflow.next(session)


async def _assign(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.AssignIn
) -> Incident:
    return await desk.workflow.assign(
        session, incident_id, body.officer_ids, body.mutual_aid_reason
    )


async def _merge(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.MergeIn
) -> Incident:
    return await desk.workflow.merge(session, incident_id, body.into)


async def _invalid(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.InvalidIn
) -> Incident:
    return await desk.workflow.mark_invalid(session, incident_id, body.reason)


async def _transfer(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.TransferIn
) -> Incident:
    if body.to == "precinct":
        return await desk.workflow.reroute(session, incident_id, body.name, body.note)
    return await desk.workflow.transfer(
        session, incident_id, TransferTarget(body.to), body.name, body.note
    )


async def _escalate(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.EscalateIn
) -> Incident:
    return await desk.workflow.escalate(session, incident_id, body.note)


async def _resolve(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.ResolveIn
) -> Incident:
    return await desk.workflow.resolve(
        session, incident_id, Disposition(body.disposition), body.note
    )


async def _note(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.NoteIn
) -> StoredEvent:
    return await desk.workflow.note(session, incident_id, body.text, body.kind)


async def _message(
    desk: Desk, session: StaffSession, incident_id: uuid.UUID, body: m.MessageIn
) -> dict[str, Any]:
    return await desk.messages.from_staff(
        session, incident_id, body.body, body.client_key, Thread(body.thread)
    )


VERBS: tuple[Verb, ...] = (
    Verb("next", "Claim the most urgent queued incident in scope", _next, answer=TAKEN,
         refusals=(Forbidden,), targeted=False),
    Verb("claim", "Claim an incident", _on_incident(Workflow.claim)),
    Verb("release", "Put a claimed incident back in the queue", _on_incident(Workflow.release)),
    Verb("assign", "Assign officers", _assign, m.AssignIn),
    Verb("merge", "Merge into another incident", _merge, m.MergeIn),
    Verb("unmerge", "Undo a merge", _on_incident(Workflow.unmerge)),
    Verb("invalid", "Mark invalid (counts against the reporter's record)", _invalid,
         m.InvalidIn),
    Verb("transfer", "Transfer to a precinct, outside agency or department", _transfer,
         m.TransferIn),
    Verb("escalate", "Escalate to a commander", _escalate, m.EscalateIn),
    Verb("resolve", "Resolve with a disposition", _resolve, m.ResolveIn),
    Verb("close", "Close", _on_incident(Workflow.close)),
    Verb("note", "Follow-up or callback note", _note, m.NoteIn, SEQ, (Forbidden, NotFound),
         path="notes", creates=True),
    Verb("message", "Message the reporter, or the officers working it (thread)", _message,
         m.MessageIn, MESSAGE, (Forbidden, NotFound), path="messages", creates=True),
)  # fmt: skip
