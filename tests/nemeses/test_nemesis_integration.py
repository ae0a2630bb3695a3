"""Every fault against a real 5-node cluster, on each remote (local, docker, ssh).

One module-scoped cluster per backend, a real redis-server per node
(tests/nemeses/nemesis_daemon.py).  Partitions are checked with real TCP
connects from inside the nodes to the daemons; kill/pause by process state
and by what the daemon answers; clock skew by a dynamically linked program
(``date``, redis ``TIME``) on the node; cleanup by looking for leftovers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from jepsy import net
from jepsy.control import Remote, pid_alive, pid_state
from jepsy.core import Test as Spec
from jepsy.core import noop_test
from jepsy.errors import ConfigError
from jepsy.history import Op
from jepsy.nemeses import clock, combined, packet_loss
from tests.nemeses.nemesis_daemon import PORT, RedisNodesDB, ping, redis_time
from tests.remotes import remote_fixture

pytestmark = pytest.mark.integration

SUBNETS = {"local": "10.92.1.0/24", "docker": "10.92.2.0/24", "ssh": "10.92.3.0/24"}
remote = remote_fixture("jn", SUBNETS)


def jepsy_rules(test: Spec) -> dict[str, list[str]]:
    """Every node's jepsy iptables rules (all nodes at once)."""
    return net.on_nodes(test.nodes, lambda n: net.rules(test.remote, n))


def invoke(test: Spec, f: str, value: Any = None) -> Op:
    op = Op(process="nemesis", type="invoke", f=f, value=value)
    done = test.nemesis.invoke(test, op)
    assert done.type == "info" and done.f == f and done.process == "nemesis"
    return done


@pytest.fixture(scope="module")
def cluster(remote: Remote) -> Iterator[tuple[Spec, RedisNodesDB]]:
    """The remote with redis on every node (under the clock shim) and a test
    whose nemesis composes every fault."""
    db = RedisNodesDB(remote, clock=True)
    nodes = tuple(remote.nodes())
    pkg = combined.package(
        ["partition", "kill", "pause", "clock", "packet-loss"],
        interval=1,
        targets=["one", "majority", "bridge"],
        db=db,
        nodes=nodes,
    )
    test = noop_test(remote=remote, db=db, nodes=nodes, seed=7, nemesis=pkg.nemesis)
    try:
        net.on_nodes(nodes, lambda n: db.setup(test, n))
        test = test.replace(nemesis=test.nemesis.setup(test))
        yield test, db
        test.nemesis.teardown(test)
    finally:
        net.on_nodes(nodes, lambda n: db.teardown(test, n))
    # Cleanup leaves nothing behind: no jepsy rules, no daemons, no shim files.
    assert net.on_nodes(nodes, lambda n: net.rules(remote, n)) == {n: [] for n in nodes}
    assert db.leftover_pids(nodes) == []
    for n in nodes:
        clock.remove_shim(remote, n)
        d = remote.node_dir(n)
        r = remote.exec(n, ["sh", "-c", 'ls -A "$1" 2>/dev/null', "x", d], check=False)
        assert "jepsy-clock" not in r.out and "redis.log" not in r.out, r.out


@pytest.mark.parametrize("strategy", net.PARTITION_STRATEGIES)
def test_named_partition_blocks_across_and_heals(
    cluster: tuple[Spec, RedisNodesDB], strategy: str
) -> None:
    test, _ = cluster
    try:
        done = invoke(test, "start-partition", strategy)
        assert done.error is None, done.error
        assert done.value["strategy"] == strategy
        grudge = net.from_json(done.value["grudge"])
        assert any(grudge.values())
        if strategy == "primaries":
            assert grudge["n2"] == set(test.nodes) - {"n2"}
        # Real TCP connects to the daemons, from inside every node.
        got = net.verify_connectivity(test.remote, grudge, port=PORT, connect_timeout=0.4)
        assert "blocked" in got.values() and "open" in got.values()
        # The control node still reaches every node.
        for n in test.nodes:
            assert ping(test.remote.address(n)) == "PONG", n
    finally:
        done = invoke(test, "stop-partition")
    # stop-partition itself probed every pair after healing.
    assert done.value == "healed" and done.error is None
    assert all(v == [] for v in jepsy_rules(test).values())


def test_heal_is_idempotent_and_partition_replaces(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, _ = cluster
    r = test.remote
    net.partition(r, net.halves(test.nodes))
    net.partition(r, net.complete_grudge([["n1"], ["n2", "n3", "n4", "n5"]]))
    assert len([x for x in net.rules(r, "n1") if "DROP" in x]) == 4
    assert len([x for x in net.rules(r, "n2") if "DROP" in x]) == 1
    net.heal(r)
    net.heal(r)
    assert all(v == [] for v in jepsy_rules(test).values())
    net.verify_connectivity(r, port=PORT)


def test_kill_and_restart(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, db = cluster
    before = dict(db.pids)
    done = invoke(test, "kill", ["n2", "n4"])
    assert done.value == {"n2": "killed", "n4": "killed"} and done.error is None
    for n in ("n2", "n4"):
        assert not pid_alive(test.remote, n, before[n])
        assert ping(test.remote.address(n)) == "refused"
    assert ping(test.remote.address("n1")) == "PONG"
    done = invoke(test, "start")
    assert done.value == {n: "started" for n in test.nodes}
    for n in ("n2", "n4"):
        assert db.pids[n] != before[n]
        assert pid_alive(test.remote, n, db.pids[n])
        assert ping(test.remote.address(n)) == "PONG"
    assert db.pids["n1"] == before["n1"]


def test_kill_by_selector_picks_a_majority(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, _ = cluster
    done = invoke(test, "kill", "majority")
    try:
        assert len(done.value) == 3 and set(done.value.values()) == {"killed"}
        for n in done.value:
            assert ping(test.remote.address(n)) == "refused"
    finally:
        invoke(test, "start")
    for n in test.nodes:
        assert ping(test.remote.address(n)) == "PONG"


def test_pause_and_resume(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, db = cluster
    done = invoke(test, "pause", ["n3"])
    try:
        assert done.value == {"n3": "paused"}
        assert pid_state(test.remote, "n3", db.pids["n3"]) == "T"
        assert ping(test.remote.address("n3"), timeout=0.5) == "timeout"
        assert ping(test.remote.address("n1")) == "PONG"
    finally:
        done = invoke(test, "resume")
    assert done.value == {n: "resumed" for n in test.nodes}
    assert pid_state(test.remote, "n3", db.pids["n3"]) in ("S", "R")
    assert ping(test.remote.address("n3")) == "PONG"


def _shim_date(test: Spec, node: str) -> float:
    """``date +%s.%N`` run under the shim on ``node``, minus the real time there."""
    env = clock.clock_env(test.remote, node)
    out = test.remote.exec(
        node,
        [
            "sh",
            "-c",
            'a=$(date +%s.%N); b=$(env LD_PRELOAD="$1" JEPSY_CLOCK_FILE="$2" date +%s.%N); '
            'echo "$a $b"',
            "x",
            env["LD_PRELOAD"],
            env["JEPSY_CLOCK_FILE"],
        ],
    ).out
    real, shifted = (float(x) for x in out.split())
    return shifted - real


def test_clock_bump_is_seen_by_date_and_redis(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, _ = cluster
    assert abs(_shim_date(test, "n1")) < 1
    done = invoke(test, "clock-bump", {"n1": 3600, "n2": -7200.5})
    try:
        assert done.value["offsets"] == {"n1": 3600.0, "n2": -7200.5}
        assert abs(_shim_date(test, "n1") - 3600) < 1
        assert abs(_shim_date(test, "n2") + 7200.5) < 1
        assert abs(_shim_date(test, "n3")) < 1
        time.sleep(0.25)  # the running daemon re-reads the offset every 100 ms
        assert abs(redis_time(test.remote.address("n1")) - time.time() - 3600) < 2
        assert abs(redis_time(test.remote.address("n3")) - time.time()) < 2
        done = invoke(test, "clock-bump", {"nodes": ["n1"], "delta": 60})
        assert done.value["offsets"] == {"n1": 3660.0}
    finally:
        done = invoke(test, "clock-reset")
    assert done.value == {"reset": list(test.nodes)}
    time.sleep(0.25)
    assert abs(redis_time(test.remote.address("n1")) - time.time()) < 2
    assert abs(_shim_date(test, "n2")) < 1


def test_clock_strobe_flips_the_clock(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, _ = cluster
    done = invoke(
        test,
        "clock-strobe",
        {"nodes": ["n4"], "delta": 1000, "period": 0.1, "duration": 5},
    )
    try:
        assert done.value["strobed"] == ["n4"] and done.error is None
        seen = set()
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(round(_shim_date(test, "n4") / 1000))
        assert seen == {0, 1}
    finally:
        invoke(test, "clock-reset")
    assert abs(_shim_date(test, "n4")) < 1


def _attempts(test: Spec, src: str, dst: str, n: int) -> tuple[int, int]:
    """(blocked, total) of ``n`` TCP connects from ``src`` to the daemon on ``dst``."""
    script = r"""
a=$1; p=$2; n=$3; i=0
while [ $i -lt $n ]; do
  ( timeout 0.9 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$a" "$p" 2>/dev/null; echo "rc=$?" ) &
  i=$((i+1)); if [ $((i % 25)) -eq 0 ]; then wait; fi
done
wait
"""
    out = test.remote.exec(
        src, ["bash", "-c", script, "x", test.remote.address(dst), str(PORT), str(n)], timeout=60
    ).out
    rcs = [line for line in out.splitlines() if line.startswith("rc=")]
    return sum(1 for r in rcs if r == "rc=124"), len(rcs)


def test_packet_loss_drops_about_the_chosen_fraction(
    cluster: tuple[Spec, RedisNodesDB],
) -> None:
    test, _ = cluster
    done = invoke(test, "start-packet-loss", {"links": {"n2": ["n1"]}, "probability": 0.5})
    try:
        assert done.value == {"probability": 0.5, "links": {"n2": ["n1"]}}
        assert any("statistic" in x for x in net.rules(test.remote, "n2"))
        blocked, total = _attempts(test, "n1", "n2", 100)
        assert total == 100
        assert 0.2 * total <= blocked <= 0.8 * total, blocked
        # Other links are untouched (a few timeouts are tolerated on a loaded machine;
        # the lossy link loses about half).
        blocked, total = _attempts(test, "n3", "n2", 50)
        assert total == 50 and blocked <= 5, blocked
    finally:
        done = invoke(test, "stop-packet-loss")
    assert done.value == "stopped"
    blocked, total = _attempts(test, "n1", "n2", 50)
    assert total == 50 and blocked <= 5, blocked
    assert net.rules(test.remote, "n2") == []


def test_packet_loss_around_a_node_is_symmetric(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, _ = cluster
    done = invoke(test, "start-packet-loss", {"nodes": ["n5"], "probability": 1.0})
    try:
        links = net.from_json(done.value["links"])
        assert links == packet_loss.links_around(test.nodes, ["n5"])
        got = net.verify_connectivity(
            test.remote,
            net.complete_grudge([["n5"], ["n1", "n2", "n3", "n4"]]),
            port=PORT,
            connect_timeout=0.3,
        )
        assert got[("n5", "n1")] == "blocked"
        # jepsy's own probes (port 9) are exempt: a partition nemesis
        # running beside this one can still verify its heal.
        net.verify_connectivity(test.remote, connect_timeout=0.3)
    finally:
        invoke(test, "stop-packet-loss")


def test_teardown_undoes_every_fault_in_force(cluster: tuple[Spec, RedisNodesDB]) -> None:
    test, db = cluster
    invoke(test, "start-partition", "one")
    invoke(test, "kill", ["n1"])
    invoke(test, "pause", ["n2"])
    invoke(test, "clock-bump", {"n3": 100})
    invoke(test, "start-packet-loss", {"nodes": ["n4"], "probability": 0.3})
    test.nemesis.teardown(test)
    assert all(v == [] for v in jepsy_rules(test).values())
    for n in test.nodes:
        assert ping(test.remote.address(n)) == "PONG", n
    assert pid_state(test.remote, "n2", db.pids["n2"]) != "T"
    assert abs(_shim_date(test, "n3")) < 1
    net.verify_connectivity(test.remote, port=PORT)


def test_clock_setup_refuses_when_no_daemon_runs_under_the_shim(
    cluster: tuple[Spec, RedisNodesDB],
) -> None:
    test, db = cluster
    assert all(net.on_nodes(test.nodes, lambda n: clock.shim_in_use(test.remote, n)).values())
    db.kill(test, "n1")
    try:
        assert not clock.shim_in_use(test.remote, "n1")
        with pytest.raises(ConfigError, match=r"no process on n1 runs under the clock shim"):
            clock.ClockNemesis(mode="shim", db=db).setup(test)
    finally:
        db.start(test, "n1")
    assert clock.shim_in_use(test.remote, "n1")
