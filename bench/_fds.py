"""A process's open file descriptors by kind, from /proc (Linux), for bench/soak.py.

Each descriptor is put in one of: `http in` (TCP connections to the node's own port:
requests and Socket.IO websockets), `tcp listen`, `tcp out :PORT` (connections the
node made, by remote port), `postgresql` and `redis` (unix sockets whose peer is
bound to PostgreSQL's or Redis's socket; `ss -x` gives the peer), `unix other`,
`evidence` (files under the evidence directory), `pipe`, `epoll`, `eventfd`, ... (the
anonymous inodes by name), `file` (any other path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import psutil


def _unix_peer_paths() -> dict[int, str]:
    """Socket inode -> the path its peer is bound to (PostgreSQL's or Redis's socket,
    for a client's end), from `ss -x`; {} without ss."""
    if shutil.which("ss") is None:
        return {}
    out = subprocess.run(
        ["ss", "-xaH"], capture_output=True, text=True, check=False, timeout=10
    ).stdout
    path_of: dict[int, str] = {}
    peer_of: dict[int, int] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        local, local_inode, peer_inode = fields[4], fields[5], fields[7]
        if not (local_inode.isdigit() and peer_inode.isdigit()):
            continue
        if local != "*":
            path_of[int(local_inode)] = local
        peer_of[int(local_inode)] = int(peer_inode)
    return {inode: path_of.get(peer, "") for inode, peer in peer_of.items()}


def _unix_kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.startswith(".s.PGSQL."):
        return "postgresql"
    if name == "redis.sock" or "redis" in name:
        return "redis"
    return "unix other"


def fd_kinds(pid: int, *, port: int, evidence: Path | None = None) -> dict[str, int]:
    """How many descriptors of each kind `pid` holds (see the module's docstring)."""
    links: dict[int, str] = {}
    for entry in os.scandir(f"/proc/{pid}/fd"):
        try:
            links[int(entry.name)] = os.readlink(entry.path)
        except (FileNotFoundError, ValueError):
            continue  # closed meanwhile
    try:
        inet = {c.fd: c for c in psutil.Process(pid).net_connections(kind="inet")}
    except psutil.Error:
        inet = {}
    peers = _unix_peer_paths()
    root = str(evidence.resolve()) + "/" if evidence is not None else None
    kinds: Counter[str] = Counter()
    for fd, target in links.items():
        if target.startswith("socket:["):
            conn = inet.get(fd)
            if conn is not None:
                if conn.status == psutil.CONN_LISTEN:
                    kinds["tcp listen"] += 1
                elif conn.laddr and conn.laddr.port == port:
                    kinds["http in"] += 1
                else:  # an unconnected socket has an empty raddr
                    kinds[f"tcp out :{getattr(conn.raddr, 'port', '?')}"] += 1
            else:
                kinds[_unix_kind(peers.get(int(target[8:-1]), ""))] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target.removeprefix("anon_inode:").strip("[]")] += 1
        elif root is not None and target.startswith(root):
            kinds["evidence"] += 1
        else:
            kinds["file"] += 1
    return dict(sorted(kinds.items()))
