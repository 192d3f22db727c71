"""One frozen, typed settings object, built once from the environment and CLI flags.

Nothing else in the code base reads the environment: the entry point builds a
`Settings` with `Settings.from_env()` (plus CLI overrides) and hands it on.  A bad
value raises `SettingsError` naming the setting, which the CLI prints as one line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch.domain.priority import PriorityWeights, weights_from_json
from media.config import AUDIO_PTIMES_MS


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the setting."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def _str(raw: str) -> str:
    return raw


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None


def _float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _optional_str(raw: str) -> str | None:
    return raw or None


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError("expected a directory path, got an empty value")
    return Path(raw)


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw else None


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"expected a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")  # noqa: TRY004 - a bad setting value
    return value


def _env(name: str, parse: Callable[[str], Any], **kwargs: Any) -> Any:
    """A dataclass field read from environment variable `name` by `parse`."""
    return field(metadata={"env": name, "parse": parse}, **kwargs)


@dataclass(frozen=True, slots=True)
class Settings:
    # Where the servers are.  None means: start an embedded one under data_dir.
    database_url: str | None = _env("DATABASE_URL", _optional_str, default=None)
    redis_url: str | None = _env("REDIS_URL", _optional_str, default=None)

    host: str = _env("MICRO110_HOST", _str, default="127.0.0.1")
    port: int = _env("MICRO110_PORT", _int, default=8110)
    data_dir: Path = _env("MICRO110_DATA_DIR", _path, default=Path("var"))
    # Public base URL printed for users and put in links; derived from host:port if unset.
    public_url: str | None = _env("MICRO110_PUBLIC_URL", _optional_str, default=None)
    node_name: str = _env("MICRO110_NODE_NAME", _str, default="node-1")

    # Secrets.  When unset, one is generated once per data directory and kept there,
    # which is right for a single machine; a cluster must set them (all nodes alike).
    secret_key: str | None = _env("MICRO110_SECRET_KEY", _optional_str, default=None)
    id_hash_key: str | None = _env("MICRO110_ID_HASH_KEY", _optional_str, default=None)

    # Load the demo city and demo accounts.  None: yes when embedded, no otherwise.
    demo: bool | None = _env("MICRO110_DEMO", _bool, default=None)

    # Possible-duplicate suggestions at intake.
    duplicate_radius_m: float = _env("MICRO110_DUPLICATE_RADIUS_M", _float, default=300.0)
    duplicate_window_s: int = _env("MICRO110_DUPLICATE_WINDOW_S", _int, default=1800)
    # Overdue thresholds by severity 1..4, seconds waiting in the queue.
    overdue_s: tuple[str, ...] = _env(
        "MICRO110_OVERDUE_S", _csv, default=("60", "300", "900", "1800")
    )

    # Queue priority credits, overriding the defaults (dispatch/domain/priority.py), e.g.
    # {"severity_s": {"1": 900}, "verification_s": {"real_name": 240}}.
    priority: Mapping[str, Any] = _env("MICRO110_PRIORITY", _json_object, default_factory=dict)

    # Periodic work (overdue sweeps, assignment re-offers).  Tests turn it off and
    # drive the sweeps themselves with a fake clock.
    background_tasks: bool = _env("MICRO110_BACKGROUND_TASKS", _bool, default=True)

    # Assignments: re-offered while unanswered, then reported as unacknowledged.
    assignment_reoffer_s: int = _env("MICRO110_ASSIGNMENT_REOFFER_S", _int, default=30)
    assignment_unack_s: int = _env("MICRO110_ASSIGNMENT_UNACK_S", _int, default=120)

    # An officer reads an incident while assigned to it, and this long after (seconds).
    officer_read_after_s: int = _env("MICRO110_OFFICER_READ_AFTER_S", _int, default=3600)

    # The agency named in exports (EIDO) and to other agencies.
    agency: str = _env("MICRO110_AGENCY", _str, default="micro110.local")
    # Case numbers look like <prefix>-<local date>-<serial>; the date is in `timezone`.
    case_prefix: str = _env("MICRO110_CASE_PREFIX", _str, default="110")
    timezone: str = _env("MICRO110_TIMEZONE", _str, default="Asia/Shanghai")

    # Phone verification codes: "webhook" (any SMS gateway behind an HTTP endpoint; see
    # dispatch/auth/sms.py), "log" (writes live codes to the log: chosen explicitly), or
    # "demo": the log in demo mode, else no sender (phone verification unavailable).
    sms_sender: str = _env("MICRO110_SMS_SENDER", _str, default="demo")
    sms_webhook_url: str | None = _env("MICRO110_SMS_WEBHOOK_URL", _optional_str, default=None)
    sms_webhook_secret: str | None = _env(
        "MICRO110_SMS_WEBHOOK_SECRET", _optional_str, default=None
    )
    sms_webhook_timeout_s: float = _env("MICRO110_SMS_WEBHOOK_TIMEOUT_S", _float, default=5.0)
    # Codes sent to one phone number an hour, whichever accounts ask.
    sms_codes_per_phone_hour: int = _env("MICRO110_SMS_CODES_PER_PHONE_HOUR", _int, default=3)
    # Attestation providers: a JSON file {"provider-name": "<PEM public key>", ...}.
    attestation_keys_file: Path | None = _env(
        "MICRO110_ATTESTATION_KEYS", _optional_path, default=None
    )

    log_level: str = _env("MICRO110_LOG_LEVEL", _str, default="INFO")
    log_format: str = _env("MICRO110_LOG_FORMAT", _str, default="json")

    db_pool_min: int = _env("MICRO110_DB_POOL_MIN", _int, default=2)
    db_pool_max: int = _env("MICRO110_DB_POOL_MAX", _int, default=20)
    # How long start-up waits for PostgreSQL / Redis before giving up, in seconds.
    connect_timeout_s: float = _env("MICRO110_CONNECT_TIMEOUT", _float, default=10.0)
    # How long one Redis command may take before it counts as failed.  Nothing waits on
    # Redis for an answer that matters (it is an index and a bus), but without a bound a
    # hung Redis would hold its callers, and what they hold, for ever.
    redis_timeout_s: float = _env("MICRO110_REDIS_TIMEOUT", _float, default=5.0)
    # How often a node checks that the Redis queue index is whole (rebuilt from
    # PostgreSQL after a failed write or when Redis has lost it), in seconds.
    queue_check_s: float = _env("MICRO110_QUEUE_CHECK_S", _float, default=5.0)

    # Request bodies: JSON and multipart (images) are bounded separately.
    max_json_bytes: int = _env("MICRO110_MAX_JSON_BYTES", _int, default=64 * 1024)
    max_upload_bytes: int = _env("MICRO110_MAX_UPLOAD_BYTES", _int, default=40 * 1024 * 1024)

    # Token lifetimes, seconds.  A citizen's access token is short-lived (the refresh
    # token, 90 days, gets a new one); it is also refused at once after a sign-out.
    citizen_token_ttl_s: int = _env("MICRO110_CITIZEN_TOKEN_TTL", _int, default=15 * 60)
    staff_token_ttl_s: int = _env("MICRO110_STAFF_TOKEN_TTL", _int, default=26 * 3600)

    # WebRTC: comma-separated STUN/TURN URLs handed to browsers and used by aiortc.
    ice_servers: tuple[str, ...] = _env("MICRO110_ICE_SERVERS", _csv, default=())

    # Reverse proxies (addresses or networks) whose X-Real-IP names the client; from
    # anyone else the header is ignored.  Login lockouts are per account and client.
    trusted_proxies: tuple[str, ...] = _env("MICRO110_TRUSTED_PROXIES", _csv, default=())
    # /metrics: with a token, to whoever sends it as a bearer token; without, only to
    # requests from this host that no proxy passed on.
    metrics_token: str | None = _env("MICRO110_METRICS_TOKEN", _optional_str, default=None)
    # Intake budgets, per window of `intake_window_s` seconds (a budget of 0: no limit): distinct
    # alarms, reports and chat messages per citizen, and alarms + reports per network
    # (IPv4 address, IPv6 /64).  A citizen's first alarm or report in a window is always
    # accepted, over the network budget too.
    intake_window_s: int = _env("MICRO110_INTAKE_WINDOW_S", _int, default=600)
    alarms_per_citizen: int = _env("MICRO110_ALARMS_PER_CITIZEN", _int, default=5)
    reports_per_citizen: int = _env("MICRO110_REPORTS_PER_CITIZEN", _int, default=10)
    messages_per_citizen: int = _env("MICRO110_MESSAGES_PER_CITIZEN", _int, default=60)
    intake_per_network: int = _env("MICRO110_INTAKE_PER_NETWORK", _int, default=100)
    # Real-name checks (name + national ID against the registry): attempts per citizen a
    # day and per network (IPv4 address, IPv6 /64) an hour; 0: no limit.
    real_name_attempts_per_day: int = _env("MICRO110_REAL_NAME_ATTEMPTS_PER_DAY", _int, default=5)
    real_name_attempts_per_network_hour: int = _env(
        "MICRO110_REAL_NAME_ATTEMPTS_PER_NETWORK_HOUR", _int, default=20
    )
    # Failed staff logins: free failures per account and network (IPv4 address, IPv6
    # /64), then a doubling wait between attempts from that network, up to the maximum.
    login_free_failures: int = _env("MICRO110_LOGIN_FREE_FAILURES", _int, default=5)
    login_backoff_max_s: float = _env("MICRO110_LOGIN_BACKOFF_MAX_S", _float, default=900.0)
    # New citizen accounts per minute from one client address (an IPv6 /64); 0: no
    # limit.  Generous: carrier-grade NAT puts many phones behind one address, and a
    # first report must not wait.  It stops one machine filling the database.
    registrations_per_minute: int = _env("MICRO110_REGISTRATIONS_PER_MINUTE", _int, default=60)
    turn_username: str | None = _env("MICRO110_TURN_USERNAME", _optional_str, default=None)
    turn_password: str | None = _env("MICRO110_TURN_PASSWORD", _optional_str, default=None)
    # coturn's `use-auth-secret` shared secret: TURN credentials are then derived per
    # client and expire after `turn_ttl_s` (the static username/password are not used).
    turn_secret: str | None = _env("MICRO110_TURN_SECRET", _optional_str, default=None)
    turn_ttl_s: int = _env("MICRO110_TURN_TTL", _int, default=3600)
    # Video calls this node carries at once; beyond it a new call is answered 503.
    max_calls: int = _env("MICRO110_MAX_CALLS", _int, default=50)
    # Nothing heard from a call's peer for this long (media from a phone, RTCP from a
    # viewer): it is gone.  ICE consent alone takes ~30 s.
    call_peer_timeout_s: float = _env("MICRO110_CALL_PEER_TIMEOUT", _float, default=6.0)
    # Milliseconds of audio per packet asked of the browsers (a=ptime); 0: theirs (20).
    # 60 is a third of the packets, for 40 ms more delay (media.offers.with_audio_ptime).
    call_audio_ptime_ms: int = _env("MICRO110_CALL_AUDIO_PTIME", _int, default=60)
    # Network interfaces media is offered on (host candidates), e.g. "eth0"; empty: every
    # interface but loopback (aiortc's default).
    media_interfaces: tuple[str, ...] = _env("MICRO110_MEDIA_INTERFACES", _csv, default=())
    # Processes the calls' media runs in, off the node's event loop (each call in one of
    # them); 0: on the node's own event loop.  And how much lower their CPU priority is
    # than the node's (nice), so that intake and push win the CPU when it is short.
    media_processes: int = _env("MICRO110_MEDIA_PROCESSES", _int, default=2)
    media_niceness: int = _env("MICRO110_MEDIA_NICENESS", _int, default=10)
    # For finding where a media process's CPU goes: with a directory, SIGUSR1 to a media
    # process starts cProfile there and the next SIGUSR1 writes `media-<pid>.prof` in it
    # (`python -m pstats`; bench/media.py --profile does both).  Sampling profilers
    # mislead here: they over-count locks and the first packet of every burst.
    media_profile_dir: Path | None = _env(
        "MICRO110_MEDIA_PROFILE_DIR", _optional_path, default=None
    )
    # How much lower `micro110 precincts import` runs (nice) than the nodes: its CPU
    # (decoding, validation, the index build on every core) is batch work, and alarms
    # answered by nodes on the same machine must not wait for it.
    import_niceness: int = _env("MICRO110_IMPORT_NICENESS", _int, default=10)
    # How other nodes reach this one (a pick-up of a call held here is forwarded to it).
    node_url: str | None = _env("MICRO110_NODE_URL", _optional_str, default=None)

    # Browser clients.  The built bundle (default: console_web/dist, written by
    # `./dev` or the Dockerfile's Node stage).
    web_dist: Path | None = _env("MICRO110_WEB_DIST", _optional_path, default=None)
    # An optional basemap for the clients' maps: a tile URL template
    # (https://t{s}.example/{z}/{x}/{y}.png) and the datum its tiles are drawn in
    # (wgs84, e.g. Tianditu or a police GIS; gcj02, e.g. AMap or Tencent).  Without one
    # the maps draw precinct boundaries on a plain background.
    basemap_url: str | None = _env("MICRO110_BASEMAP_URL", _optional_str, default=None)
    basemap_datum: str = _env("MICRO110_BASEMAP_DATUM", _str, default="wgs84")
    basemap_attribution: str = _env("MICRO110_BASEMAP_ATTRIBUTION", _str, default="")

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError("MICRO110_PORT", f"must be between 1 and 65535, got {self.port}")
        if not re.fullmatch(r"[A-Z0-9]{1,8}", self.case_prefix):
            raise SettingsError("MICRO110_CASE_PREFIX", "must be 1-8 upper-case letters or digits")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                "MICRO110_TIMEZONE", f"unknown time zone {self.timezone!r}"
            ) from None
        if self.sms_sender not in {"demo", "log", "webhook"}:
            raise SettingsError("MICRO110_SMS_SENDER", "must be webhook, log or demo")
        if self.sms_sender == "webhook":
            if not (self.sms_webhook_url or "").startswith(("https://", "http://")):
                raise SettingsError(
                    "MICRO110_SMS_WEBHOOK_URL", "the webhook sender needs an http(s) URL"
                )
            if len(self.sms_webhook_secret or "") < 16:
                raise SettingsError(
                    "MICRO110_SMS_WEBHOOK_SECRET",
                    "the webhook sender needs a secret of 16+ characters",
                )
        if self.sms_webhook_timeout_s <= 0:
            raise SettingsError("MICRO110_SMS_WEBHOOK_TIMEOUT_S", "must be positive")
        if self.sms_codes_per_phone_hour < 1:
            raise SettingsError("MICRO110_SMS_CODES_PER_PHONE_HOUR", "must be 1 or more")
        try:
            thresholds = [int(v) for v in self.overdue_s]
        except ValueError:
            raise SettingsError(
                "MICRO110_OVERDUE_S", "expected 4 whole numbers of seconds"
            ) from None
        if len(thresholds) != 4 or any(v <= 0 for v in thresholds):
            raise SettingsError(
                "MICRO110_OVERDUE_S", "expected 4 positive numbers, for severity 1-4"
            )
        try:
            weights_from_json(self.priority)
        except ValueError as exc:
            raise SettingsError("MICRO110_PRIORITY", str(exc)) from None
        if self.duplicate_radius_m <= 0 or self.duplicate_window_s <= 0:
            raise SettingsError("MICRO110_DUPLICATE_RADIUS_M", "radius and window must be positive")
        if self.log_format not in {"json", "text"}:
            raise SettingsError("MICRO110_LOG_FORMAT", "must be json or text")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError("MICRO110_LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")
        if not 1 <= self.db_pool_min <= self.db_pool_max:
            raise SettingsError("MICRO110_DB_POOL_MIN", "must be >= 1 and <= MICRO110_DB_POOL_MAX")
        if self.connect_timeout_s <= 0:
            raise SettingsError("MICRO110_CONNECT_TIMEOUT", "must be positive")
        if self.redis_timeout_s <= 0:
            raise SettingsError("MICRO110_REDIS_TIMEOUT", "must be positive")
        if self.queue_check_s <= 0:
            raise SettingsError("MICRO110_QUEUE_CHECK_S", "must be positive")
        if self.intake_window_s <= 0:
            raise SettingsError("MICRO110_INTAKE_WINDOW_S", "must be positive")
        for limit_name, limit in (
            ("MICRO110_ALARMS_PER_CITIZEN", self.alarms_per_citizen),
            ("MICRO110_REPORTS_PER_CITIZEN", self.reports_per_citizen),
            ("MICRO110_MESSAGES_PER_CITIZEN", self.messages_per_citizen),
            ("MICRO110_INTAKE_PER_NETWORK", self.intake_per_network),
            ("MICRO110_REAL_NAME_ATTEMPTS_PER_DAY", self.real_name_attempts_per_day),
            (
                "MICRO110_REAL_NAME_ATTEMPTS_PER_NETWORK_HOUR",
                self.real_name_attempts_per_network_hour,
            ),
        ):
            if limit < 0:
                raise SettingsError(limit_name, "must be 0 (no limit) or more")
        if self.login_free_failures < 1:
            raise SettingsError("MICRO110_LOGIN_FREE_FAILURES", "must be 1 or more")
        if self.login_backoff_max_s <= 0:
            raise SettingsError("MICRO110_LOGIN_BACKOFF_MAX_S", "must be positive")
        if self.officer_read_after_s < 0:
            raise SettingsError("MICRO110_OFFICER_READ_AFTER_S", "must be 0 or more")
        if self.registrations_per_minute < 0:
            raise SettingsError("MICRO110_REGISTRATIONS_PER_MINUTE", "must be 0 (no limit) or more")
        if self.media_processes < 0:
            raise SettingsError("MICRO110_MEDIA_PROCESSES", "must be 0 (in the node) or more")
        if self.call_audio_ptime_ms not in AUDIO_PTIMES_MS:
            allowed = ", ".join(map(str, AUDIO_PTIMES_MS))
            raise SettingsError("MICRO110_CALL_AUDIO_PTIME", f"must be one of {allowed}")
        if not 0 <= self.media_niceness <= 19:
            raise SettingsError("MICRO110_MEDIA_NICENESS", "must be 0 to 19")
        if not 0 <= self.import_niceness <= 19:
            raise SettingsError("MICRO110_IMPORT_NICENESS", "must be 0 to 19")
        for name, value in (
            ("MICRO110_MAX_JSON_BYTES", self.max_json_bytes),
            ("MICRO110_MAX_UPLOAD_BYTES", self.max_upload_bytes),
            ("MICRO110_CITIZEN_TOKEN_TTL", self.citizen_token_ttl_s),
            ("MICRO110_STAFF_TOKEN_TTL", self.staff_token_ttl_s),
            ("MICRO110_TURN_TTL", self.turn_ttl_s),
            ("MICRO110_MAX_CALLS", self.max_calls),
            ("MICRO110_CALL_PEER_TIMEOUT", self.call_peer_timeout_s),
        ):
            if value <= 0:
                raise SettingsError(name, f"must be positive, got {value}")
        try:
            for network in self.trusted_proxies:
                ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise SettingsError("MICRO110_TRUSTED_PROXIES", str(exc)) from None
        for ice_url in self.ice_servers:
            if not ice_url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise SettingsError(
                    "MICRO110_ICE_SERVERS",
                    f"{ice_url!r} is not a stun:, stuns:, turn: or turns: URL",
                )
        if self.basemap_datum not in {"wgs84", "gcj02"}:
            raise SettingsError("MICRO110_BASEMAP_DATUM", "must be wgs84 or gcj02")
        if self.basemap_url is not None and not (
            self.basemap_url.startswith(("https://", "http://"))
            and all(part in self.basemap_url for part in ("{z}", "{x}", "{y}"))
        ):
            raise SettingsError(
                "MICRO110_BASEMAP_URL", "must be an http(s) URL template with {z}, {x} and {y}"
            )
        for name, url, schemes in (
            ("DATABASE_URL", self.database_url, ("postgresql://", "postgres://")),
            ("REDIS_URL", self.redis_url, ("redis://", "rediss://", "unix://")),
        ):
            if url is not None and not url.startswith(schemes):
                raise SettingsError(name, f"must start with {' or '.join(schemes)}")

    @classmethod
    def env_names(cls) -> frozenset[str]:
        """Every environment variable a setting is read from."""
        return frozenset(f.metadata["env"] for f in dataclasses.fields(cls))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default: the process environment), then `overrides`.

        Overrides whose value is None are ignored, so CLI flags that were not given do
        not mask the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise SettingsError(name, str(exc)) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies)

    @property
    def priority_weights(self) -> PriorityWeights:
        return weights_from_json(self.priority)

    @property
    def overdue_thresholds(self) -> dict[int, int]:
        return {severity: int(v) for severity, v in enumerate(self.overdue_s, start=1)}

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def load_demo(self) -> bool:
        return self.demo if self.demo is not None else self.embedded_database

    @property
    def internal_url(self) -> str:
        """Where other nodes reach this one (never the load balancer's public URL)."""
        if self.node_url:
            return self.node_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104
        return f"http://{host}:{self.port}"
