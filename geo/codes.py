"""Precinct codes: always text, ordered the way people number precincts."""

from __future__ import annotations

import math


def text_property(value: object) -> str | None:
    """A property as text: files store codes as numbers or strings (NYC's 75 vs "75").

    Whole floats lose their ".0" so 75.0 and 75 name the same precinct; booleans,
    containers and blank strings are not codes.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        text = value.strip()
        return text or None
    return None


def code_sort_key(code: str) -> tuple[int, int, str]:
    """Numeric codes in numeric order ("9" < "75" < "120"), then the rest as text."""
    if code.isdigit() and code.isascii():
        return (0, int(code), code)
    return (1, 0, code)
