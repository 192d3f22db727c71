"""The production deployment files: docker-compose.yml, Dockerfile, .dockerignore, deploy/.

No Docker engine is needed: the compose file is validated against the Compose
Specification schema (vendored in check-jsonschema, so offline), and the rest are
checked against what the app actually reads (`Settings.env_names()`) and against each
other (nginx upstream vs. compose app nodes, coturn credentials vs. app settings, ...).
When an `nginx` binary is on PATH the balancer config is also syntax-checked with it.
"""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from dispatch.auth.identity_providers import DemoSmsSender
from dispatch.auth.sms import sms_sender_for
from dispatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
TURN_CONF = ROOT / "deploy" / "turnserver.conf"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
PYPROJECT = ROOT / "pyproject.toml"

COMPOSE_SCHEMA = "vendor.compose-spec"


# --------------------------------------------------------------------------- helpers


def _load_yaml(path: Path) -> Any:
    # The same loader family check-jsonschema uses; it resolves anchors and `<<` merges.
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@cache
def _compose() -> dict[str, Any]:
    doc = _load_yaml(COMPOSE)
    assert isinstance(doc, dict), "docker-compose.yml must be a mapping"
    return doc


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _is_app(service: Mapping[str, Any]) -> bool:
    """Built from this repository (the micro-110 image)."""
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context in {".", "./"}


def _app_nodes() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if _is_app(svc)}


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: (pair[1] if len(pair) == 2 else "") for pair in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+x}
_BRACED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
_BARE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def _interpolations(text: str) -> list[re.Match[str]]:
    return list(_BRACED.finditer(text.replace("$$", "")))


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose variable substitution (the subset used here)."""

    def substitute(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"] or "", m["arg"]
        current = env.get(name)
        unset = current is None or (op.startswith(":") and current == "")
        if op in {":?", "?"} and unset:
            raise LookupError(f"{name}: {arg}")
        if op in {":-", "-"} and unset:
            return arg
        if op in {":+", "+"}:
            return "" if unset else arg
        return current or ""

    return _BRACED.sub(substitute, value).replace("$$", "$")


def _published_ports(service: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """(published, target, protocol) for each `ports` entry, short or long syntax."""
    result: set[tuple[str, str, str]] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            result.add(
                (
                    str(entry.get("published", "")),
                    str(entry["target"]),
                    str(entry.get("protocol", "tcp")),
                )
            )
            continue
        spec, _, protocol = str(entry).partition("/")
        parts = spec.split(":")
        published, target = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", parts[0])
        result.add((published, target, protocol or "tcp"))
    return result


def _run_validator(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", COMPOSE_SCHEMA, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ----------------------------------------------------------------- nginx config parser


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None
    parent: Directive | None = field(default=None, repr=False)

    def children(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def child(self, name: str) -> Directive:
        found = self.children(name)
        assert len(found) == 1, f"expected one {name!r} in {self.name} {self.args}"
        return found[0]

    def walk(self) -> Iterator[Directive]:
        for d in self.block or []:
            yield d
            yield from d.walk()

    def inherited(self, name: str) -> list[Directive]:
        """Directives `name` in effect here: nginx array directives such as
        proxy_set_header come from the innermost level that has any of them."""
        level: Directive | None = self
        while level is not None:
            found = level.children(name)
            if found:
                return found
            level = level.parent
        return []


_NGINX_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'|(?P<punct>[{};])|(?P<word>[^\s{};]+)"""
)


def _nginx_tokens(text: str) -> Iterator[tuple[str, bool]]:
    """(token, is_punctuation)."""
    pos = 0
    while pos < len(text):
        m = _NGINX_TOKEN.match(text, pos)
        assert m, f"nginx.conf: cannot tokenize at {text[pos : pos + 30]!r}"
        pos = m.end()
        if m["punct"] is not None:
            yield m["punct"], True
        elif m["word"] is not None:
            yield m["word"], False
        elif m["dq"] is not None:
            yield m["dq"], False
        elif m["sq"] is not None:
            yield m["sq"], False


def _parse_nginx(text: str) -> Directive:
    root = Directive("main", [], [])
    stack = [root]
    words: list[str] = []
    for token, punct in _nginx_tokens(text):
        if not punct:
            words.append(token)
            continue
        current = stack[-1]
        assert current.block is not None
        if token == ";":
            assert words, "nginx.conf: empty directive"
            current.block.append(Directive(words[0], words[1:], None, current))
        elif token == "{":
            assert words, "nginx.conf: block without a name"
            block = Directive(words[0], words[1:], [], current)
            current.block.append(block)
            stack.append(block)
        else:
            assert not words, "nginx.conf: words before }"
            assert len(stack) > 1, "nginx.conf: unbalanced }"
            stack.pop()
        words = []
    assert len(stack) == 1, "nginx.conf: unterminated block"
    assert not words, "nginx.conf: unterminated directive"
    return root


@cache
def _nginx() -> Directive:
    return _parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))


def _nginx_server() -> Directive:
    servers = [d for d in _nginx().walk() if d.name == "server" and d.block is not None]
    assert len(servers) == 1, "expected exactly one server block"
    return servers[0]


def _nginx_upstream(location: Directive) -> Directive:
    (proxy_pass,) = location.children("proxy_pass")
    m = re.fullmatch(r"https?://([^/:$]+)/?", proxy_pass.args[0])
    assert m, f"proxy_pass must name an upstream: {proxy_pass.args}"
    http = _nginx().child("http")
    upstreams = [u for u in http.children("upstream") if u.args == [m.group(1)]]
    assert len(upstreams) == 1, f"no upstream {m.group(1)!r}"
    return upstreams[0]


def _nginx_location(path: str) -> Directive:
    found = [d for d in _nginx_server().children("location") if d.args[-1] == path]
    assert len(found) == 1, f"expected one location {path}"
    return found[0]


def _proxied_locations() -> list[Directive]:
    return [loc for loc in _nginx_server().children("location") if loc.children("proxy_pass")]


def _headers(location: Directive) -> dict[str, str]:
    return {d.args[0].lower(): d.args[1] for d in location.inherited("proxy_set_header")}


def _nginx_map(variable: str) -> dict[str, str]:
    """The entries of `map $source $variable { ... }` (source under key '$source')."""
    for m in _nginx().child("http").children("map"):
        if m.args[1] == variable:
            entries = {d.name: d.args[0] if d.args else "" for d in m.block or []}
            entries["$source"] = m.args[0]
            return entries
    raise AssertionError(f"no map defines {variable}")


def _size_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, f"not an nginx size: {value!r}"
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(m.group(1)) * scale


# -------------------------------------------------------------------- Dockerfile parser


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        if line:
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends in a line continuation"
    return instructions


def _instructions(keyword: str) -> list[str]:
    return [rest for kw, rest in _dockerfile() if kw == keyword]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in _instructions("ENV"):
        for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", rest):
            env[m.group(1)] = m.group(2)
    return env


def _python_snippet(command: list[str]) -> str:
    """The code of a `python -c CODE` exec-form command."""
    start = command.index("python")
    assert command[start + 1] == "-c", command
    return command[start + 2]


# ===================================================================== compose: schema


def test_compose_file_matches_the_compose_specification() -> None:
    result = _run_validator(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda doc: doc["services"]["postgres"].update(helthcheck={}), "helthcheck"),
        (
            lambda doc: doc["services"]["app1"]["depends_on"]["postgres"].update(
                condition="service_healty"
            ),
            "service_healty",
        ),
        (lambda doc: doc["services"]["nginx"].update(ports="8110:8110"), "ports"),
    ],
    ids=["misspelt-key", "bad-depends-on-condition", "ports-not-a-list"],
)
def test_validator_rejects_a_broken_compose_file(
    tmp_path: Path, mutation: Any, expected: str
) -> None:
    doc = json.loads(json.dumps(_compose()))  # a deep copy, merges already resolved
    mutation(doc)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # JSON is YAML
    result = _run_validator(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors" in result.stdout + result.stderr
    assert expected in result.stdout + result.stderr


def test_compose_file_has_no_obsolete_version_key() -> None:
    assert "version" not in _compose()


def test_every_interpolation_has_a_default_or_is_required() -> None:
    text = COMPOSE.read_text(encoding="utf-8").replace("$$", "")
    loose = [m.group(0) for m in _interpolations(text) if m["op"] not in {":-", "-", ":?", "?"}]
    assert not loose, f"unset variables would silently become empty: {loose}"
    bare = [m.group(0) for m in _BARE.finditer(_BRACED.sub("", text))]
    assert not bare, f"use ${{NAME:-default}} or ${{NAME:?message}}: {bare}"


def test_every_variable_is_documented_in_env_example() -> None:
    referenced = {m["name"] for m in _interpolations(COMPOSE.read_text(encoding="utf-8"))}
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert referenced - documented == set(), "add these to deploy/env.example"
    assert documented - referenced == set(), "deploy/env.example lists unused variables"


# ==================================================================== compose: app nodes


def test_there_are_at_least_two_app_nodes() -> None:
    assert len(_app_nodes()) >= 2, sorted(_services())


def test_every_app_node_has_a_readiness_healthcheck() -> None:
    for name, svc in _app_nodes().items():
        check = svc.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        test = check["test"]
        assert isinstance(test, list)
        assert test[0] == "CMD", f"{name}: exec form (no shell in the check)"
        assert "/readyz" in " ".join(test), f"{name} must probe /readyz"
        compile(_python_snippet(test), f"{name} healthcheck", "exec")


def test_app_nodes_set_only_real_settings() -> None:
    known = Settings.env_names()
    for name, svc in _app_nodes().items():
        unknown = set(_environment(svc)) - known
        assert not unknown, f"{name} sets variables the app never reads: {sorted(unknown)}"


def test_app_environment_is_accepted_by_settings() -> None:
    for name, svc in _app_nodes().items():
        env = _environment(svc)
        # Required variables as an operator would fill them in from deploy/env.example;
        # optional ones keep their compose defaults.
        example = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
        deployment = {
            m["name"]: example.get(m["name"]) or "secret"
            for value in env.values()
            for m in _interpolations(value)
            if m["op"] in {":?", "?"}
        }
        resolved = {k: _interpolate(v, deployment) for k, v in env.items()}
        settings = Settings.from_env(resolved)
        assert settings.database_url is not None, f"{name} would start embedded PostgreSQL"
        assert settings.redis_url is not None, f"{name} would start embedded Redis"
        assert settings.load_demo is False, f"{name} would load the demo city"
        assert settings.port == 8110
        for url in (settings.database_url, settings.redis_url):
            host = re.search(r"@([^:/]+)", url)
            assert host, f"{name}: no host in {url}"
            assert host.group(1) in _services(), f"{name}: {url} names no compose service"


def test_no_app_node_writes_live_sms_codes_to_its_log() -> None:
    for name, svc in _app_nodes().items():
        env = _environment(svc)
        # Every required value filled in, every optional one left as the compose default.
        example = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
        required = {
            m["name"]: example.get(m["name"]) or "secret"
            for value in env.values() for m in _interpolations(value)
            if m["op"] in {":?", "?"}
        }  # fmt: skip
        settings = Settings.from_env({k: _interpolate(v, required) for k, v in env.items()})
        assert not isinstance(sms_sender_for(settings), DemoSmsSender), name


def test_app_nodes_share_everything_but_their_node_name() -> None:
    envs = {name: _environment(svc) for name, svc in _app_nodes().items()}
    node_names = [env.get("MICRO110_NODE_NAME") for env in envs.values()]
    assert all(node_names), "every node needs MICRO110_NODE_NAME"
    assert len(set(node_names)) == len(node_names), f"node names must differ: {node_names}"
    shared = [{k: v for k, v in env.items() if k != "MICRO110_NODE_NAME"} for env in envs.values()]
    assert all(s == shared[0] for s in shared), "app nodes must be configured alike"


@pytest.mark.parametrize(
    "variable",
    [
        "MICRO110_SECRET_KEY",
        "MICRO110_ID_HASH_KEY",
        "MICRO110_TURN_SECRET",
        "MICRO110_ICE_SERVERS",
        "MICRO110_PUBLIC_URL",
        "MICRO110_METRICS_TOKEN",
    ],
)
def test_cluster_wide_values_are_required_from_the_environment(variable: str) -> None:
    for name, svc in _app_nodes().items():
        value = _environment(svc).get(variable, "")
        m = _BRACED.fullmatch(value)
        assert m, f"{name}: {variable} must come from the deployment's environment"
        assert m["name"] == variable
        assert m["op"] == ":?", f"{name}: {variable} must be required (${{{variable}:?...}})"


def test_app_nodes_wait_for_healthy_datastores() -> None:
    for name, svc in _app_nodes().items():
        depends = svc.get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency in ("postgres", "redis"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)


def test_app_nodes_restart_and_share_one_evidence_volume() -> None:
    mounts: set[str] = set()
    for name, svc in _app_nodes().items():
        assert svc.get("restart") == "unless-stopped", name
        data_dir = _environment(svc).get("MICRO110_DATA_DIR")
        assert data_dir == "/data", name
        volumes = [str(v) for v in svc.get("volumes") or []]
        at_data = [v.split(":")[0] for v in volumes if v.split(":")[1] == data_dir]
        assert len(at_data) == 1, f"{name} must mount a volume at {data_dir}"
        mounts.add(at_data[0])
    assert len(mounts) == 1, f"all nodes must share one volume at /data, got {mounts}"
    (volume,) = mounts
    assert volume in (_compose().get("volumes") or {}), f"{volume} must be a named volume"


def test_datastores_have_healthchecks_and_persistence() -> None:
    postgres, redis = _services()["postgres"], _services()["redis"]
    assert str(postgres["image"]).startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert str(redis["image"]).startswith("redis:7")
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    command = [str(c) for c in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(str(v).endswith(":/data") for v in redis["volumes"])


# ==================================================================== compose: coturn


def _turn_conf() -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for raw in TURN_CONF.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            options.setdefault(key.strip(), []).append(value.strip())
    return options


def test_coturn_uses_the_deploy_config_and_the_apps_credentials() -> None:
    coturn = _services()["coturn"]
    assert str(coturn["image"]).startswith("coturn/coturn")
    assert "./deploy/turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn["volumes"]
    command = [str(c) for c in coturn["command"]]
    assert command[command.index("-c") + 1] == "/etc/coturn/turnserver.conf"
    (secret,) = [c for c in command if c.startswith("--static-auth-secret=")]
    names = [m["name"] for m in _interpolations(secret)]
    assert names == ["MICRO110_TURN_SECRET"], secret
    # ... the very variables the app nodes hand to browsers and aiortc.
    for svc in _app_nodes().values():
        env = _environment(svc)
        for variable in names:
            m = _BRACED.fullmatch(env[variable])
            assert m, f"{variable} must come from the deployment's environment"
            assert m["name"] == variable


def test_turn_server_requires_credentials() -> None:
    conf = _turn_conf()
    # Time-limited credentials from the shared secret (issue 15), not a fixed password.
    assert "use-auth-secret" in conf and "lt-cred-mech" not in conf
    assert "no-auth" not in conf
    assert conf.get("realm"), "long-term credentials need a realm"


def test_turn_ports_are_reachable() -> None:
    coturn = _services()["coturn"]
    conf = _turn_conf()
    low, high = int(conf["min-port"][0]), int(conf["max-port"][0])
    assert 1024 < low <= high < 65536
    if coturn.get("network_mode") == "host":
        assert "ports" not in coturn, "published ports are ignored with host networking"
        return
    published = _published_ports(coturn)
    listening = conf.get("listening-port", ["3478"])[0]
    assert (listening, listening, "udp") in published
    relay = f"{low}-{high}"
    assert (relay, relay, "udp") in published, f"publish the relay range {relay}/udp"


# ===================================================================== compose: nginx


def test_nginx_service_publishes_8110_and_mounts_the_config() -> None:
    nginx = _services()["nginx"]
    assert str(nginx["image"]).startswith("nginx:1.27")
    assert ("8110", "8110", "tcp") in _published_ports(nginx)
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]


def test_nginx_waits_for_every_healthy_app_node() -> None:
    depends = _services()["nginx"]["depends_on"]
    for name in _app_nodes():
        assert depends[name]["condition"] == "service_healthy", name


def test_nginx_listens_on_8110() -> None:
    listens = [d.args[0] for d in _nginx_server().children("listen")]
    assert listens, "server has no listen directive"
    assert all(re.fullmatch(r"(.*:)?8110", port) for port in listens), listens


def test_nginx_upstream_lists_every_app_node() -> None:
    expected = set()
    for name, svc in _app_nodes().items():
        port = _environment(svc).get("MICRO110_PORT", str(Settings().port))
        expected.add(f"{name}:{port}")
    for location in _proxied_locations():
        servers = {d.args[0] for d in _nginx_upstream(location).children("server")}
        assert servers == expected, f"location {location.args}: upstream servers"


def test_nginx_upstream_is_sticky() -> None:
    for location in _proxied_locations():
        upstream = _nginx_upstream(location)
        sticky = {"ip_hash", "hash", "sticky"} & {d.name for d in upstream.block or []}
        assert sticky, f"upstream {upstream.args[0]} must pin a client to one node"


def test_nginx_upgrades_socketio_to_websocket() -> None:
    location = _nginx_location("/socket.io/")
    assert location.children("proxy_pass"), "/socket.io/ must be proxied"
    (version,) = location.inherited("proxy_http_version")
    assert version.args == ["1.1"], "WebSocket needs HTTP/1.1 to the upstream"
    headers = _headers(location)
    assert headers.get("upgrade") == "$http_upgrade"
    connection = headers.get("connection", "")
    if connection.lower() != "upgrade":
        mapping = _nginx_map(connection)
        assert mapping["$source"] == "$http_upgrade", mapping
        assert mapping["default"].lower() == "upgrade", mapping


def test_nginx_passes_the_host_with_its_port() -> None:
    # Socket.IO's same-origin check compares Origin (scheme://host:port) with Host.
    for location in _proxied_locations():
        assert _headers(location).get("host") == "$http_host", location.args


def test_nginx_body_limit_matches_the_app_upload_limit() -> None:
    limits = {_size_bytes(d.args[0]) for d in _nginx().walk() if d.name == "client_max_body_size"}
    for name, svc in _app_nodes().items():
        env = {k: v for k, v in _environment(svc).items() if k == "MICRO110_MAX_UPLOAD_BYTES"}
        expected = Settings.from_env(env).max_upload_bytes
        assert limits == {expected}, f"{name} accepts {expected} bytes, nginx {limits}"


def test_dockerfile_base_image() -> None:
    # The browser clients are bundled in a Node stage; the image itself is Python's.
    assert _instructions("FROM") == ["node:20-slim AS web", "python:3.11-slim"]


def test_dockerfile_builds_the_clients_in_the_node_stage() -> None:
    runs = _instructions("RUN")
    assert "npm ci --no-audit --no-fund --loglevel=error" in runs
    assert "node build.mjs" in runs
    copies = _instructions("COPY")
    assert "--from=web /web/dist ./console_web/dist" in copies


def test_dockerfile_installs_the_package() -> None:
    assert any("pip install --no-cache-dir ." in run for run in _instructions("RUN"))


def test_dockerfile_runs_as_non_root() -> None:
    users = _instructions("USER")
    assert users, "the image must switch to an unprivileged user"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    keywords = [kw for kw, _ in _dockerfile()]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:], "nothing should run as root after USER"


def test_dockerfile_serves_on_8110() -> None:
    assert _instructions("EXPOSE") == ["8110"]
    (cmd,) = _instructions("CMD")
    assert json.loads(cmd) == ["micro110", "serve", "--host", "0.0.0.0"]  # noqa: S104


def test_dockerfile_environment_is_real_settings_or_python() -> None:
    env = _dockerfile_env()
    unknown = {
        name
        for name in env
        if name not in Settings.env_names() and not name.startswith(("PYTHON", "PIP_"))
    }
    assert not unknown, f"ENV sets variables nothing reads: {sorted(unknown)}"
    assert env.get("MICRO110_DATA_DIR") == "/data"


def _healthcheck_command() -> list[str]:
    (healthcheck,) = _instructions("HEALTHCHECK")
    assert healthcheck.upper() != "NONE"
    _, _, cmd = healthcheck.partition(" CMD ")
    command = json.loads(cmd)
    assert isinstance(command, list)
    return [str(c) for c in command]


def test_dockerfile_healthcheck_probes_healthz_with_python() -> None:
    command = _healthcheck_command()
    assert command[0] == "python", "python-slim has no curl"
    assert "/healthz" in _python_snippet(command)


class _StubHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_dockerfile_healthcheck_command_works() -> None:
    code = _python_snippet(_healthcheck_command())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        alive = subprocess.run(
            [sys.executable, "-c", code], env={"MICRO110_PORT": str(port)}, timeout=30, check=False
        )
    finally:
        server.shutdown()
        server.server_close()
    dead = subprocess.run(
        [sys.executable, "-c", code],
        env={"MICRO110_PORT": str(port)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert alive.returncode == 0
    assert dead.returncode != 0


def test_dockerignore_is_an_allow_list_covering_every_package() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing so .env and var/ never reach the build"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    packages = {
        pattern.rstrip("*").rstrip(".")
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert "pyproject.toml" in allowed
    assert packages <= allowed, f"add to .dockerignore: {sorted(packages - allowed)}"


# ======================================================================= nginx: TLS


def test_nginx_serves_https_with_the_certificate_compose_mounts() -> None:
    # Phones grant camera, microphone, location and service workers only to HTTPS.
    server = _nginx_server()
    assert all("ssl" in d.args[1:] for d in server.children("listen")), "listen ... ssl"
    (cert,) = server.children("ssl_certificate")
    (key,) = server.children("ssl_certificate_key")
    mounts = [str(v) for v in _services()["nginx"]["volumes"]]
    for path in (cert.args[0], key.args[0]):
        directory = str(Path(path).parent)
        assert any(m.split(":")[1] == directory for m in mounts), f"{path} is not mounted"
    # Plain HTTP on the TLS port is redirected, not answered with a bare 400.
    assert any(d.args[:2] == ["497", "=301"] for d in server.children("error_page"))
