"""All SQL lives in `dispatch/store/` (docs/architecture.md): every other module asks a
store function, which returns domain objects, never rows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUERIES = {"fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table"}


def _queries(path: Path) -> list[int]:
    """Lines that call a query method with a string literal (an SQL text) first."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in QUERIES
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
        ):
            lines.append(node.lineno)
    return lines


def test_no_sql_outside_the_store() -> None:
    found = {}
    for package in ("dispatch", "signaling", "media"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name.startswith("dispatch/store/"):
                continue
            if lines := _queries(path):
                found[name] = lines
    assert found == {}, f"SQL outside dispatch/store/ (move it into a store function): {found}"


def test_the_check_sees_sql(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "async def f(conn):\n"
        "    await conn.fetchval('SELECT 1')\n"
        "    await conn.execute(f'UPDATE t SET a = {1}')\n"
        "    await pipe.execute()\n"  # a Redis pipeline: no SQL
    )
    assert _queries(sample) == [2, 3]
