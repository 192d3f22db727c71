"""Named numpy arrays and a JSON header in one byte string, read back without copying.

The importing process builds a precinct index once and stores it packed; every node
loads it with ``np.frombuffer`` views instead of rebuilding (seconds of CPU, and a
build needs several times the memory of its result). Layout: ``MAGIC``, the header
length (8 bytes, little-endian), the JSON header, then each array's bytes at an offset
aligned to 8.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"micro110-index\x00\x01"
_ALIGN = 8


def pack(meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    specs: dict[str, tuple[str, list[int], int, int]] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        if data.dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects")
        raw = data.tobytes()
        specs[name] = (data.dtype.str, list(data.shape), offset, len(raw))
        padding = -len(raw) % _ALIGN
        chunks.append(raw + b"\0" * padding)
        offset += len(raw) + padding
    header = json.dumps({"meta": meta, "arrays": specs}, ensure_ascii=False).encode()
    header += b" " * (-(len(MAGIC) + 8 + len(header)) % _ALIGN)
    return b"".join((MAGIC, len(header).to_bytes(8, "little"), header, *chunks))


def unpack(blob: bytes) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The header's ``meta`` and read-only array views into ``blob``.

    Raises ValueError for anything that is not a complete packed index.
    """
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 8:
        raise ValueError("not a packed precinct index (or another format version)")
    start = len(MAGIC) + 8
    length = int.from_bytes(blob[len(MAGIC) : start], "little")
    try:
        header = json.loads(blob[start : start + length])
    except ValueError as exc:
        raise ValueError("packed precinct index: unreadable header") from exc
    base = start + length
    buffer = memoryview(blob)
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, (dtype, shape, offset, size) in header["arrays"].items():
        if base + offset + size > len(blob):
            raise ValueError(f"packed precinct index: array {name!r} is cut short")
        if size == 0:
            arrays[name] = np.empty(shape, dtype=np.dtype(dtype))
            continue
        flat = np.frombuffer(buffer, dtype=np.dtype(dtype), count=size // np.dtype(dtype).itemsize,
                             offset=base + offset)  # fmt: skip
        arrays[name] = flat.reshape(shape)
    return header["meta"], arrays
