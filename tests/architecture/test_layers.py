"""The layers of docs/architecture.md are enforced: `lint-imports` (run by `./dev test`)
passes on the tree and fails as soon as an import runs upward."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dispatch", "signaling", "media", "geo", "console_web")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(into: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            into / package,
            ignore=shutil.ignore_patterns("node_modules", "__pycache__", "*.sql", "*.geojson"),
        )
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        ("dispatch/store/users.py", "dispatch.services.workflow", "one way through the house"),
        ("dispatch/domain/users.py", "dispatch.store.users", "one way through the house"),
        # The wire shapes sit under the store (which writes the incident's view as SQL).
        ("dispatch/wire/validation.py", "dispatch.store.users", "one way through the house"),
        ("dispatch/services/users.py", "dispatch.http.keys", "one way through the house"),
        ("dispatch/http/ops.py", "dispatch.store.users", "never the store"),
        ("signaling/fanout.py", "dispatch.http.errors", "one way through the house"),
        ("geo/codes.py", "dispatch.domain.events", "geo imports nothing"),
        ("media/__init__.py", "dispatch.domain.events", "media imports nothing"),
        ("dispatch/domain/events.py", "asyncpg", "no I/O library"),
    ],
)
def test_an_import_against_the_layers_fails_the_check(
    tmp_path: Path, module: str, upward: str, contract: str
) -> None:
    _copy_tree(tmp_path)
    source = tmp_path / module
    source.write_text(source.read_text() + f"\nimport {upward}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert contract in result.stdout
    assert "BROKEN" in result.stdout
