"""The soak's figures (bench/soak.py, bench/_fds.py) and the console pool's order
(bench/_console_pool.py): what the coordinator's long runs are judged on."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _console_pool import ConsolePool
from _fds import fd_kinds
from soak import growth


def _minute(
    n: int, rss: list[float], fds: list[int], p99: float, open_: int, http_in: int = 0
) -> dict[str, Any]:
    kinds = [{"http in": http_in, "postgresql": f - http_in} for f in fds]
    return {
        "minute": n, "rss_mib": rss, "fds": fds, "fd_kinds": kinds, "p99_ms": p99,
        "open_incidents": open_,
    }  # fmt: skip


def test_growth_is_from_the_first_minute_after_the_warm_up_to_the_last_per_node() -> None:
    minutes = [
        _minute(1, [100, 90], [30, 30], 500.0, 10),  # warm-up: left out
        _minute(2, [150, 140], [40, 40], 90.0, 1400),  # warm-up: left out
        _minute(3, [200, 160], [50, 40], 40.0, 1500, http_in=20),
        _minute(4, [204, 200], [55, 41], 44.0, 1490, http_in=25),
    ]
    got = growth(minutes, warmup=2)
    assert got["from_minute"] == 3
    assert got["to_minute"] == 4
    assert got["rss_pct_per_node"] == [2.0, 25.0]
    assert got["rss_pct"] == 25.0  # judged on the node that grew most
    assert got["fds_pct_per_node"] == [10.0, 2.5]
    assert got["fds_pct"] == 10.0
    # Node 1's 5 more descriptors are its clients' connections: 30 of its own before and after.
    assert got["fds_less_clients_pct"] == 0.0
    assert got["p99_pct"] == 10.0
    assert got["open_incidents"] == [1500, 1490]


def test_descriptors_are_judged_less_the_connections_the_clients_hold_counted_by_them() -> None:
    minutes = [
        _minute(1, [100], [40], 40.0, 1500, http_in=20),
        _minute(2, [100], [50], 40.0, 1500, http_in=30),
        _minute(3, [100], [60], 40.0, 1500, http_in=40),
    ]
    # The clients held 20, then 30, then 30 connections: the node's 40th http-in
    # descriptor at minute 3 is one no client holds (a socket it failed to close), so it
    # counts against the node.
    for minute, held in zip(minutes, (20, 30, 30), strict=True):
        minute["bench_connections"] = [held]
    got = growth(minutes, warmup=1)
    assert got["fds_pct"] == 20.0
    assert got["fds_less_clients_pct"] == 50.0  # 20 -> 30 of the node's own


def test_p99_is_judged_on_medians_of_five_minutes_not_on_two_single_minutes() -> None:
    # Steady, up and down by a fifth from one minute to the next.
    noisy = [30.0, 33.0, 36.0, 33.0, 30.0, 33.0, 36.0, 33.0, 30.0, 33.0, 36.0]
    minutes = [_minute(n, [100], [30], p99, 1500) for n, p99 in enumerate(noisy, 1)]
    assert growth(minutes, warmup=0)["p99_pct"] == 0.0  # end to end, 30 -> 36: +20%
    rising = [30.0, 31.0, 30.0, 31.0, 30.0, 40.0, 41.0, 40.0, 41.0, 40.0]
    minutes = [_minute(n, [100], [30], p99, 1500) for n, p99 in enumerate(rising, 1)]
    assert growth(minutes, warmup=0)["p99_pct"] == 33.3  # 30 -> 40


def test_growth_of_a_run_no_longer_than_the_warm_up_and_one_minute_is_not_judged() -> None:
    minutes = [_minute(n, [100], [30], 40.0, 5) for n in (1, 2, 3)]
    got = growth(minutes, warmup=2)
    assert got["from_minute"] is None
    assert got["rss_pct"] is None
    assert got["p99_pct"] is None


def test_descriptors_are_told_apart_by_kind(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    unix_path = str(tmp_path / "redis.sock")
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(unix_path)
    unix_listener.listen()
    before = fd_kinds(os.getpid(), port=port, evidence=evidence)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    unix_client = socket.socket(socket.AF_UNIX)
    unix_client.connect(unix_path)
    unix_accepted, _ = unix_listener.accept()
    photo = (evidence / "a.jpg").open("wb")
    read_end, write_end = os.pipe()
    try:
        after = fd_kinds(os.getpid(), port=port, evidence=evidence)
        grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        assert grew["http in"] == 1  # the accepted end, on the node's port
        assert grew[f"tcp out :{port}"] == 1  # the connecting end
        assert grew["redis"] == 1  # the client's end: its peer is bound to redis.sock
        assert grew["evidence"] == 1
        assert grew["pipe"] == 2
        # Every descriptor is counted once (the listing of /proc/self/fd included).
        assert sum(after.values()) == len(os.listdir(f"/proc/{os.getpid()}/fd"))
    finally:
        for s in (client, accepted, listener, unix_client, unix_accepted, unix_listener):
            s.close()
        photo.close()
        os.close(read_end)
        os.close(write_end)


def test_the_pool_spreads_each_nodes_consoles_over_the_processes_and_keeps_their_order() -> None:
    specs = [(f"token-{k}", k % 2) for k in range(8)]
    pool = ConsolePool(["http://a", "http://b"], specs, processes=2)
    per_process: list[list[dict[str, Any]]] = [[], []]
    for slot, (token, home) in zip(pool._slots, specs, strict=True):
        per_process[slot].append({"urls": pool.urls, "token": token, "home": home})
    # Both nodes' consoles in each process: a node's restart is not one process's storm.
    assert {home for (_, home), s in zip(specs, pool._slots, strict=True) if s == 0} == {0, 1}
    assert {home for (_, home), s in zip(specs, pool._slots, strict=True) if s == 1} == {0, 1}
    assert [c.token for c in pool._merge(per_process)] == [t for t, _ in specs]
