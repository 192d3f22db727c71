"""Static pages and the browser clients' bundle.

`static/` holds the status page.  The clients (console, report, officer) are built from
`src/` by esbuild (`build.mjs`) into `dist/`: hashed files under `dist/assets/` and a
`dist/manifest.json` naming each page's script and styles, which the server reads to
write the page's HTML.
"""

from pathlib import Path

BUILD_HINT = (
    "the browser bundle is not built: run `./dev serve` (which builds it), or "
    "`cd console_web && npm ci && npm run build`"
)


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"


def dist_dir() -> Path:
    return Path(__file__).resolve().parent / "dist"
