"""jepsy.nemeses.combined: names, targets, up-front refusals, schedules (no cluster)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import pytest

from jepsy import generator as gen
from jepsy.core import Test as Spec
from jepsy.core import noop_test
from jepsy.errors import ConfigError
from jepsy.nemeses import combined
from jepsy.nemeses.clock import ClockSupport


class PlainDB:
    def setup(self, test: Spec, node: str) -> None: ...

    def teardown(self, test: Spec, node: str) -> None: ...

    def __repr__(self) -> str:
        return "PlainDB()"


class FullDB(PlainDB):
    def start(self, test: Spec, node: str) -> None: ...

    def kill(self, test: Spec, node: str) -> None: ...

    def pause(self, test: Spec, node: str) -> None: ...

    def resume(self, test: Spec, node: str) -> None: ...

    def primaries(self, test: Spec) -> Sequence[str]:
        return ["n1"]

    def clock_skew_support(self) -> ClockSupport | None:
        return "shim"


class GoDB(FullDB):
    """Like etcd here: a Go binary whose clock the shim cannot reach."""

    def clock_skew_support(self) -> ClockSupport | None:
        return None

    def __repr__(self) -> str:
        return "EtcdLikeDB()"


class SystemClockDB(FullDB):
    def clock_skew_support(self) -> ClockSupport | None:
        return "system"


ALL = ["partition", "kill", "pause", "clock", "packet-loss"]


def test_every_fault_composes() -> None:
    pkg = combined.package(ALL, interval=3, db=FullDB())
    assert pkg.nemesis.fs() == {
        "start-partition",
        "stop-partition",
        "kill",
        "start",
        "pause",
        "resume",
        "clock-bump",
        "clock-strobe",
        "clock-reset",
        "start-packet-loss",
        "stop-packet-loss",
    }
    assert set(pkg.plot) == {"partition", "kill", "pause", "clock", "packet-loss"}
    for entry in pkg.plot.values():
        assert set(entry) == {"color", "label", "start", "stop"}
        assert entry["color"].startswith("#")
    assert len({e["color"] for e in pkg.plot.values()}) == 5


def test_names_parse_and_none() -> None:
    assert combined.parse_names("partition, kill,partition") == ["partition", "kill"]
    assert combined.parse_names(["packet_loss"]) == ["packet-loss"]
    pkg = combined.package(["none"])
    assert pkg.generator is None and pkg.final_generator is None and pkg.nemesis.fs() == set()
    with pytest.raises(ConfigError, match="unknown nemesis 'flood'"):
        combined.package(["flood"])


def test_kill_and_pause_need_the_ability_up_front() -> None:
    with pytest.raises(ConfigError, match=r"'kill' needs a DB that can be killed.*PlainDB"):
        combined.package(["kill"], db=PlainDB())
    with pytest.raises(ConfigError, match=r"'pause' needs a DB .*Pausable"):
        combined.package(["partition", "pause"], db=PlainDB())


def test_clock_refused_up_front_for_a_db_it_cannot_skew() -> None:
    with pytest.raises(ConfigError, match=r"'clock' is not supported by EtcdLikeDB\(\).*vDSO"):
        combined.package(["partition", "clock"], db=GoDB())
    with pytest.raises(ConfigError, match="does not declare"):
        combined.package(["clock"], db=PlainDB())
    with pytest.raises(ConfigError, match="no DB"):
        combined.package(["clock"])
    with pytest.raises(ConfigError, match="opt-in"):
        combined.package(["clock"], db=SystemClockDB())
    pkg = combined.package(["clock"], db=SystemClockDB(), system_clock=True)
    assert "system" in repr(pkg.nemesis)


def test_targets_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown nemesis targets"):
        combined.package(["partition"], targets=["everything"])
    with pytest.raises(ConfigError, match="none of the targets"):
        combined.package(["kill"], db=FullDB(), targets=["bridge"])
    with pytest.raises(ConfigError, match="partition target 'primaries'"):
        combined.package(["partition"], db=PlainDB(), targets=["primaries"])
    with pytest.raises(ConfigError, match="at least 3 nodes"):
        combined.package(["partition"], targets=["bridge"], nodes=["a", "b"])
    with pytest.raises(ConfigError, match="positive"):
        combined.package(["partition"], interval=0)
    combined.package(["partition", "kill"], db=FullDB(), targets=["bridge", "one"])


def simulate(names: list[str], *, seconds: float, targets: list[str] | None = None) -> list[str]:
    pkg = combined.package(names, interval=5, db=FullDB(), targets=targets)
    assert pkg.generator is not None
    ops = gen.simulate(
        gen.time_limit(seconds, pkg.generator), test=noop_test(seed=1), concurrency=2
    )
    assert all(o.process == "nemesis" for o in ops)
    return [f"{o.f}:{o.value}" if o.f.startswith("start-p") else o.f for o in ops if o.is_invoke]


def test_partition_schedule_alternates_with_the_interval() -> None:
    pkg = combined.package(["partition"], interval=5, targets=["majority", "bridge"])
    assert pkg.generator is not None
    ops = gen.simulate(pkg.generator, test=noop_test(seed=1), time_limit=41)
    inv = [o for o in ops if o.is_invoke]
    assert [o.f for o in inv] == ["start-partition", "stop-partition"] * 4
    assert inv[0].time == 5_000_000_000  # one healthy interval first
    assert {o.value for o in inv if o.f == "start-partition"} <= {"majority", "bridge"}
    gaps = [(b.time - a.time) / 1e9 for a, b in itertools.pairwise(inv)]
    assert all(4.9 < g < 5.2 for g in gaps), gaps


def test_combined_schedule_runs_every_fault_and_heals_at_the_end() -> None:
    fs = simulate(ALL, seconds=400)
    counts = Counter(f.split(":")[0] for f in fs)
    for f in ("start-partition", "kill", "pause", "start-packet-loss"):
        assert counts[f] >= 2, counts
    assert counts["clock-bump"] + counts["clock-strobe"] >= 2
    pkg = combined.package(ALL, interval=5, db=FullDB())
    final = gen.simulate(pkg.final_generator, test=noop_test())
    assert [o.f for o in final if o.is_invoke] == [
        "stop-partition",
        "start",
        "resume",
        "clock-reset",
        "stop-packet-loss",
    ]


def test_schedules_are_deterministic() -> None:
    assert simulate(ALL, seconds=200) == simulate(ALL, seconds=200)


def test_targets_as_a_comma_separated_string() -> None:
    pkg = combined.package("partition,kill", db=FullDB(), targets="bridge, one")
    assert {"start-partition", "kill"} <= set(pkg.nemesis.fs())
    assert set(combined.NEMESES) == set(combined.FAULTS)


def test_the_real_etcd_suite_is_refused_for_clock() -> None:
    from jepsy.dbs import get_suite

    etcd = get_suite("etcd").make_db({})
    with pytest.raises(ConfigError, match="'clock' is not supported"):
        combined.package(["clock"], db=etcd)
    combined.package(["partition", "kill", "pause"], db=etcd, targets=["primaries", "one"])


def test_network_faults_refuse_a_remote_without_a_network() -> None:
    from jepsy.nemeses.packet_loss import PacketLossNemesis
    from jepsy.nemeses.partition import PartitionNemesis

    for nem, name in ((PartitionNemesis(), "partition"), (PacketLossNemesis(), "packet-loss")):
        with pytest.raises(ConfigError, match=f"nemesis '{name}' needs nodes with a network"):
            nem.setup(noop_test())


def test_combined_faults_toggle_together_after_a_healthy_interval() -> None:
    pkg = combined.package(["partition", "kill"], interval=4, db=FullDB())
    assert pkg.generator is not None
    ops = gen.simulate(pkg.generator, test=noop_test(seed=2), time_limit=20)
    inv = [(round(o.time / 1e9, 1), o.f) for o in ops if o.is_invoke]
    assert sorted(inv[:2]) == [(4, "kill"), (4, "start-partition")]
    assert sorted(inv[2:4]) == [(8, "start"), (8, "stop-partition")]
    assert "RandomOp('start-partition'" in repr(pkg.generator)


def test_default_partition_targets_fit_three_nodes() -> None:
    from jepsy.nemeses.partition import partition_targets

    three = partition_targets(None, nodes=["n1", "n2", "n3"])
    assert "minority-third" not in three and "majorities-ring" not in three
    assert {"one", "halves", "majority", "bridge"} <= set(three)
    assert "majorities-ring" in partition_targets(None, nodes=[f"n{i}" for i in range(5)])
    # a three-node package with default targets builds (it raised ConfigError before)
    pkg = combined.package(["partition"], nodes=["n1", "n2", "n3"])
    assert pkg.generator is not None
