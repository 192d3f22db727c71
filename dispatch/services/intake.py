"""Intake: silent alarms and text/image reports become queued incidents.

A submission's report, incident, possible-duplicate links, attachments and
`incident.created` event are written in one statement, so one transaction: all or
nothing.  The citizen's answer is built before and stored with the report, so a retry
with the same idempotency key (also a racing one) gets the same answer and never a
second incident.  Publishing and queue indexing happen after commit, and only then is
the citizen answered.

Submissions that arrive while one is being written are written together (group
commit, dispatch/infra/batching.py): one read, one statement, one transaction for
the batch.  Under light load that is a batch of one; in a surge it keeps the service
from drowning in round trips.  If the statement fails, nothing of the batch was
written and each submission is tried again alone, so one bad submission never fails
another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from dispatch.auth.tokens import TokenKind, TokenSigner, token_digest
from dispatch.domain.duplicates import compatible_with
from dispatch.domain.errors import BadRequest, ServiceBusy, Unauthorized
from dispatch.domain.events import Actor, ActorKind, EventType, StoredEvent
from dispatch.domain.incidents import (
    CitizenId,
    IncidentState,
    Location,
    case_number,
)
from dispatch.domain.priority import Channel, PriorityWeights, priority_credit, priority_score
from dispatch.evidence.files import EvidenceStore
from dispatch.evidence.images import VerifiedImage
from dispatch.infra.batching import GroupCommit
from dispatch.infra.clock import Clock
from dispatch.infra.precinct_registry import PrecinctRegistry
from dispatch.infra.publisher import Publisher
from dispatch.infra.queue_index import PriorityQueue, QueueEntry
from dispatch.store import incidents as incident_store
from dispatch.wire.incident_view import incident_view
from dispatch.wire.models import IntakeOut
from geo.datum import Datum, to_wgs84
from geo.distance import degree_box, haversine_m

logger = logging.getLogger(__name__)

TRACKING_TTL = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Position:
    lon: float
    lat: float
    datum: Datum
    accuracy_m: float | None


@dataclass(frozen=True, slots=True)
class Submission:
    """What every intake channel hands to the common path."""

    channel: Channel
    tag: str
    idempotency_key: str
    position: Position | None
    location_source: str  # device | exif | none
    text: str | None = None
    client_time: datetime | None = None
    images: tuple[tuple[VerifiedImage, str], ...] = field(default=())  # (image, storage key)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    answer: IntakeOut
    replayed: bool


@dataclass(frozen=True, slots=True)
class _Arrival:
    citizen_id: CitizenId
    submission: Submission
    location: Location
    received_at: datetime
    box: tuple[float, float, float, float] | None  # where possible duplicates are looked for


@dataclass(frozen=True, slots=True)
class _Planned:
    intake: incident_store.NewIntake
    stored: dict[str, Any]  # the answer as stored with the report
    token: str  # the tracking token
    entry: QueueEntry
    nearby: incident_store.NearbyIncident | None  # for later submissions of its batch


@dataclass(slots=True)
class IntakeService:
    pool: asyncpg.Pool
    queue: PriorityQueue
    precincts: PrecinctRegistry
    signer: TokenSigner
    clock: Clock
    publisher: Publisher
    evidence: EvidenceStore
    weights: PriorityWeights
    case_prefix: str
    timezone: zoneinfo.ZoneInfo
    duplicate_radius_m: float = 300.0
    duplicate_window: timedelta = timedelta(minutes=30)
    # How long a failed submission's new evidence files wait before they are removed
    # (if still unreferenced): longer than any request takes to commit.
    evidence_grace_s: float = 600.0
    # At most this many submissions, and this many bytes of photos, wait to be written.
    max_waiting: int = 10_000
    max_waiting_bytes: int = 512 * 1024 * 1024
    _waiting_bytes: int = 0
    _discards: set[asyncio.Task[None]] = field(default_factory=set)
    _group: GroupCommit[_Arrival, IntakeResult] = field(init=False)

    def __post_init__(self) -> None:
        # One batch at a time: a batch takes everything that arrived while the one
        # before was written, so under load batches grow instead of round trips
        # multiplying (measured on 2 cores: 1 writer ~10% more alarms/s than 2, ~25%
        # more than 4).  Under light load a lone alarm is written at once.
        self._group = GroupCommit(self._submit_batch, max_batch=64, max_running=1)

    def locate(self, position: Position | None) -> Location:
        if position is None:
            return Location(None, None, None, None, "unknown", None, None)
        lon, lat = to_wgs84(position.lon, position.lat, position.datum)
        found = self.precincts.snapshot.index.locate(lon, lat)
        if found.precinct is not None:
            return Location(lon, lat, position.accuracy_m, found.precinct, "inside", None, None)
        return Location(
            lon, lat, position.accuracy_m, None, "out_of_jurisdiction", found.nearest,
            found.distance_m if found.nearest is not None else None,
        )  # fmt: skip

    def _tracking_token(self, incident_id: uuid.UUID, case_no: str, received_at: datetime) -> str:
        # Deterministic for an incident (fixed iat and jti), so a replayed submission
        # gets the same token back without the token ever being stored.
        token, _ = self.signer.issue(
            TokenKind.TRACKING, str(incident_id), now=received_at, ttl=TRACKING_TTL,
            case=case_no, jti=str(incident_id),
        )  # fmt: skip
        return token

    def _answer(self, stored: dict[str, Any], token: str | None = None) -> IntakeOut:
        if token is None:
            token = self._tracking_token(
                uuid.UUID(stored["incident_id"]),
                stored["case_no"],
                datetime.fromisoformat(stored["received_at"]),
            )
        body = {k: v for k, v in stored.items() if k != "received_at"} | {"tracking_token": token}
        return msgspec.convert(body, IntakeOut)

    def _stored_answer(
        self, incident_id: uuid.UUID, case_no: str, received_at: datetime, location: Location
    ) -> dict[str, Any]:
        names = self.precincts.snapshot.names
        precinct = (
            {"code": location.precinct_code, "name": names.get(location.precinct_code, "")}
            if location.precinct_code
            else None
        )
        jurisdiction: dict[str, Any] = {"status": location.jurisdiction}
        if location.jurisdiction == "out_of_jurisdiction" and location.nearest_code:
            jurisdiction["nearest"] = {
                "code": location.nearest_code,
                "name": names.get(location.nearest_code, ""),
            }
            jurisdiction["distance_m"] = round(location.distance_m or 0.0, 1)
        return {
            "case_no": case_no,
            "incident_id": str(incident_id),
            "precinct": precinct,
            "jurisdiction": jurisdiction,
            "status": IncidentState.QUEUED.value,
            "received_at": received_at.isoformat(),
        }

    async def submit_report(
        self, citizen_id: CitizenId, submission: Submission, images: Sequence[VerifiedImage]
    ) -> IntakeResult:
        """A report with photos: each is stored as evidence (off the event loop) before
        the submission that records it.  Nothing half-written: should the submission
        fail, the files it stored go too, but later, once it is sure no report refers to
        them (a file is shared by every copy of a photo)."""
        loop = asyncio.get_running_loop()
        stored: list[tuple[VerifiedImage, str]] = []
        created: list[str] = []
        try:
            for image in images:
                key, new = await loop.run_in_executor(
                    None,
                    functools.partial(
                        self.evidence.put, image.data, image.sha256, image.format.value
                    ),
                )
                stored.append((image, key))
                if new:
                    created.append(key)
            return await self.submit(
                citizen_id, dataclasses.replace(submission, images=tuple(stored))
            )
        except BaseException:
            self.forget_evidence(created)
            raise

    async def submit(self, citizen_id: CitizenId, submission: Submission) -> IntakeResult:
        # What waits to be written is held in memory, photos included: while PostgreSQL
        # is slow or away, a node refuses more than it can hold (503, Retry-After)
        # rather than run out of memory and lose what it holds.  Nothing was
        # acknowledged, so the phone keeps the report and sends it again.
        size = sum(len(image.data) for image, _ in submission.images)
        if (
            self._group.waiting >= self.max_waiting
            or self._waiting_bytes + size > self.max_waiting_bytes
        ):
            raise ServiceBusy(
                "too many reports are waiting to be stored; send it again in a moment",
                retry_after_s=2,
            )
        # Located and timed on arrival: the time is the report's place in the queue.
        location = self.locate(submission.position)
        arrival = _Arrival(citizen_id, submission, location, self.clock.now(),
                           self._duplicate_box(location))  # fmt: skip
        self._waiting_bytes += size
        try:
            return await self._group.submit(arrival)
        finally:
            self._waiting_bytes -= size

    @property
    def writes(self) -> GroupCommit[_Arrival, IntakeResult]:
        """The group commit that writes submissions (its counters show the batching)."""
        return self._group

    async def drain(self) -> None:
        """Finish the submissions being written (at shutdown).  Pending evidence
        discards are dropped: at worst an unreferenced file stays on disk."""
        await self._group.drain()
        for task in self._discards:
            task.cancel()
        await asyncio.gather(*self._discards, return_exceptions=True)

    def forget_evidence(self, keys: Sequence[str]) -> None:
        """Files a submission stored before it failed: removed once `evidence_grace_s`
        has passed, unless an attachment refers to them by then (another report with
        the same photo, or this one after all) or they were stored again meanwhile.
        Never at once: a file is shared by every report that carries its bytes."""
        if keys:
            task = asyncio.create_task(self._discard_later(list(keys)), name="evidence-discard")
            self._discards.add(task)
            task.add_done_callback(self._discards.discard)

    async def discards_done(self) -> None:
        """Wait for the evidence discards scheduled so far (tests, shutdown)."""
        await asyncio.gather(*self._discards, return_exceptions=True)

    async def _discard_later(self, keys: list[str]) -> None:
        await asyncio.sleep(self.evidence_grace_s)
        try:
            async with self.pool.acquire() as conn:
                referenced = await incident_store.referenced_storage_keys(conn, keys)
            loop = asyncio.get_running_loop()
            for key in keys:
                if key not in referenced:
                    await loop.run_in_executor(
                        None, self.evidence.discard_if_idle, key, self.evidence_grace_s
                    )
        except (OSError, asyncpg.PostgresError):
            # Kept rather than risked: an unreferenced file costs only disk.
            logger.exception("unused evidence files left in place", extra={"keys": keys})

    async def _submit_batch(
        self, batch: Sequence[_Arrival], written: Callable[[], None] = lambda: None
    ) -> list[IntakeResult | Exception]:
        """Submissions that arrived together: read in one round trip, written in one
        statement (one transaction for all), then indexed and published together.
        `written` is called once nothing more is written to PostgreSQL."""
        results: list[IntakeResult | Exception | None] = [None] * len(batch)
        planned: list[tuple[int, _Planned]] = []
        # A retry that arrives in the batch of its original (a phone resending on a bad
        # network) is answered as a replay of it: written twice, the key's unique index
        # would spoil the whole statement.
        planned_keys: dict[tuple[CitizenId, str], int] = {}
        retries: list[tuple[int, int]] = []  # (retry's index, original's index)
        failure: asyncpg.PostgresError | None = None
        async with self.pool.acquire() as conn:
            contexts = await incident_store.intake_contexts(conn, [
                incident_store.ContextQuery(
                    arrival.citizen_id, arrival.submission.idempotency_key,
                    arrival.submission.tag, arrival.box,
                    arrival.received_at - self.duplicate_window,
                )
                for arrival in batch
            ])  # fmt: skip
            for index, (arrival, context) in enumerate(zip(batch, contexts, strict=True)):
                try:
                    key = (arrival.citizen_id, arrival.submission.idempotency_key)
                    if context.earlier is not None:
                        results[index] = self._replay(context.earlier, arrival.submission)
                    elif key in planned_keys:
                        retries.append((index, planned_keys[key]))
                    else:
                        plan = self._plan(arrival, context, [p for _, p in planned])
                        planned.append((index, plan))
                        planned_keys[key] = index
                except Exception as exc:  # noqa: BLE001 - its own answer; the others go on
                    results[index] = exc
            events: list[StoredEvent] = []
            if planned:
                try:
                    events = await incident_store.insert_intakes(
                        conn, [plan.intake for _, plan in planned]
                    )
                except asyncpg.PostgresError as exc:
                    failure = exc
        if failure is not None:
            await self._after_failed_write(batch, planned, results, failure)
            for index, _ in retries:  # now after their originals, one by one
                try:
                    (results[index],) = await self._submit_batch([batch[index]])
                except Exception as exc:  # noqa: BLE001 - its own answer
                    results[index] = exc
            return _answered(results)
        written()
        if planned:
            # The answer waits for neither Redis write (queue index, feed): the report is
            # in PostgreSQL, which `next` reads and every node's settler falls back on,
            # and a slow or lost Redis must not keep a citizen from their receipt.  The
            # index write is handed over first, so a claim on this node racing the
            # publishing below cannot have its removal sent before it; this node's
            # consoles still get the event before any Redis round trip.
            self.queue.add_soon([plan.entry for _, plan in planned])
            await self.publisher.publish(events)
            for index, plan in planned:
                logger.info(
                    "incident created",
                    extra={"incident_id": plan.stored["incident_id"],
                           "case_no": plan.stored["case_no"],
                           "channel": batch[index].submission.channel.value,
                           "precinct": batch[index].location.precinct_code},
                )  # fmt: skip
                results[index] = IntakeResult(self._answer(plan.stored, plan.token), False)
            stored = {index: plan.stored for index, plan in planned}
            for index, original in retries:
                try:
                    results[index] = self._replay(
                        (stored[original], batch[original].submission.channel.value),
                        batch[index].submission,
                    )
                except BadRequest as exc:
                    results[index] = exc
        return _answered(results)

    async def _after_failed_write(
        self,
        batch: Sequence[_Arrival],
        planned: list[tuple[int, _Planned]],
        results: list[IntakeResult | Exception | None],
        failure: asyncpg.PostgresError,
    ) -> None:
        """The statement failed, so nothing of it was written.  Alone, a racing retry
        that committed first gets the answer it got; together, one submission spoiled
        the statement for all, so each is tried again on its own."""
        if len(planned) > 1:
            for index, _ in planned:
                try:
                    (results[index],) = await self._submit_batch([batch[index]])
                except Exception as exc:  # noqa: BLE001 - its own answer
                    results[index] = exc
            return
        ((index, _),) = planned
        if (
            not isinstance(failure, asyncpg.UniqueViolationError)
            or failure.constraint_name != "reports_citizen_id_idempotency_key_key"
        ):
            results[index] = failure
            return
        arrival = batch[index]
        async with self.pool.acquire() as conn:
            earlier = await incident_store.find_response(
                conn, arrival.citizen_id, arrival.submission.idempotency_key
            )
        assert earlier is not None
        try:
            results[index] = self._replay(earlier, arrival.submission)
        except BadRequest as exc:
            results[index] = exc

    def _replay(self, earlier: tuple[dict[str, Any], str], submission: Submission) -> IntakeResult:
        stored, channel = earlier
        if channel != submission.channel.value:
            raise BadRequest(
                "this idempotency key was already used for another kind of report",
                field="idempotency_key",
            )
        return IntakeResult(self._answer(stored), replayed=True)

    def _duplicate_box(self, location: Location) -> tuple[float, float, float, float] | None:
        if location.lon is None or location.lat is None:
            return None
        return degree_box(location.lon, location.lat, self.duplicate_radius_m)

    def _plan(
        self,
        arrival: _Arrival,
        context: incident_store.IntakeContext,
        together: Sequence[_Planned],
    ) -> _Planned:
        """What one new submission writes; `together` are those written in the same
        statement, before it (possible duplicates too)."""
        submission, citizen_id, location = arrival.submission, arrival.citizen_id, arrival.location
        received_at = arrival.received_at
        if context.verification is None:
            raise Unauthorized("unknown citizen; register again", field="token")
        if context.severity is None:
            raise BadRequest(f"unknown tag {submission.tag!r}", field="tag")
        assert context.case_serial is not None
        credit = priority_credit(
            self.weights,
            severity=context.severity,
            verification=context.verification,
            channel=submission.channel,
            false_alarms=context.false_alarms,
        )
        score = priority_score(received_at, credit)
        local_day = received_at.astimezone(self.timezone)
        case_no = case_number(self.case_prefix, local_day, context.case_serial)
        incident_id = uuid.uuid4()
        stored = self._stored_answer(incident_id, case_no, received_at, location)
        token = self._tracking_token(incident_id, case_no, received_at)
        report_id = uuid.uuid4()
        position = submission.position
        new = incident_store.NewIncident(
            id=incident_id, case_no=case_no, channel=submission.channel,
            tag=submission.tag, severity=context.severity, citizen_id=citizen_id,
            verification=context.verification, location=location,
            received_at=received_at, priority_credit_s=credit, priority_score=score,
            tracking_token_hash=token_digest(token),
        )  # fmt: skip
        incident = incident_store.queued_incident(new)
        nearby = list(context.nearby)
        if box := arrival.box:  # and those written with it, close by
            nearby.extend(
                p.nearby for p in together
                if p.nearby is not None
                and box[0] <= p.nearby.lon <= box[2] and box[1] <= p.nearby.lat <= box[3]
            )  # fmt: skip
        duplicates = self._possible_duplicates(submission.tag, location, nearby,
                                               context.active_tags)  # fmt: skip
        intake = incident_store.NewIntake(
            new,
            incident_store.NewReport(
                id=report_id, idempotency_key=submission.idempotency_key,
                text=submission.text,
                lon=position.lon if position else None, lat=position.lat if position else None,
                datum=position.datum.value if position else None,
                accuracy_m=position.accuracy_m if position else None,
                location_source=submission.location_source, client_time=submission.client_time,
                response=stored,
            ),
            duplicates,
            [
                incident_store.NewAttachment(
                    id=uuid.uuid4(), kind="image", media_type=image.media_type,
                    sha256=image.sha256, size=len(image.data), width=image.width,
                    height=image.height, storage_key=key,
                    exif_lon=image.gps[0] if image.gps else None,
                    exif_lat=image.gps[1] if image.gps else None, taken_at=image.taken_at,
                )
                for image, key in submission.images
            ],
            incident_store.NewEvent(
                EventType.INCIDENT_CREATED,
                Actor(ActorKind.CITIZEN, str(citizen_id)),
                {
                    "incident": incident_view(incident),
                    "priority_credit_s": credit, "text": submission.text,
                    "images": len(submission.images),
                    "possible_duplicates": [
                        {"incident_id": str(other), "distance_m": round(distance, 1)}
                        for other, distance in duplicates
                    ],
                },
                incident.scope_precinct,
            ),
        )  # fmt: skip
        return _Planned(
            intake=intake,
            stored=stored,
            token=token,
            entry=QueueEntry(incident_id, location.precinct_code, score),
            nearby=(
                None
                if location.lon is None or location.lat is None
                else incident_store.NearbyIncident(
                    incident_id, submission.tag, location.lon, location.lat
                )
            ),
        )

    def _possible_duplicates(
        self,
        tag: str,
        location: Location,
        nearby: Sequence[incident_store.NearbyIncident],
        active_tags: frozenset[str],
    ) -> list[tuple[uuid.UUID, float]]:
        """Open incidents close in space and time with a compatible tag, and how far: a
        suggestion for the dispatcher (linked both ways), never a merge."""
        if location.lon is None or location.lat is None or not nearby:
            return []
        tags = frozenset(compatible_with(tag, active_tags))
        found = []
        for other in nearby:
            if other.tag not in tags:
                continue
            distance = haversine_m(location.lon, location.lat, other.lon, other.lat)
            if distance <= self.duplicate_radius_m:
                found.append((other.id, distance))
        return found


def _answered(
    results: list[IntakeResult | Exception | None],
) -> list[IntakeResult | Exception]:
    """Every submission of a batch has its answer or its error."""
    answered = [result for result in results if result is not None]
    assert len(answered) == len(results)
    return answered
