"""The composition root: `create_app(settings)` builds everything and owns its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import time
import zoneinfo
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import socketio
from aiohttp import web

from console_web import dist_dir, static_dir
from dispatch.auth.identity_providers import AttestationVerifier, SmsSender
from dispatch.auth.passwords import Passwords
from dispatch.auth.sms import sms_sender_for
from dispatch.auth.tokens import TokenSigner
from dispatch.demo.loader import DemoLogin, ensure_demo_city
from dispatch.evidence.files import EvidenceStore
from dispatch.http import (
    calls_api,
    citizen_api,
    client_config,
    console_api,
    openapi,
    ops,
    pages,
    staff_api,
    status,
)
from dispatch.http.errors import error_middleware
from dispatch.http.keys import (
    ASSIGNMENTS,
    CALLS,
    CITIZENS,
    CLOCK,
    FOLLOW_UP,
    INCIDENTS,
    INFRA,
    INTAKE,
    INTAKE_BUDGETS,
    MESSAGES,
    METRICS,
    NODE_CLIENT,
    OFFICERS,
    OVERDUE,
    PASSWORDS,
    PRECINCTS,
    PUBLISHER,
    QUEUE,
    REDIS_WRITES,
    SETTINGS,
    SMS,
    STAFF_AUTH,
    TRACKING,
    WORKFLOW,
)
from dispatch.infra.clock import Clock, SystemClock
from dispatch.infra.connections import Infrastructure, open_infrastructure
from dispatch.infra.metrics import Metrics
from dispatch.infra.precinct_registry import IndexCache, PrecinctRegistry
from dispatch.infra.publisher import Publisher
from dispatch.infra.queue_index import PriorityQueue
from dispatch.infra.redis_writes import RedisWrites
from dispatch.infra.throttle import KeyedBudget, LoginBackoff, RefusalCount, WindowLimit
from dispatch.services.assignments import AssignmentService
from dispatch.services.calls import CallService
from dispatch.services.citizens import CitizenServices
from dispatch.services.console_queries import ConsoleQueries
from dispatch.services.evidence_access import EvidenceAccess
from dispatch.services.follow_up import AlarmFollowUp
from dispatch.services.incidents import IncidentQueries
from dispatch.services.intake import IntakeService
from dispatch.services.intake_budgets import IntakeBudgets, Submitted
from dispatch.services.messages import MessageService
from dispatch.services.officers import OfficerService
from dispatch.services.overdue import OverdueWatch
from dispatch.services.staff_auth import StaffAuth
from dispatch.services.tracking import TrackingService
from dispatch.services.workflow import Workflow
from dispatch.settings import Settings
from media.deferred import DeferredMedia, StartableMedia
from media.network import ice_servers, limit_host_interfaces
from signaling.server import Signaling, create_socketio, start_signaling

# The composition root is the one place dispatch/ reaches into the adapters.
SOCKETIO = web.AppKey("socketio", socketio.AsyncServer)
SIGNALING = web.AppKey("signaling", Signaling)
INDEX_CACHE = web.AppKey("index_cache", IndexCache)

DEMO_LOGINS = web.AppKey("demo_logins", list[DemoLogin])
# How long each start-up phase took, in seconds (wall clock), in order: the banner's
# "start-up" line and bench/restart.py read it.
STARTUP = web.AppKey("startup", dict[str, float])

# What starts once the node serves (`after_ready`, called by `micro110 serve` after its
# banner): the media's imports.  Without it (the tests' apps) the media loads with the
# first call.
AFTER_READY = web.AppKey("after_ready", list[Callable[[], None]])

_Context = Callable[[web.Application], AsyncIterator[None]]


def after_ready(app: web.Application) -> None:
    for start in app[AFTER_READY]:
        start()


def _timed(name: str, context: _Context) -> _Context:
    """`context` with its start (up to its `yield`) timed into `app[STARTUP]`."""

    async def timed(app: web.Application) -> AsyncIterator[None]:
        began = time.perf_counter()
        async for _ in context(app):
            app[STARTUP][name] = round(time.perf_counter() - began, 3)
            yield

    return timed


async def _infrastructure_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_infrastructure(app[SETTINGS]) as infra:
        app[INFRA] = infra
        yield


async def _demo_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.load_demo:
        infra = app[INFRA]
        app[DEMO_LOGINS] = await ensure_demo_city(
            infra.pool, app[PASSWORDS], settings.data_dir, cache=app[INDEX_CACHE]
        )
    yield


async def _precincts_ctx(app: web.Application) -> AsyncIterator[None]:
    registry = PrecinctRegistry(
        app[INFRA].pool,
        node=app[SETTINGS].node_name,
        cache=app[INDEX_CACHE],
        now=app[CLOCK].now,
    )
    await registry.load()
    app[PRECINCTS] = registry
    watcher = asyncio.create_task(registry.watch(), name="precinct-watch")
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    await registry.forget()


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, infra = app[SETTINGS], app[INFRA]
    assert infra.redis is not None
    clock = app[CLOCK]
    signer = TokenSigner(infra.keys.secret_key)
    app[PUBLISHER] = publisher = Publisher()
    # One stream of Redis writes for the queue index and the feed: one round trip for
    # what this node's requests have to say at the same time.
    app[REDIS_WRITES] = writes = RedisWrites(infra.redis)
    app[QUEUE] = queue = PriorityQueue(infra.redis, writes)
    # Beside the requests, not before them: intake, claims and snapshots read PostgreSQL.
    rebuild = asyncio.create_task(queue.rebuild_at_start(infra.pool), name="queue-rebuild")
    app[CITIZENS] = CitizenServices(
        pool=infra.pool,
        signer=signer,
        keys=infra.keys,
        clock=clock,
        sms=app[SMS],
        attestations=AttestationVerifier.from_file(settings.attestation_keys_file),
        access_ttl=timedelta(seconds=settings.citizen_token_ttl_s),
        publisher=publisher,
        registrations=WindowLimit(
            infra.redis,
            "registrations",
            settings.registrations_per_minute,
            window_s=60,
            now=lambda: clock.now().timestamp(),
        ),
        codes_per_phone_hour=settings.sms_codes_per_phone_hour,
        real_name_per_citizen=WindowLimit(
            infra.redis,
            "real-name-citizen",
            settings.real_name_attempts_per_day,
            window_s=24 * 3600,
            now=lambda: clock.now().timestamp(),
        ),
        real_name_per_network=WindowLimit(
            infra.redis,
            "real-name-network",
            settings.real_name_attempts_per_network_hour,
            window_s=3600,
            now=lambda: clock.now().timestamp(),
        ),
    )
    app[INTAKE] = IntakeService(
        pool=infra.pool,
        queue=queue,
        precincts=app[PRECINCTS],
        signer=signer,
        clock=clock,
        publisher=publisher,
        evidence=EvidenceStore(settings.data_dir.resolve() / "evidence"),
        weights=settings.priority_weights,
        case_prefix=settings.case_prefix,
        timezone=zoneinfo.ZoneInfo(settings.timezone),
        duplicate_radius_m=settings.duplicate_radius_m,
        duplicate_window=timedelta(seconds=settings.duplicate_window_s),
    )
    app[FOLLOW_UP] = AlarmFollowUp(
        pool=infra.pool, queue=queue, publisher=publisher, clock=clock, locate=app[INTAKE].locate
    )

    redis = infra.redis

    def budget(name: str, limit: int) -> KeyedBudget:
        return KeyedBudget(
            redis, name, limit, settings.intake_window_s, now=lambda: clock.now().timestamp()
        )

    app[INTAKE_BUDGETS] = IntakeBudgets(
        pool=infra.pool,
        publisher=publisher,
        clock=clock,
        per_citizen={
            Submitted.ALARM: budget("alarms", settings.alarms_per_citizen),
            Submitted.REPORT: budget("reports", settings.reports_per_citizen),
            Submitted.MESSAGE: budget("messages", settings.messages_per_citizen),
        },
        per_network=budget("intake-network", settings.intake_per_network),
        refusals=RefusalCount(infra.redis),
    )
    app[TRACKING] = TrackingService(infra.pool, signer, clock, publisher)
    app[STAFF_AUTH] = StaffAuth(
        pool=infra.pool,
        passwords=app[PASSWORDS],
        signer=signer,
        clock=clock,
        ttl=timedelta(seconds=settings.staff_token_ttl_s),
        publisher=publisher,
        backoff=LoginBackoff(
            infra.redis,
            free=settings.login_free_failures,
            max_s=settings.login_backoff_max_s,
            now=lambda: clock.now().timestamp(),
        ),
    )
    app[WORKFLOW] = Workflow(
        pool=infra.pool,
        queue=queue,
        publisher=publisher,
        clock=clock,
        offer_for=timedelta(seconds=settings.assignment_reoffer_s),
    )
    app[INCIDENTS] = incidents = IncidentQueries(
        pool=infra.pool,
        agency=settings.agency,
        clock=clock,
        officer_read_after=timedelta(seconds=settings.officer_read_after_s),
    )
    app[OVERDUE] = OverdueWatch(
        pool=infra.pool, clock=clock, publisher=publisher, thresholds_s=settings.overdue_thresholds
    )
    app[OFFICERS] = OfficerService(
        pool=infra.pool,
        clock=clock,
        publisher=publisher,
        precincts=app[PRECINCTS],
        incidents=incidents,
    )
    app[console_api.CONSOLE] = ConsoleQueries(infra.pool)
    app[console_api.EVIDENCE] = EvidenceAccess(infra.pool, incidents, app[INTAKE].evidence)
    app[MESSAGES] = MessageService(
        pool=infra.pool,
        publisher=publisher,
        incidents=incidents,
        clock=clock,
        budgets=app[INTAKE_BUDGETS],
    )
    app[ASSIGNMENTS] = AssignmentService(
        pool=infra.pool,
        publisher=publisher,
        clock=clock,
        reoffer_after=timedelta(seconds=settings.assignment_reoffer_s),
        give_up_after=timedelta(seconds=settings.assignment_unack_s),
    )
    yield
    rebuild.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await rebuild
    await app[INTAKE].drain()
    await writes.drain()


async def _calls_ctx(app: web.Application) -> AsyncIterator[None]:
    """Video calls: the media this node terminates, owned here.  At shutdown every call
    ends (recordings finished and recorded as evidence) before the services stop."""
    settings, infra = app[SETTINGS], app[INFRA]
    evidence_root = settings.data_dir.resolve() / "evidence"

    def media_server() -> StartableMedia:
        from media.config import MediaConfig

        config = MediaConfig(
            recordings_dir=evidence_root,
            # The server's own ICE servers (aiortc uses the first STUN and TURN URL).
            ice_servers=tuple(ice_servers(
                settings.ice_servers, user=f"node-{settings.node_name}", now=time.time(),
                turn_secret=settings.turn_secret, turn_ttl_s=24 * 3600,
                turn_username=settings.turn_username, turn_password=settings.turn_password,
            )),
            max_calls=settings.max_calls,
            peer_timeout_s=settings.call_peer_timeout_s,
            audio_ptime_ms=settings.call_audio_ptime_ms,
            profile_dir=settings.media_profile_dir,
        )  # fmt: skip
        if settings.media_processes:
            from media.processes import MediaProcesses  # (loaded by then)

            return MediaProcesses(
                config, processes=settings.media_processes, niceness=settings.media_niceness,
                interfaces=settings.media_interfaces,
            )  # fmt: skip
        from media.server import MediaServer  # (loaded by then)

        limit_host_interfaces(settings.media_interfaces)
        return MediaServer(config)

    # The media runs in its own processes (media/processes.py), started beside the first
    # requests once the node serves (`after_ready`); or, without them, aiortc and PyAV
    # are imported then in this process (media/deferred.py).
    media = DeferredMedia(
        media_server, max_calls=settings.max_calls,
        modules=["media.processes"] if settings.media_processes else ["media.server"],
    )  # fmt: skip
    calls = CallService(
        pool=infra.pool, publisher=app[PUBLISHER], clock=app[CLOCK], intake=app[INTAKE],
        media=media, evidence_root=evidence_root, node=settings.node_name,
        node_url=settings.internal_url,
    )  # fmt: skip
    media.attach(calls)
    app[CALLS] = calls
    app[NODE_CLIENT] = client = aiohttp.ClientSession()
    await calls.recover()
    app[AFTER_READY].append(media.start)
    yield
    await media.close()
    await client.close()


async def _signaling_ctx(app: web.Application) -> AsyncIterator[None]:
    signaling = await start_signaling(
        app[SOCKETIO],
        app[INFRA],
        app[PUBLISHER],
        staff_auth=app[STAFF_AUTH],
        citizens=app[CITIZENS],
        workflow=app[WORKFLOW],
        officers=app[OFFICERS],
        assignments=app[ASSIGNMENTS],
        messages=app[MESSAGES],
        writes=app[REDIS_WRITES],
    )
    app[SIGNALING] = signaling
    yield
    await signaling.stop()


async def _background_ctx(app: web.Application) -> AsyncIterator[None]:
    """Periodic work (the queue index's upkeep, overdue sweeps, assignment re-offers),
    owned here and cancelled at shutdown."""
    tasks: list[asyncio.Task[None]] = []
    if app[SETTINGS].background_tasks:
        keep = app[QUEUE].keep(app[INFRA].pool, app[SETTINGS].queue_check_s)
        tasks.append(asyncio.create_task(keep, name="queue-keeper"))
        tasks.append(asyncio.create_task(app[OVERDUE].run(), name="overdue-watch"))
        tasks.append(asyncio.create_task(app[ASSIGNMENTS].run(), name="assignment-watch"))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(
    settings: Settings,
    *,
    infrastructure: Infrastructure | None = None,
    clock: Clock | None = None,
    sms_sender: SmsSender | None = None,
    index_cache: IndexCache | None = None,
    passwords: Passwords | None = None,
) -> web.Application:
    """The aiohttp application.

    Tests pass `infrastructure` (the session's servers), a fake `clock`, and an SMS
    sender that records instead of sending (the true seams); tests that log in a hundred
    times pass cheaper argon2 `passwords`.
    """
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=settings.max_upload_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[PASSWORDS] = passwords or Passwords()
    app[CLOCK] = clock or SystemClock()
    app[SMS] = sms_sender or sms_sender_for(settings)
    # A serving node keeps only the index it serves: each national layer it served
    # before would otherwise stay in memory (~250 MB each, bench/geofence.py).
    app[INDEX_CACHE] = index_cache or IndexCache(keep=1)
    app[STARTUP] = {}
    app[AFTER_READY] = []
    if infrastructure is None:
        app.cleanup_ctx.append(_timed("infrastructure", _infrastructure_ctx))
    else:
        app[INFRA] = infrastructure
    app.cleanup_ctx.append(_timed("demo", _demo_ctx))
    app.cleanup_ctx.append(_timed("precincts", _precincts_ctx))
    app.cleanup_ctx.append(_timed("services", _services_ctx))
    app.cleanup_ctx.append(_timed("calls", _calls_ctx))
    app.cleanup_ctx.append(_timed("signaling", _signaling_ctx))
    app.cleanup_ctx.append(_timed("background", _background_ctx))
    app[SOCKETIO] = create_socketio(app)
    app.add_routes(ops.routes)
    app.add_routes(status.routes)
    app.add_routes(citizen_api.routes)
    app.add_routes(openapi.routes)
    app.add_routes(staff_api.routes)
    app.add_routes(calls_api.routes)
    app.router.add_static("/static/", static_dir(), show_index=False, append_version=True)
    client_config.setup(app)
    app.add_routes(console_api.routes)
    pages.setup(app, settings.web_dist or dist_dir())
    return app
