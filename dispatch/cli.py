"""The `micro110` command.  The only module that prints, and the entry point that
configures logging and builds `Settings`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import psutil

from dispatch.auth.passwords import Passwords, generate_password
from dispatch.domain.errors import DispatchError
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.infra.collector import settle_memory
from dispatch.infra.connections import DatabaseUnavailable, RedisUnavailable, open_infrastructure
from dispatch.infra.embedded import EmbeddedServiceError
from dispatch.infra.logs import configure_logging
from dispatch.settings import Settings, SettingsError

logger = logging.getLogger("dispatch.cli")

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """A command-level failure, printed as one line."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (default ./var; MICRO110_DATA_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micro110", description="micro-110 emergency dispatch server"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8110)")
    serve.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load the demo city and logins (default: only with embedded PostgreSQL)",
    )

    migrate = commands.add_parser("migrate", help="apply database migrations")
    _common(migrate)

    precincts = commands.add_parser("precincts", help="precinct boundaries").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    pimport = precincts.add_parser("import", help="import a GeoJSON FeatureCollection")
    _common(pimport)
    pimport.add_argument("file", type=Path)
    pimport.add_argument("--name-property", required=True)
    pimport.add_argument("--code-property", required=True)
    pimport.add_argument("--datum", choices=["wgs84", "gcj02", "bd09"], default="wgs84")
    pimport.add_argument("--replace", action="store_true", help="retire precincts not in the file")
    pimport.add_argument(
        "--wait-s",
        type=float,
        default=60.0,
        help="how long to wait for every running node to serve the import (default 60)",
    )

    users = commands.add_parser("users", help="staff accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    uadd = users.add_parser("add", help="create a staff account")
    _common(uadd)
    uadd.add_argument("username")
    uadd.add_argument("--role", required=True, choices=[r.value for r in Role])
    uadd.add_argument("--precinct", action="append", default=[], help="precinct code (repeatable)")
    uadd.add_argument("--display-name", default=None)
    uadd.add_argument("--callsign", default=None, help="officer call sign (default: the username)")
    uadd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: generate and print one)",
    )
    ulist = users.add_parser("list", help="list staff accounts")
    _common(ulist)

    identity = commands.add_parser("identity", help="the real-name registry").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    iimport = identity.add_parser(
        "import", help="load a CSV with columns name,national_id (stored only as keyed hashes)"
    )
    _common(iimport)
    iimport.add_argument("file", type=Path)

    queue = commands.add_parser("queue", help="the priority queue index").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    qrebuild = queue.add_parser("rebuild", help="rebuild the Redis queue index from PostgreSQL")
    _common(qrebuild)

    backup = commands.add_parser(
        "backup", help="back up PostgreSQL and the evidence files into a new directory"
    )
    _common(backup)
    backup.add_argument("directory", type=Path)
    restore = commands.add_parser(
        "restore", help="restore a backup into an empty database and a fresh data directory"
    )
    _common(restore)
    restore.add_argument("directory", type=Path)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        demo=getattr(args, "demo", None),
    )


def _process_age() -> float:
    """Seconds since this process was started (the clock's tick: ~10 ms)."""
    return time.time() - psutil.Process().create_time()


async def _serve(settings: Settings) -> None:
    # The start-up's phases, for the banner: the interpreter with this module's imports
    # and the settings, then the application's modules, then each of its contexts.
    phases = {"python": round(_process_age(), 3)}
    began = time.perf_counter()
    # Here, not at the top: the other commands (a precinct import above all, whose
    # seconds count) need neither aiohttp's server nor its client (~0.2 s of imports).
    from aiohttp import web

    from dispatch.app import DEMO_LOGINS, STARTUP, after_ready, create_app

    phases["modules"] = round(time.perf_counter() - began, 3)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from exc
        logins = app.get(DEMO_LOGINS)
        began = time.perf_counter()
        settle_memory()
        phases |= app[STARTUP] | {"memory": round(time.perf_counter() - began, 3)}
        _print_banner(settings, logins or [], startup=phases)
        after_ready(app)
        await stop.wait()
        logger.info("shutting down")
    finally:
        await runner.cleanup()
    print("micro110: stopped", flush=True)


def _print_banner(
    settings: Settings, logins: Sequence[Any], *, startup: dict[str, float] | None = None
) -> None:
    base = settings.base_url
    lines = [
        "",
        f"micro110 is running on {base}",
        f"  status page        {base}/",
        f"  health             {base}/healthz   readiness {base}/readyz   metrics {base}/metrics",
        f"  data directory     {settings.data_dir.resolve()}",
        "  postgresql         "
        + ("embedded" if settings.embedded_database else "external (DATABASE_URL)"),
        "  redis              "
        + ("embedded" if settings.embedded_redis else "external (REDIS_URL)"),
    ]
    if logins:
        lines.append("  demo logins (generated once for this data directory):")
        for login in logins:
            scope = ", ".join(login.precincts)
            role = login.role.value
            lines.append(f"    {role:<10} {login.username} / {login.password}   precincts: {scope}")
    if startup is not None:
        # "start-up 1.95 s, 1.62 s CPU: python 0.45, modules 0.70, ..." (bench/restart.py)
        each = ", ".join(f"{name} {seconds:.2f}" for name, seconds in startup.items())
        lines.append(
            f"  start-up           {_process_age():.2f} s, {time.process_time():.2f} s CPU: {each}"
        )
    lines.append("Press Ctrl+C to stop.")
    print("\n".join(lines), flush=True)


async def _migrate(settings: Settings) -> None:
    async with open_infrastructure(settings, need_redis=False) as infra:
        version = await infra.schema_version()
    print(f"micro110: database at schema version {version}")


async def _precincts_import(settings: Settings, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from dispatch.infra.malloc import one_arena
    from dispatch.infra.precinct_registry import LIVE_WITHIN_S
    from dispatch.services.precincts import import_precincts, wait_until_served
    from geo.datum import Datum
    from geo.geojson import decode_feature_collection

    if settings.import_niceness:  # before any work and any thread
        with contextlib.suppress(OSError):
            os.nice(settings.import_niceness)  # batch work: the nodes' alarms go first
            print(f"micro110: importing at niceness {os.nice(0)}, below the nodes", flush=True)
    reading_from = time.perf_counter()
    try:
        # Rings as arrays (geo.geojson): a national layer's tens of megabytes decode in
        # 0.3 s instead of 0.7 s (1.5 s with the json module), and validation reads them
        # without converting a million positions from Python lists.
        collection = decode_feature_collection(args.file.read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CommandError(f"{args.file} is not valid JSON: {exc}") from exc
    read_s = time.perf_counter() - reading_from
    one_arena()  # before the index build starts its threads
    async with open_infrastructure(settings, need_redis=False) as infra:
        with tqdm(desc="validating", unit="feature", file=sys.stderr, disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            result = await import_precincts(
                infra.pool,
                collection,
                name_property=args.name_property,
                code_property=args.code_property,
                datum=Datum(args.datum),
                replace=args.replace,
                source=str(args.file.name),
                actor=Actor.system("cli"),
                progress=progress,
            )
        # Bounded: a node that is stopping or stuck is named, not waited for forever.
        waiting_from = time.perf_counter()
        served, lagging = await wait_until_served(
            infra.pool, result.import_id, timeout_s=args.wait_s, live_within_s=LIVE_WITHIN_S
        )
        served_s = time.perf_counter() - waiting_from
    for line in result.report:
        print(f"  {line}")
    print(
        f"micro110: imported {result.accepted} precinct(s), rejected {result.rejected}"
        + (f", retired {', '.join(result.retired)}" if result.retired else "")
        + f" (import #{result.import_id})"
    )
    steps = {"read": read_s, **result.timings, "served": served_s}
    print("micro110: seconds " + ", ".join(f"{step} {s:.2f}" for step, s in steps.items()))
    if served or lagging:
        print(
            f"micro110: import #{result.import_id} served by "
            + (", ".join(f"{n.node} (since {n.loaded_at:%H:%M:%S})" for n in served) or "no node")
        )
    else:
        print("micro110: no running node seen; nodes load the import when they start")
    if lagging:
        names = ", ".join(f"{n.node} (still on import #{n.import_id})" for n in lagging)
        raise CommandError(
            f"not serving import #{result.import_id} after {args.wait_s:g} s: {names}"
        )


async def _users_add(settings: Settings, args: argparse.Namespace) -> None:
    from dispatch.services.users import create_user

    if args.password_stdin:
        password = (
            sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
        )
        generated = False
    else:
        password, generated = generate_password(), True
    async with open_infrastructure(settings, need_redis=False) as infra:
        user = await create_user(
            infra.pool,
            Passwords(),
            username=args.username,
            password=password,
            role=Role(args.role),
            display_name=args.display_name,
            precincts=frozenset(args.precinct),
            callsign=args.callsign,
            actor=Actor.system("cli"),
        )
    print(f"micro110: created {user.role.value} {user.username} (id {user.id})")
    if generated:
        print(f"  password: {password}")


async def _users_list(settings: Settings) -> None:
    from dispatch.services.users import list_users

    async with open_infrastructure(settings, need_redis=False) as infra:
        users = await list_users(infra.pool)
    for user in users:
        state = "" if user.active else " (disabled)"
        scope = ",".join(sorted(user.precincts))
        print(f"{user.id:>5}  {user.username:<20} {user.role.value:<11} {scope}{state}")


async def _identity_import(settings: Settings, args: argparse.Namespace) -> None:
    import csv
    from datetime import UTC, datetime

    from dispatch.services.citizens import import_registry

    try:
        with args.file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"name", "national_id"} <= set(reader.fieldnames):
                raise CommandError(
                    f"{args.file}: the header must name the columns name,national_id"
                )
            rows = list(reader)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CommandError(f"{args.file} is not a UTF-8 CSV file: {exc}") from exc
    async with open_infrastructure(settings, need_redis=False) as infra:
        result = await import_registry(
            infra.pool, infra.keys, rows, today=datetime.now(UTC).date(), actor=Actor.system("cli")
        )
    for line in result.rejected:
        print(f"  rejected {line}")
    print(f"micro110: imported {result.imported} identities, rejected {len(result.rejected)}")


async def _queue_rebuild(settings: Settings) -> None:
    from dispatch.infra.queue_index import PriorityQueue

    async with open_infrastructure(settings) as infra:
        assert infra.redis is not None
        count = await PriorityQueue(infra.redis).rebuild(infra.pool)
    print(f"micro110: queue rebuilt with {count} queued incident(s)")


async def _backup(settings: Settings, args: argparse.Namespace, *, restoring: bool) -> None:
    from dispatch.infra.backup import BackupError, backup, restore

    try:
        done = await (restore if restoring else backup)(settings, args.directory)
    except BackupError as exc:
        raise CommandError(str(exc)) from exc
    counts = ", ".join(f"{n} {table}" for table, n in done.counts.items())
    verb = "restored" if restoring else "backed up"
    print(f"micro110: {verb} {counts}; {done.files} evidence files ({done.bytes:,} bytes)")


def _dispatch(args: argparse.Namespace, settings: Settings) -> Coroutine[Any, Any, None]:
    table: dict[tuple[str, str | None], Callable[[], Coroutine[Any, Any, None]]] = {
        ("serve", None): lambda: _serve(settings),
        ("migrate", None): lambda: _migrate(settings),
        ("precincts", "import"): lambda: _precincts_import(settings, args),
        ("users", "add"): lambda: _users_add(settings, args),
        ("users", "list"): lambda: _users_list(settings),
        ("identity", "import"): lambda: _identity_import(settings, args),
        ("queue", "rebuild"): lambda: _queue_rebuild(settings),
        ("backup", None): lambda: _backup(settings, args, restoring=False),
        ("restore", None): lambda: _backup(settings, args, restoring=True),
    }
    return table[(args.command, getattr(args, "action", None))]()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"micro110: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_dispatch(args, settings))
    except (DatabaseUnavailable, RedisUnavailable, EmbeddedServiceError, CommandError) as exc:
        setting: dict[type[Exception], str] = {
            DatabaseUnavailable: "DATABASE_URL",
            RedisUnavailable: "REDIS_URL",
        }
        name = setting.get(type(exc))
        prefix = f"{name}: " if name else ""
        print(f"micro110: error: {prefix}{exc}", file=sys.stderr)
        return EXIT_FAILURE
    except DispatchError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"micro110: error{where}: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
